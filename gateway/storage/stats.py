"""What operators read about the database: its schema version (/readyz) and the queue
gauges (/metrics). Kept out of store.py, which is the write and claim path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from gateway.storage.queries import QUERIES
from gateway.storage.store import ACQUIRE_TIMEOUT, Store, translated


async def _fetch(store: Store, name: str, *args: Any) -> list[dict[str, Any]]:
    async with translated(), store.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
        return [dict(row) for row in await conn.fetch(QUERIES[name], *args)]


async def queue_gauges(
    store: Store, targets: Sequence[str], now: dt.datetime
) -> list[dict[str, Any]]:
    """Per target: pending, due, in_flight, dead, oldest_due_age, breaker_open, paused."""
    return await _fetch(store, "queue_gauges", now, list(targets))


async def schema_version(store: Store) -> int:
    """The newest migration applied to the database."""
    (row,) = await _fetch(store, "schema_version")
    return int(row["version"])
