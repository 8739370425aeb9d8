"""The admin surface's queries (admin.sql): lists, one event in full, target health,
the dashboard's series, replays and operator actions; rows out as frozen dataclasses.

It knows nothing of HTTP or of who calls it; gateway/admin/model.py adds redaction
and what the config says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import orjson

from gateway.ids import first_id_at
from gateway.storage.queries import QUERIES
from gateway.storage.sealing import Sealer, event_row, rejected_row
from gateway.storage.store import ACQUIRE_TIMEOUT, translated

# admin.sql's blocks, with every other file's (notify_deliveries is queries.sql's).
SQL = QUERIES
Headers = tuple[tuple[str, str], ...]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to list; every part optional. `status` is its deliveries' state."""

    source: str | None = None
    type: str | None = None  # '*' matches anything
    status: str | None = None  # dead | pending | delivered
    target: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    q: str | None = None  # text in the body or a header value


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which deliveries a bulk replay re-queues; `status` is the delivery's own."""

    source: str | None = None
    type: str | None = None
    status: str | None = None
    targets: tuple[str, ...] | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    q: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryBrief:
    id: UUID
    target: str
    status: str
    attempts: int
    last_outcome: str | None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: UUID
    source: str
    event_type: str | None
    received_at: dt.datetime
    method: str
    path: str
    size: int
    peer: str | None
    deliveries: tuple[DeliveryBrief, ...]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: UUID
    source: str
    event_type: str | None
    received_at: dt.datetime
    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    peer: str | None
    routes: Mapping[str, Any] | None  # {"matched", "unmatched", "verified_by"} (ingress/request.py)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: UUID
    event_id: UUID
    target: str
    status: str
    attempts: int
    interruptions: int
    budget_from: int
    due_at: dt.datetime
    worker: str | None
    last_outcome: str | None
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    ordering_key: str | None
    released_key: str | None
    route: int | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_id: UUID
    attempt: int
    worker: str
    started_at: dt.datetime
    duration_ms: float | None
    outcome: str | None  # None while in flight
    status_code: int | None
    response_headers: Headers
    response_body: bytes | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ReplayMark:
    """One replay of one delivery, as its history shows it."""

    delivery_id: UUID
    replay_id: UUID
    created_at: dt.datetime
    created_by: str
    new_key: bool
    previous_id: UUID | None
    previous_status: str | None  # None: the replay created the delivery
    attempts_before: int


@dataclass(frozen=True, slots=True)
class DeliveryListRow:
    id: UUID
    event_id: UUID
    target: str
    status: str
    attempts: int
    last_outcome: str | None
    last_error: str | None
    due_at: dt.datetime
    updated_at: dt.datetime
    source: str
    event_type: str | None
    received_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RejectedRow:
    id: int
    source: str
    received_at: dt.datetime
    status: int
    reason: str
    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    peer: str | None


@dataclass(frozen=True, slots=True)
class TargetStats:
    name: str
    pending: int
    due: int
    in_flight: int
    queued: int  # bulk-replayed, waiting for the feeder to let them in
    dead: int
    dead_keys: int
    attempts: int  # finished in the last hour
    succeeded: int
    p50_ms: float | None
    p95_ms: float | None
    paused: bool
    reason: str | None
    changed_at: dt.datetime | None
    changed_by: str | None
    failures: int
    breaker_until: dt.datetime | None
    breaker_reason: str | None


@dataclass(frozen=True, slots=True)
class BlockedKey:
    key: str
    dead: int
    waiting: int


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    minute: dt.datetime
    ingested: int
    delivered: int
    failed: int


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    id: UUID
    created_at: dt.datetime
    created_by: str
    dry_run: bool
    event_id: UUID | None
    filter: Mapping[str, Any] | None
    targets: tuple[str, ...] | None
    new_key: bool
    deliveries: int
    by_target: Mapping[str, int]
    sample: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class ReplayedRow:
    delivery_id: UUID
    previous_id: UUID | None
    previous_status: str | None
    attempts_before: int
    event_id: UUID | None  # None once the delivery was purged
    target: str | None
    status: str | None
    attempts: int | None


@dataclass(frozen=True, slots=True)
class ReplayCounts:
    """What a replay touched (or, dry, would touch)."""

    deliveries: int
    by_target: Mapping[str, int]
    sample: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    id: UUID
    source: str
    event_type: str | None
    received_at: dt.datetime
    method: str
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class StreamAttempt:
    delivery_id: UUID
    attempt: int
    started_at: dt.datetime
    duration_ms: float | None
    outcome: str
    status_code: int | None
    error: str | None
    event_id: UUID
    target: str
    status: str
    source: str


_JSON_PAIRS = {"headers", "response_headers"}
_JSON = {"routes", "filter", "by_target"}


def _decode(name: str, value: Any) -> Any:
    if name in _JSON_PAIRS:
        return tuple((k, v) for k, v in orjson.loads(value)) if value else ()
    if name in _JSON:
        return orjson.loads(value) if value is not None else None
    if name == "deliveries" and isinstance(value, str):
        return tuple(DeliveryBrief(UUID(d.pop("id")), **d) for d in orjson.loads(value))
    if name == "sample":
        return tuple(UUID(str(v)) for v in (orjson.loads(value) if isinstance(value, str)
                                            else value or ()))  # fmt: skip
    if name == "targets" and value is not None:
        return tuple(value)
    return value


