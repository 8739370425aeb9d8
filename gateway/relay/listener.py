"""LISTEN for new deliveries on a dedicated connection that reconnects when it drops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from gateway.logging import Sampled, crash_site

CHANNEL = "hookgate_deliveries"
KEEPALIVE = 15.0
APPLICATION_NAME = "hookgate-listener"

log = structlog.get_logger("hookgate.relay")


async def listen(dsn: str, on_notify: Callable[[], None], retry: float = 1.0) -> None:
    """Call `on_notify` for every NOTIFY, and after each (re)connect to catch up; forever."""
    failures = Sampled(log, "listener_disconnected", level="warning")  # once a minute
    while True:
        try:
            await _session(dsn, on_notify, on_connect=failures.flush)
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ) as exc:
            failures.hit(time.monotonic(), error=type(exc).__name__, retry_in=retry)
        except Exception as exc:  # polling covers us meanwhile
            log.error("listener_crashed", retry_in=retry, **crash_site(exc))
        await asyncio.sleep(retry)


async def _session(
    dsn: str, on_notify: Callable[[], None], on_connect: Callable[[], None] = lambda: None
) -> None:
    conn = await asyncpg.connect(
        dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
    )
    try:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())

        def notified(*_: Any) -> None:
            on_notify()

        await conn.add_listener(CHANNEL, notified)
        on_connect()
        log.info("listener_connected")
        on_notify()  # anything committed while we were away
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), KEEPALIVE)
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=KEEPALIVE)  # notices a silent network
    finally:
        await conn.close(timeout=2)
