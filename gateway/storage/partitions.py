"""Day partitions: made ahead of time, and dropped whole when retention allows.

Events, deliveries and attempts are range-partitioned by event id, one partition per UTC
day (migration 0017). `ensure` makes the days around today; `retire` drops a day that is
past every source's ``delivered`` retention, first moving what must stay (a delivery
pending or in flight, or dead under a longer ``dead`` retention) into the default
partitions, where the row-by-row pass deals with it later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from gateway.storage.queries import QUERIES

AHEAD = 3  # days after today made in advance (migration 0017 also makes yesterday, today)
RETRIES = 3  # a day's drop gives up after lock_timeout; tried again this many times
RETRY_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class Retired:
    day: dt.date
    dropped: int
    kept: int


async def ensure(conn: asyncpg.Connection, today: dt.date) -> int:
    """Make the partitions of the AHEAD days after `today` (never today's: rows are
    arriving for it, see the function); how many were made."""
    made: int = await conn.fetchval(
        QUERIES["ensure_partitions"],
        today + dt.timedelta(days=1),
        today + dt.timedelta(days=AHEAD),
    )
    return made


async def retirable(conn: asyncpg.Connection, delivered_before: dt.datetime) -> list[dt.date]:
    """Days whose every event was received before `delivered_before`."""
    rows = await conn.fetch(QUERIES["partition_days"])
    last = delivered_before.astimezone(dt.UTC).date()  # that day itself is not over
    return [row["day"] for row in rows if row["day"] < last]


async def retire(
    conn: asyncpg.Connection,
    day: dt.date,
    dead_before: Mapping[str, dt.datetime | None],
    other_dead: dt.datetime | None,
) -> Retired:
    """Detach `day`'s partitions in one transaction, keeping what must outlive them, then
    drop them in another (removing a day's files takes seconds: no lock is held then)."""
    names = list(dead_before)
    for attempt in range(RETRIES):
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    QUERIES["retire_day"], day, names, [dead_before[n] for n in names], other_dead
                )
            await conn.fetchval(QUERIES["drop_retired"])  # its files go, outside the lock
            return Retired(day, row["dropped"], row["kept"])
        except asyncpg.LockNotAvailableError:
            if attempt == RETRIES - 1:
                raise
            await asyncio.sleep(RETRY_PAUSE)
    raise AssertionError("unreachable")
