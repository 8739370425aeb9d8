"""Replays, in the database: one event's deliveries, or every delivery matching a filter
in one statement, each with its audit row. A dry run runs the very same statements and
rolls them back, so what it reports is what the real one would do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from gateway.ids import first_id_at
from gateway.storage.admin import SQL, ReplayCounts, ReplayFilter
from gateway.storage.store import ACQUIRE_TIMEOUT, translated

Work = Callable[[asyncpg.Connection], Awaitable[list[asyncpg.Record]]]


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """Who replays, when, and how: `new_key` mints new delivery ids; `dry_run` changes nothing."""

    id: UUID
    now: dt.datetime
    by: str
    new_key: bool = False
    dry_run: bool = False


class Replays:
    """Re-queues deliveries with a fresh retry budget, recording who did it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def replay_event(
        self, request: ReplayRequest, event_id: UUID, targets: Sequence[str],
        new_targets: Mapping[str, UUID],
    ) -> ReplayCounts:  # fmt: skip
        """Re-queue the event's deliveries to `targets`; make those in `new_targets` (with
        their ids), which the event never had."""

        async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            rows = list(await conn.fetch(
                SQL["replay_event"], request.id, request.now, request.new_key, event_id,
                list(targets),
            ))  # fmt: skip
            if new_targets:
                rows += await conn.fetch(
                    SQL["add_deliveries"], request.id, request.now, event_id,
                    list(new_targets), list(new_targets.values()),
                )  # fmt: skip
            return rows

        all_targets = [*targets, *new_targets]
        return await self._run(request, event_id, None, all_targets, work)

    async def replay_matching(self, request: ReplayRequest, f: ReplayFilter) -> ReplayCounts:
        """Queue every delivery matching `f` in one statement; `release` lets them in."""

        async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(
                SQL["replay_matching"], request.id, request.now, request.new_key,
                f.source, f.type, f.status, list(f.targets) if f.targets is not None else None,
                f.outcome, _bound(f.since), _bound(f.until), f.q,
            )  # fmt: skip
            return rows

        return await self._run(request, None, _filter_json(f), f.targets, work)

    async def release(self, windows: Mapping[str, int], now: dt.datetime) -> tuple[int, bool]:
        """Move queued deliveries to pending while each target has fewer than its window
        due or in flight: (how many moved, whether any are still queued)."""
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            row = await conn.fetchrow(
                SQL["release_replays"], list(windows), list(windows.values()), now
            )
            if row["released"]:
                await conn.execute(SQL["notify_deliveries"])
            return int(row["released"]), bool(row["more"])

    async def _run(
        self, request: ReplayRequest, event_id: UUID | None, filter_json: str | None,
        targets: Sequence[str] | None, work: Work,
    ) -> ReplayCounts:  # fmt: skip
        audit = (request.id, request.now, request.by, request.dry_run, event_id, filter_json,
                 list(targets) if targets is not None else None, request.new_key)  # fmt: skip
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(SQL["replay_settings"])
                await conn.execute(SQL["insert_replay"], *audit)
                counts = _counts(await work(conn))
            except BaseException:
                await transaction.rollback()
                raise
            if request.dry_run:
                await transaction.rollback()
                async with conn.transaction():
                    await conn.execute(SQL["insert_replay"], *audit)
                    await _finish(conn, request.id, counts)
            else:
                await _finish(conn, request.id, counts)
                await transaction.commit()
                await conn.execute(SQL["notify_deliveries"])
        return counts


async def _finish(conn: asyncpg.Connection, replay_id: UUID, counts: ReplayCounts) -> None:
    await conn.execute(
        SQL["finish_replay"], replay_id, counts.deliveries,
        orjson.dumps(dict(counts.by_target)).decode(),
        orjson.dumps([str(s) for s in counts.sample]).decode(),
    )  # fmt: skip


def _counts(rows: Sequence[asyncpg.Record]) -> ReplayCounts:
    by_target: dict[str, int] = {}
    sample: list[UUID] = []
    for row in rows:
        by_target[row["target"]] = by_target.get(row["target"], 0) + int(row["n"])
        sample.extend(row["sample"][: max(0, 10 - len(sample))])
    return ReplayCounts(sum(by_target.values()), by_target, tuple(sample))


def _bound(moment: dt.datetime | None) -> UUID | None:
    return first_id_at(moment) if moment is not None else None


def _filter_json(f: ReplayFilter) -> str:
    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.datetime) else value

    return orjson.dumps({k: plain(v) for k, v in asdict(f).items() if v is not None}).decode()
