"""Group commit: concurrent ingests share transactions.

Requests queue their `EventRecord`; each of a few writer tasks takes whatever is queued
(bounded by rows and bytes) and writes it in one statement. Under load, everything that
arrived while the previous write ran goes in the next one; at rest a lone request is
written at once. Each caller is answered when its own batch commits. When the database
is unavailable the whole batch fails (503, the providers retry); when it rejects the
batch's data, each row is retried alone so one bad row fails only its own caller.
"""

from __future__ import annotations

import asyncio
import collections
from typing import NamedTuple

import structlog

from gateway.config import IngestConfig
from gateway.errors import StorageError, StorageUnavailable
from gateway.storage.notify import Notifier
from gateway.storage.store import EventRecord, Store

log = structlog.get_logger("hookgate.ingest")


class _Pending(NamedTuple):
    record: EventRecord
    done: asyncio.Future[None]


class GroupCommit:
    """Writes queued events in batches; `write` returns once the event is committed."""

    def __init__(
        self, store: Store, config: IngestConfig, notifier: Notifier | None = None
    ) -> None:
        self._store = store
        self._config = config
        self._notifier = notifier
        self._queue: collections.deque[_Pending] = collections.deque()
        self._ready = asyncio.Event()
        self._writers: list[asyncio.Task[None]] = []
        self._closing = False

    async def write(self, record: EventRecord) -> None:
        """Queue `record` and wait for its commit; raises `StorageError` if it failed."""
        if self._closing:
            raise StorageUnavailable("shutting down")
        done = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(record, done))
        self._ready.set()
        await done

    def start(self) -> None:
        self._writers = [asyncio.create_task(self._run()) for _ in range(self._config.writers)]

    async def stop(self) -> None:
        """Write everything queued, answer every caller, then stop the writers."""
        self._closing = True
        self._ready.set()
        await asyncio.gather(*self._writers, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            batch = self._take()
            if batch:
                await self._commit(batch)
            elif self._closing:
                return

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        limit = self._config
        while self._queue and len(batch) < limit.max_batch_rows:
            item = self._queue[0]
            size += len(item.record.body)
            if batch and size > limit.max_batch_bytes:
                break
            batch.append(self._queue.popleft())
        if not self._queue and not self._closing:
            self._ready.clear()
        return batch

    async def _commit(self, batch: list[_Pending]) -> None:
        error = await self._insert(batch)
        if error is not None and not isinstance(error, StorageUnavailable) and len(batch) > 1:
            for item in batch:  # find the row the database refuses; the others go in
                await self._commit([item])
            return
        if error is not None:
            log.warning("ingest_batch_failed", rows=len(batch), error=error.message)
        elif self._notifier is not None and any(item.record.deliveries for item in batch):
            self._notifier.poke()
        for item in batch:
            if item.done.done():
                continue
            if error is None:
                item.done.set_result(None)
            else:
                item.done.set_exception(type(error)(error.message))

    async def _insert(self, batch: list[_Pending]) -> StorageError | None:
        try:
            await self._store.insert_events([item.record for item in batch])
        except StorageError as exc:
            return exc
        except Exception as exc:
            log.exception("ingest_batch_crashed", rows=len(batch))
            return StorageError(f"batch write failed: {type(exc).__name__}")
        return None
