"""All database access: asyncpg in, plain values out, driver errors translated here only."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import orjson

from gateway.errors import StorageError, StorageUnavailable
from gateway.storage.limits import Health, TargetLimits, health_columns, limit_columns
from gateway.storage.queries import QUERIES
from gateway.storage.sealing import Headers, Sealer, event_row, rejected_row

if TYPE_CHECKING:
    from gateway.storage.writers import Connections

ACQUIRE_TIMEOUT = 5.0
NO_FLOOR = UUID(int=0)  # every day partition read
# hookgate's statements are small and reach rows by index: JIT compiling them (which
# the planner does once a big table makes a plan look costly) only adds milliseconds.
SESSION = {"jit": "off"}
# The relay's connections plan each statement once: with the default plan_cache_mode,
# Postgres planned the claim again on every call, which cost more than running it, and
# more with every day partition kept (bench/growth.py). That one plan is made from the
# statistics of the moment: taken on a quiet day (a handful pending), they made a sort
# of every due row look cheaper than reading the claim index in order, and the plan
# kept reading and sorting the whole backlog at every claim once one piled up. Without
# sorts the claim reads each day's claim index in order whatever the statistics say
# (tests/integration/test_relay_scale.py); a sort nothing else can replace still runs.
RELAY_SESSION = {"plan_cache_mode": "force_generic_plan", "enable_sort": "off"}

# Connection-level trouble: the server is down, restarting, or unreachable. Retry later.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ReadOnlySQLTransactionError,
    # The driver's own state machine gives up on a connection that died mid-query
    # ("cannot switch to state 12"): the server went away, not our data.
    asyncpg.InternalClientError,
)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One received request and the targets it goes to, ready to be written."""

    id: UUID
    source: str
    event_type: str | None
    received_at: dt.datetime
    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    peer: str | None
    deliveries: Sequence[tuple[UUID, str]]  # (delivery id, target)
    dedupe_key: str | None = None  # the provider's delivery id, unique per source while
    dedupe_until: dt.datetime | None = None  # ... this window lasts
    # what ingest decided: {"matched": [...], "unmatched": [...], "verified_by": ...}
    routes: Mapping[str, object] | None = None
    ordering: Mapping[str, str] | None = None  # target -> ordering key, for FIFO targets
    delivery_routes: Mapping[str, int] | None = None  # target -> the route that made it
    traceparent: str | None = None  # the trace hookgate started at ingest (gateway/tracing.py)


@dataclass(frozen=True, slots=True)
class Stored:
    """Where a request ended up: its own new event, or the event it duplicates."""

    event_id: UUID
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ProxyAnswer:
    """What a proxy source's target answered while the provider waited."""

    event_id: UUID
    target: str
    started_at: dt.datetime
    result: AttemptResult


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A refused request, for the rejected-request log."""

    source: str
    received_at: dt.datetime
    status: int
    reason: str
    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes  # the first 4 KiB
    peer: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker now holds, with what it needs from its event."""

    id: UUID
    event_id: UUID
    target: str
    attempt: int
    interruptions: int  # earlier attempts cut short: they do not use up the retry schedule
    source: str
    event_type: str | None
    received_at: dt.datetime
    headers: tuple[tuple[str, str], ...]
    body: bytes
    route: int | None = None  # the route that made the delivery: its middleware applies
    claimed_at: dt.datetime | None = None  # when this attempt started
    # The request line as received: the upstream target sends to the same path and query.
    method: str = "POST"
    path: str = "/"
    query: str = ""
    budget_from: int = 0  # attempts before its last replay: the retry schedule counts after
    traceparent: str | None = None  # the trace hookgate started at ingest, if it did


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    """What one claim took, and when the earliest delivery it left (or a limit) is due."""

    claimed: list[Claimed]
    next_due: dt.datetime | None = None
    allowed: Mapping[str, int] | None = None  # what each target's limits let it take now


