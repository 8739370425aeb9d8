"""Deleting what retention or an erasure request says may go, in bounded batches.

Nothing here knows the config: callers hand over cutoffs per source. An event with a
delivery pending or in flight is never deleted. Its deliveries and attempts go with it.
Whole days go by dropping their partitions (`retire_day`, gateway/storage/partitions.py);
what remains is deleted row by row. Every pass that found something writes one audit row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from gateway.ids import first_id_at
from gateway.storage import partitions
from gateway.storage.queries import QUERIES
from gateway.storage.store import ACQUIRE_TIMEOUT, translated

PURGE_LOCK = 0x686F6F6B70757267  # "hookpurg"
_NIL = UUID(int=0)


@dataclass(frozen=True, slots=True)
class Cutoff:
    """Rows received before these times may go; `dead_before` None keeps dead events."""

    delivered_before: dt.datetime
    dead_before: dt.datetime | None
    rejected_before: dt.datetime


@dataclass(slots=True)
class PurgeCounts:
    """What a pass removed (or, in a dry run, would remove)."""

    events: int = 0
    kept_open: int = 0  # old enough, but a delivery is still pending or in flight
    rejected: int = 0
    dedupe_keys: int = 0
    days: int = 0  # day partitions dropped whole

    def __bool__(self) -> bool:
        return any((self.events, self.kept_open, self.rejected, self.dedupe_keys))


@dataclass(frozen=True, slots=True)
class Audit:
    """Who purged, and with what criteria (match values already hashed)."""

    at: dt.datetime
    kind: str  # retention or erasure
    actor: str
    criteria: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False


# An erasure's decision on one stored event: (headers, body) -> erase it?
Decide = Callable[[tuple[tuple[str, str], ...], bytes], bool]
# How a stored body and headers become plaintext (decryption when it is on).
Reveal = Callable[[asyncpg.Record], tuple[tuple[tuple[str, str], ...], bytes]]


class Purger:
    """Retention passes and erasures over one pool."""

    def __init__(self, pool: asyncpg.Pool, reveal: Reveal | None = None, batch: int = 1000) -> None:
        self.pool = pool
        self.reveal = reveal or plaintext
        self.batch = batch

    async def retention(
        self,
        cutoffs: Mapping[str, Cutoff],
        others: Cutoff,
        now: dt.datetime,
        audit: Audit,
    ) -> PurgeCounts | None:
        """One pass: events, refused requests, dedupe keys. None if another replica's
        pass holds the lock (it does the same work)."""
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            if not await conn.fetchval(QUERIES["try_purge_lock"], PURGE_LOCK):
                return None
            try:
                counts = PurgeCounts()
                if not audit.dry_run:  # a dry run counts them with the rest, row by row
                    await self._retire(conn, cutoffs, others, counts)
                await self._events(conn, cutoffs, others, audit.dry_run, counts)
                await self._rejected_and_keys(conn, cutoffs, others, now, audit.dry_run, counts)
                if counts:
                    await _audit(conn, audit, counts)
                return counts
            finally:
                await conn.fetchval(QUERIES["purge_unlock"], PURGE_LOCK)

    async def ensure_partitions(self, now: dt.datetime) -> int:
        """Make the day partitions ahead of `now` that are missing; how many."""
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            return await partitions.ensure(conn, now.astimezone(dt.UTC).date())

    async def raise_open_floor(self, now: dt.datetime, valid: float) -> UUID:
        """Set the open floor (migration 0024) from the day partitions, for `valid`
        seconds: claims then start no partition of a day before it."""
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            floor: UUID = await conn.fetchval(QUERIES["raise_open_floor"], now, valid)
            return floor

    async def _retire(
        self,
        conn: asyncpg.Connection,
        cutoffs: Mapping[str, Cutoff],
        others: Cutoff,
        counts: PurgeCounts,
    ) -> None:
        """Drop the days past every source's delivered retention, whole."""
        oldest = min(c.delivered_before for c in (*cutoffs.values(), others))
        dead = {name: cutoff.dead_before for name, cutoff in cutoffs.items()}
        for day in await partitions.retirable(conn, oldest):
            retired = await partitions.retire(conn, day, dead, others.dead_before)
            counts.events += retired.dropped
            counts.days += 1

    async def _events(
        self,
        conn: asyncpg.Connection,
        cutoffs: Mapping[str, Cutoff],
        others: Cutoff,
        dry: bool,
        counts: PurgeCounts,
    ) -> None:
        """Row by row, in id order, what dropping days did not take."""
        names = list(cutoffs)
        every = (*cutoffs.values(), others)
        latest = max(
            [c.delivered_before for c in every] + [c.dead_before for c in every if c.dead_before]
        )
        after = _NIL
        while True:
            row = await conn.fetchrow(
                QUERIES["purge_events_batch"],
                names,
                [cutoffs[n].delivered_before for n in names],
                [cutoffs[n].dead_before for n in names],
                others.delivered_before,
                others.dead_before,
                after,
                first_id_at(latest),
                self.batch,
                dry,
            )
            counts.events += row["matched"]
            counts.kept_open += row["kept_open"]
            if row["scanned"] < self.batch:
                return
            after = row["last"]

    async def _rejected_and_keys(
        self,
        conn: asyncpg.Connection,
        cutoffs: Mapping[str, Cutoff],
        others: Cutoff,
        now: dt.datetime,
        dry: bool,
        counts: PurgeCounts,
    ) -> None:
        names = list(cutoffs)
        befores = [cutoffs[n].rejected_before for n in names]
        row = await conn.fetchrow(
            QUERIES["purge_rejected_and_keys"],
            names,
            befores,
            others.rejected_before,
            max([*befores, others.rejected_before]),
            now,
            dry,
        )
        counts.rejected, counts.dedupe_keys = row["rejected"], row["keys"]

    async def erase(
        self,
        source: str | None,
        before: dt.datetime,
        decide: Decide,
        audit: Audit,
    ) -> PurgeCounts:
        """Delete the events of `source` received before `before` that `decide` picks."""
        counts, after = PurgeCounts(), _NIL
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            while True:
                rows = await conn.fetch(
                    QUERIES["erasure_candidates"], after, first_id_at(before), source, self.batch
                )
                picked = [row["id"] for row in rows if decide(*self.reveal(row))]
                if picked:
                    await _erase_batch(conn, picked, audit.dry_run, counts)
                if len(rows) < self.batch:
                    break
                after = rows[-1]["id"]
            await _audit(conn, audit, counts)
        return counts


def plaintext(row: asyncpg.Record) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """Headers and body as stored, when encryption is off."""
    return tuple((k, v) for k, v in orjson.loads(row["headers"])), bytes(row["body"])


async def _erase_batch(
    conn: asyncpg.Connection, ids: Sequence[UUID], dry: bool, counts: PurgeCounts
) -> None:
    row = await conn.fetchrow(QUERIES["erase_events"], ids, dry)
    counts.events += row["matched"]
    counts.kept_open += row["kept_open"]


async def _audit(conn: asyncpg.Connection, audit: Audit, counts: PurgeCounts) -> None:
    await conn.execute(
        QUERIES["insert_purge_audit"],
        audit.at,
        audit.kind,
        audit.actor,
        orjson.dumps(audit.criteria).decode(),
        audit.dry_run,
        counts.events,
        counts.kept_open,
        counts.rejected,
        counts.dedupe_keys,
    )
