"""Waking the relays after ingest commits, coalesced.

Sending NOTIFY inside the ingest transaction would serialise every commit behind
Postgres's notification lock. Instead, writers `poke()` after committing, and one task
sends NOTIFY: at most one every `INTERVAL` seconds, covering every commit poked
meanwhile. Its transaction does not wait for its commit to reach the disk (a lost
NOTIFY costs nothing durable), so it is not an fsync of its own.
A NOTIFY that fails (or a crash before it) only delays delivery until the relays poll.
"""

from __future__ import annotations

import asyncio

import structlog

from gateway.errors import StorageError
from gateway.storage.store import Store

log = structlog.get_logger("hookgate.storage")
INTERVAL = 0.005


class Notifier:
    def __init__(self, store: Store, interval: float = INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """New deliveries were committed: make sure a NOTIFY follows."""
        self._poked.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self) -> None:
        """Stop, sending the NOTIFY still owed for the last commits."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._poked.is_set():
            await self._send()

    async def _run(self) -> None:
        while True:
            await self._poked.wait()
            await self._send()
            await asyncio.sleep(self._interval)  # commits poked meanwhile share the next one

    async def _send(self) -> None:
        self._poked.clear()
        try:
            await self._store.notify()
        except StorageError as exc:
            log.warning("notify_failed", error=exc.message)