@dataclass(frozen=True, slots=True)
class Finished:
    """A batch of results, committed: which deliveries this worker still held, and the
    breaker state of the targets whose health it recorded."""

    kept: list[bool]
    breakers: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How an attempt ended and where its delivery goes next."""

    delivery_id: UUID
    attempt: int
    duration_ms: float
    outcome: str
    status_code: int | None
    response_headers: Sequence[tuple[str, str]]
    response_body: bytes
    error: str | None
    next_status: str  # pending (retry), delivered or dead
    next_due: dt.datetime
    interrupted: bool = False  # not the target's answer to this message: keeps the schedule
    target: str = ""
    worker: str | None = None  # who made the attempt
    started_at: dt.datetime | None = None  # when it was claimed (now, if not given)
    # Its delivery's event: the delivery's partition key (None: looked up), and what an
    # alert links to.
    event_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Share:
    """A relay's part of a target's concurrency: what it may have in flight now, and
    what it gets once the other relays have given back what they hold beyond theirs."""

    share: int
    fair: int


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Turn driver errors into `StorageError`s; connection trouble into `StorageUnavailable`."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise StorageUnavailable(f"database unavailable: {type(exc).__name__}") from exc
    except asyncpg.PostgresError as exc:
        raise StorageError(f"database error: {exc.sqlstate} {type(exc).__name__}") from exc


class Store:
    """The queries hookgate runs, over one asyncpg pool."""

    def __init__(
        self, pool: asyncpg.Pool, sealer: Sealer | None = None, via: Connections | None = None
    ) -> None:
        self.pool = pool
        self.sealer = sealer or Sealer()  # encryption at rest; off by default
        self._ensured: set[str] = set()
        self._via = via
        # The open floor the last claim reported (migration 0024): the next one starts no
        # partition of a day before it. The lowest id until a claim has said.
        self._floor = NO_FLOOR

    def through(self, connections: Connections) -> Store:
        """This store with its statements run on `connections` (the ingest writers' own,
        see gateway/storage/writers.py) instead of the pool."""
        return Store(self.pool, self.sealer, connections)

    async def _execute(self, name: str, *args: Any) -> list[asyncpg.Record]:
        if self._via is not None:
            return await self._via.fetch(QUERIES[name], *args)
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            rows: list[asyncpg.Record] = await conn.fetch(QUERIES[name], *args)
            return rows

    async def ping(self) -> None:
        await self._execute("ping")

    async def insert_events(self, records: Sequence[EventRecord]) -> set[UUID]:
        """Write events and their deliveries in one transaction; the ids not stored because
        their dedupe key is taken. Two records in one call must not share a dedupe key."""
        if all(r.dedupe_key is None for r in records):
            await self._execute("insert_events_plain", *self.plain_args(records))
            return set()
        now = max(r.received_at for r in records)
        rows = await self._execute("insert_events", *self.plain_args(records, dedupe=True), now)
        return {row["id"] for row in rows}

    def plain_args(self, records: Sequence[EventRecord], dedupe: bool = False) -> list[Any]:
        """`insert_events_plain`'s arguments for `records` (with `dedupe`, `insert_events`'s
        first three: each event's dedupe key and window too): two JSON texts and the
        bodies."""
        events, bodies = [], []
        for r in records:
            key_id, headers, body = self.sealer.seal(event_row(r.id), r.headers, r.body)
            event = (r.id, r.source, r.event_type, r.received_at, r.method, r.path, r.query,
                     orjson.Fragment(headers), r.peer, r.routes, key_id, r.traceparent)  # fmt: skip
            events.append((*event, r.dedupe_key, r.dedupe_until) if dedupe else event)
            bodies.append(body)
        deliveries = [
            (d_id, n, target, (r.ordering or {}).get(target),
             (r.delivery_routes or {}).get(target))
            for n, r in enumerate(records, 1) for d_id, target in r.deliveries
        ]  # fmt: skip
        fields = _EVENT_FIELDS + _DEDUPE_FIELDS if dedupe else _EVENT_FIELDS
        return [_rows_json(events, fields), _rows_json(deliveries, _DELIVERY_FIELDS), bodies]

    async def dedupe_originals(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], UUID]:
        """The event holding each (source, dedupe key)."""
        rows = await self._execute(
            "dedupe_originals", [source for source, _ in keys], [key for _, key in keys]
        )
        return {(row["source"], row["key"]): row["event_id"] for row in rows}

    async def insert_proxy_answers(self, answers: Sequence[ProxyAnswer], worker: str) -> None:
        """Record proxy forwards as finished deliveries with their one attempt."""
        results = [a.result for a in answers]
        await self._execute(
            "insert_proxy_answers",
            [r.delivery_id for r in results],
            [a.event_id for a in answers],
            [a.target for a in answers],
            [r.next_status for r in results],
            [a.started_at for a in answers],
            [r.next_due for r in results],
            [r.duration_ms for r in results],
            [r.outcome for r in results],
            [r.status_code for r in results],
            [orjson.dumps(r.response_headers).decode() for r in results],
            [r.response_body for r in results],
            [r.error for r in results],
            worker,
        )

    async def insert_rejected(self, rows: Sequence[RejectedRecord]) -> None:
        sealed = [self.sealer.seal(rejected_row(r.source), r.headers, r.body) for r in rows]
        await self._execute(
            "insert_rejected",
            [r.source for r in rows],
            [r.received_at for r in rows],
            [r.status for r in rows],
            [r.reason for r in rows],
            [r.method for r in rows],
            [r.path for r in rows],
            [r.query for r in rows],
            [headers for _, headers, _ in sealed],
            [body for _, _, body in sealed],
            [r.peer for r in rows],
            [key_id for key_id, _, _ in sealed],
        )

    async def purge(
        self, rejected_before: dt.datetime, keys_before: dt.datetime
    ) -> tuple[int, int]:
        """Delete refused requests and dedupe keys past their time; how many of each."""
        (row,) = await self._execute("purge_expired", rejected_before, keys_before)
        return int(row["rejected"]), int(row["keys"])

    async def notify(self) -> None:
        """Wake the relays listening for new deliveries."""
        await self._execute("notify_deliveries")

    async def claim(
        self,
        quotas: dict[str, int],
        now: dt.datetime,
        lease: float,
        worker: str,
        limits: Mapping[str, TargetLimits] | None = None,
    ) -> list[Claimed]:
        """Take up to `quotas[target]` due deliveries per target; expired leases are due."""
        return (await self.claim_batch(quotas, now, lease, worker, limits)).claimed

    async def claim_batch(
        self,
        quotas: dict[str, int],
        now: dt.datetime,
        lease: float,
        worker: str,
        limits: Mapping[str, TargetLimits] | None = None,
        shared: Collection[str] = (),
    ) -> ClaimBatch:
        """`claim`, and when to look again. With `limits`, each target's concurrency, rate
        limit and breaker hold across every relay (see `claim_deliveries`); for a target in
        `shared`, the caller holds a share of its concurrency (`take_shares`) and its quota
        keeps within it, so the claim neither counts nor locks it for that."""
        limits = limits or {}
        concurrency, rate, burst, breaker, blocks = limit_columns(quotas, limits)
        async with translated(), self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            limited = [name for name in quotas if name in limits]
            if not self._ensured.issuperset(limited):  # their health is recorded there
                await conn.execute(QUERIES["ensure_targets"], limited, now)
                self._ensured.update(limited)
            floor = self._floor
            rows = await conn.fetch(
                QUERIES["claim_deliveries"], list(quotas), list(quotas.values()), now, lease,
                worker, blocks, concurrency, rate, burst, breaker,
                [name in shared for name in quotas], floor,
            )  # fmt: skip
        claimed = [self._claimed(row, now) for row in rows if row["id"] is not None]
        last = next(row for row in rows if row["id"] is None)
        self._floor = last["floor"] or NO_FLOOR  # never NULL, which would match nothing
        # Lowered since (a replay reopened an older day): what it reopened was not looked
        # at, so it is due now.
        next_due = now if self._floor < floor else last["next_due"]
        return ClaimBatch(claimed, next_due, dict(zip(quotas, last["allowed"], strict=True)))

    async def take_shares(
        self, worker: str, in_flight: Mapping[str, tuple[int, int]], now: dt.datetime, term: float
    ) -> dict[str, Share]:
        """`worker`'s shares of these targets' concurrency for `term` seconds; `in_flight`:
        per target, (its concurrency, this worker's deliveries in flight there). Shares of
        targets not named are given back."""
        rows = await self._execute(
            "take_shares", worker, list(in_flight), [c for c, _ in in_flight.values()],
            [n for _, n in in_flight.values()], now, term,
        )  # fmt: skip
        return {row["target"]: Share(row["share"], row["fair"]) for row in rows}

    async def release_shares(self, worker: str) -> None:
        await self._execute("release_shares", worker)

    async def finish(self, result: AttemptResult, now: dt.datetime) -> bool:
        """Record an attempt; False when the lease was lost and another worker took over."""
        return (await self.finish_many([result], now)).kept[0]

    async def finish_many(
        self, results: Sequence[AttemptResult], now: dt.datetime, health: Sequence[Health] = ()
    ) -> Finished:
        """Record attempts and what they say about their targets' health, in one call and
        one transaction; for each attempt, whether this worker still held its delivery."""
        rows = await self._execute("finish_attempts", *finish_args(results, now, health))
        return finished(rows, results)

    async def set_paused(
        self, target: str, paused: bool, reason: str | None, now: dt.datetime, by: str | None
    ) -> None:
        """Pause or resume `target` for every relay sharing this database."""
        await self._execute("set_target_paused", target, paused, reason, now, by)

    async def target_states(self, targets: Sequence[str]) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._execute("target_states", list(targets))]

    async def release(self, ids: Sequence[UUID], now: dt.datetime, worker: str) -> None:
        await self._execute("release_deliveries", list(ids), now, worker)

    async def unclaim(self, claimed: Sequence[Claimed], now: dt.datetime, worker: str) -> None:
        """Hand back deliveries claimed and never sent, as if they had not been claimed."""
        await self._execute(
            "unclaim_deliveries", [c.id for c in claimed], [c.event_id for c in claimed],
            [c.attempt for c in claimed], worker, now,
        )  # fmt: skip

    async def event(self, event_id: UUID) -> dict[str, Any] | None:
        rows = await self._execute("get_event", event_id)
        return self._event(rows[0]) if rows else None

    async def deliveries(self, event_id: UUID) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._execute("deliveries_for_event", event_id)]

    async def attempts(self, delivery_id: UUID) -> list[dict[str, Any]]:
        rows = await self._execute("attempts_for_delivery", delivery_id)
        return [{**row, "response_headers": _pairs(row["response_headers"])} for row in rows]

    def reveal(self, row: asyncpg.Record) -> tuple[Headers, bytes]:
        """An event row's plaintext headers and body (`id`, `key_id`, `headers`, `body`)."""
        return self.sealer.open(event_row(row["id"]), row["key_id"], row["headers"], row["body"])

    def _claimed(self, row: asyncpg.Record, now: dt.datetime | None = None) -> Claimed:
        headers, body = self.sealer.open(
            event_row(row["event_id"]), row["key_id"], row["headers"], row["body"]
        )
        return Claimed(
            id=row["id"],
            event_id=row["event_id"],
            target=row["target"],
            attempt=row["attempts"],
            interruptions=row["interruptions"],
            source=row["source"],
            event_type=row["event_type"],
            received_at=row["received_at"],
            headers=headers,
            body=body,
            route=row["route"],
            claimed_at=now,
            method=row["method"],
            path=row["path"],
            query=row["query"],
            budget_from=row["budget_from"],
            traceparent=row["traceparent"],
        )

    def _event(self, row: asyncpg.Record) -> dict[str, Any]:
        routes = orjson.loads(row["routes"]) if row["routes"] else None
        headers, body = self.reveal(row)
        event = {**row, "headers": headers, "body": body, "routes": routes}
        del event["key_id"]
        return event


def finish_args(
    results: Sequence[AttemptResult], now: dt.datetime, health: Sequence[Health]
) -> list[Any]:
    """`finish_attempts`'s arguments."""
    return [now, *_result_columns(results), *health_columns(health), [r.event_id for r in results]]


def finished(rows: Sequence[asyncpg.Record], results: Sequence[AttemptResult]) -> Finished:
    """What `finish_attempts` answered for `results`."""
    kept = {row["out_delivery"] for row in rows if row["out_delivery"] is not None}
    breakers = [
        {"name": row["out_target"], "failures": row["out_failures"],
         "breaker_until": row["out_until"], "breaker_reason": row["out_reason"]}
        for row in rows if row["out_target"] is not None
    ]  # fmt: skip
    return Finished([r.delivery_id in kept for r in results], breakers)


_EVENT_FIELDS = ("id", "source", "event_type", "received_at", "method", "path", "query",
                 "headers", "peer", "routes", "key_id", "traceparent")  # fmt: skip
_DEDUPE_FIELDS = ("dedupe_key", "dedupe_until")
_DELIVERY_FIELDS = ("id", "event", "target", "ordering_key", "route")


def _rows_json(rows: Sequence[tuple[Any, ...]], fields: tuple[str, ...]) -> str:
    """`rows` as a JSON array of objects with `fields` (what json_to_recordset reads)."""
    return orjson.dumps([dict(zip(fields, row, strict=True)) for row in rows]).decode()


def _pairs(value: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in orjson.loads(value)) if value else ()


def _result_columns(results: Sequence[AttemptResult]) -> list[list[Any]]:
    return [
        [r.delivery_id for r in results],
        [r.attempt for r in results],
        [r.duration_ms for r in results],
        [r.outcome for r in results],
        [r.status_code for r in results],
        [orjson.dumps(r.response_headers).decode() for r in results],
        [r.response_body for r in results],
        [r.error for r in results],
        [r.next_status for r in results],
        [r.next_due for r in results],
        [r.interrupted for r in results],
        [r.worker for r in results],
        [r.started_at for r in results],
    ]
