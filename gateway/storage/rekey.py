"""``hookgate rekey``: move every sealed row to the active key, a page at a time.

Pages are read in id order and each rewritten with one statement that changes a row
only if it is still on the key it was read with, so the gateway keeps running (and
other rekeys may run) meanwhile. Plaintext rows written before encryption was turned on
are sealed too. After a complete pass the other keys are forgotten: the gateway then
starts without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from gateway.storage.queries import QUERIES
from gateway.storage.sealing import Sealer, event_row, rejected_row
from gateway.storage.store import ACQUIRE_TIMEOUT, translated


@dataclass(slots=True)
class Rekeyed:
    events: int = 0
    rejected: int = 0


async def rekey(
    pool: asyncpg.Pool,
    sealer: Sealer,
    batch: int = 500,
    progress: Callable[[Rekeyed], None] | None = None,
) -> Rekeyed:
    """Re-seal every event and refused request not on the active key; returns counts."""
    done = Rekeyed()
    async with translated(), pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
        after: Any = UUID(int=0)
        while rows := await conn.fetch(QUERIES["rekey_events_page"], after, sealer.active, batch):
            done.events += await _rewrite(conn, "rekey_events", rows, sealer, _event_row)
            after = rows[-1]["id"]
            if progress:
                progress(done)
        after = 0
        while rows := await conn.fetch(QUERIES["rekey_rejected_page"], after, sealer.active, batch):
            done.rejected += await _rewrite(conn, "rekey_rejected", rows, sealer, _rejected_row)
            after = rows[-1]["id"]
        await conn.execute(QUERIES["forget_keys"], sealer.active)
    return done


def _event_row(row: asyncpg.Record) -> bytes:
    return event_row(row["id"])


def _rejected_row(row: asyncpg.Record) -> bytes:
    return rejected_row(row["source"])


async def _rewrite(
    conn: asyncpg.Connection,
    query: str,
    rows: list[asyncpg.Record],
    sealer: Sealer,
    identify: Callable[[asyncpg.Record], bytes],
) -> int:
    sealed = []
    for row in rows:
        headers, body = sealer.open(identify(row), row["key_id"], row["headers"], row["body"])
        sealed.append(sealer.seal(identify(row), headers, body))
    status: str = await conn.execute(
        QUERIES[query],
        [row["id"] for row in rows],
        sealer.active,
        [headers for _, headers, _ in sealed],
        [body for _, _, body in sealed],
        [row["key_id"] for row in rows],
    )
    return int(status.split()[-1])