def _rows(cls: type[T], rows: Sequence[Mapping[str, Any]]) -> list[T]:
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return [cls(**{n: _decode(n, row[n]) for n in names}) for row in rows]


def _bound(moment: dt.datetime | None) -> UUID | None:
    return first_id_at(moment) if moment is not None else None


class AdminStore:
    """The admin queries over the gateway's pool; stored requests come back decrypted
    (with `sealer`, when encryption at rest is on)."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer | None = None) -> None:
        self.pool = pool
        self.sealer = sealer or Sealer()

    def _opened(self, rows: Sequence[asyncpg.Record], row_of: Any) -> list[dict[str, Any]]:
        """Rows with `headers` and `body` in plaintext (headers as JSON pairs, as if stored so)."""
        opened = []
        for row in rows:
            headers, body = self.sealer.open(
                row_of(row), row["key_id"], row["headers"], row["body"]
            )
            opened.append({**row, "headers": orjson.dumps(headers).decode(), "body": body})
        return opened

    async def _fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            rows: list[asyncpg.Record] = await conn.fetch(SQL[name], *args)
            return rows

    async def events(self, f: EventFilter, cursor: UUID | None, limit: int) -> list[EventRow]:
        rows = await self._fetch(
            "list_events", f.source, f.type, _bound(f.since), _bound(f.until), cursor,
            f.target, f.status, f.q, limit,
        )  # fmt: skip
        return _rows(EventRow, rows)

    async def event(self, event_id: UUID) -> StoredEvent | None:
        rows = await self._fetch("admin_event", event_id)
        found = _rows(StoredEvent, self._opened(rows, lambda row: event_row(row["id"])))
        return found[0] if found else None

    async def deliveries_of(self, event_id: UUID) -> list[DeliveryRow]:
        return _rows(DeliveryRow, await self._fetch("event_deliveries", event_id))

    async def attempts_of(self, ids: Sequence[UUID]) -> list[AttemptRow]:
        return _rows(AttemptRow, await self._fetch("delivery_attempts", list(ids)))

    async def replays_of(self, ids: Sequence[UUID]) -> list[ReplayMark]:
        return _rows(ReplayMark, await self._fetch("delivery_replays", list(ids)))

    async def deliveries(
        self,
        status: str | None,
        target: str | None,
        since: dt.datetime | None,
        cursor: UUID | None,
        limit: int,
    ) -> list[DeliveryListRow]:
        rows = await self._fetch("list_deliveries", status, target, _bound(since), cursor, limit)
        return _rows(DeliveryListRow, rows)

    async def rejected(
        self, source: str | None, since: dt.datetime | None, cursor: int | None, limit: int
    ) -> list[RejectedRow]:
        rows = await self._fetch("list_rejected", source, since, cursor, limit)
        return _rows(RejectedRow, self._opened(rows, lambda row: rejected_row(row["source"])))

    async def target_stats(self, names: Sequence[str], now: dt.datetime) -> list[TargetStats]:
        hour_ago = now - dt.timedelta(hours=1)
        return _rows(TargetStats, await self._fetch("target_stats", list(names), now, hour_ago))

    async def blocked_keys(self, target: str, limit: int) -> list[BlockedKey]:
        return _rows(BlockedKey, await self._fetch("blocked_keys", target, limit))

    async def series(self, now: dt.datetime, minutes: int = 60) -> list[MinuteCounts]:
        last = now.replace(second=0, microsecond=0)
        first = last - dt.timedelta(minutes=minutes - 1)
        rows = await self._fetch("dashboard_series", first, last, first_id_at(first))
        return _rows(MinuteCounts, rows)

    async def replays(self, cursor: UUID | None, limit: int) -> list[ReplayRecord]:
        return _rows(ReplayRecord, await self._fetch("list_replays", cursor, limit))

    async def replay(self, replay_id: UUID) -> ReplayRecord | None:
        found = _rows(ReplayRecord, await self._fetch("get_replay", replay_id))
        return found[0] if found else None

    async def replayed(self, replay_id: UUID, cursor: UUID | None, limit: int) -> list[ReplayedRow]:
        rows = await self._fetch("replayed_deliveries", replay_id, cursor, limit)
        return _rows(ReplayedRow, rows)

    async def cancel(self, delivery_id: UUID, now: dt.datetime, by: str) -> tuple[str | None, bool]:
        """(its status before, whether it is now cancelled): only a pending one can be."""
        (row,) = await self._fetch("cancel_delivery", delivery_id, now, f"cancelled by {by}")
        return row["status"], bool(row["cancelled"])

    async def release_key(self, target: str, key: str, now: dt.datetime) -> int:
        """Dead deliveries of (target, key) stop blocking it; how many there were."""
        (row,) = await self._fetch("release_key", target, key, now)
        if row["n"]:
            await self._fetch("notify_deliveries")
        return int(row["n"])

    async def events_after(self, after: UUID, source: str | None, limit: int) -> list[StreamEvent]:
        return _rows(StreamEvent, await self._fetch("events_after", after, source, limit))

    async def attempts_after(
        self, after: dt.datetime, source: str | None, limit: int
    ) -> list[StreamAttempt]:
        rows = await self._fetch("attempts_after", after, source, limit)
        return _rows(StreamAttempt, rows[::-1])  # oldest first
