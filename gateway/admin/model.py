"""The admin model: what the JSON API, the inspector's pages and the CLI show and do.

It combines the admin queries (gateway/storage/admin.py, replay.py) with the config
(routes, which source verifies how, where credentials sit) and the clock. No HTTP here:
bad input is an `AdminError` with the status a handler should answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from uuid import UUID

from gateway.admin.records import (
    Attempt,
    Body,
    Delivery,
    EventDetail,
    Page,
    RawRequest,
    Rejected,
    ReplayDetail,
    ReplayResult,
    RouteMatch,
    TargetHealth,
    Verification,
    decode_int_cursor,
    decode_uuid_cursor,
    encode_cursor,
    page_of,
)
from gateway.alerting import Alerting, set_paused
from gateway.clock import Clock
from gateway.config import Config
from gateway.errors import AdminError
from gateway.ids import delivery_id, event_id
from gateway.ingress.guard import redaction_for
from gateway.ingress.redact import DEFAULT_HEADERS, Redaction
from gateway.plugins import Registry, load_registry
from gateway.storage.admin import (
    AdminStore,
    AttemptRow,
    BlockedKey,
    DeliveryListRow,
    DeliveryRow,
    EventFilter,
    EventRow,
    MinuteCounts,
    RejectedRow,
    ReplayFilter,
    ReplayMark,
    ReplayRecord,
    StoredEvent,
    TargetStats,
)
from gateway.storage.replay import ReplayRequest, Replays
from gateway.storage.store import Store

__all__ = [
    "DELIVERY_STATUSES", "EVENT_STATUSES", "AdminError", "AdminModel", "Attempt", "Body",
    "Delivery", "EventDetail", "EventFilter", "Page", "RawRequest", "Rejected",
    "ReplayDetail", "ReplayFilter", "ReplayResult", "RouteMatch", "TargetHealth",
    "Verification", "encode_cursor",
]  # fmt: skip

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
EVENT_STATUSES = ("dead", "pending", "delivered")
DELIVERY_STATUSES = (
    "pending", "in_flight", "delivered", "dead", "filtered", "cancelled", "queued",
)  # fmt: skip


class AdminModel:
    """Reads and actions of the admin surface, over the store, the config and a clock."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Clock,
        on_queued: Callable[[], None] | None = None,
        registry: Registry | None = None,
        alerting: Alerting | None = None,
    ) -> None:
        self.alerting = alerting  # a pause by hand alerts, like one for a 410
        self.on_queued = on_queued  # a bulk replay queued deliveries: wake the feeder
        self.store = AdminStore(store.pool, store.sealer)
        self.replays = Replays(store.pool)
        self.gateway_store = store
        self.clock = clock
        self._registry = registry or load_registry()
        self.use(config)

    def use(self, config: Config) -> None:
        """Show and act on `config`'s sources, targets and routes (a reload swapped it in)."""
        self.config = config
        # Requests are stored redacted (gateway/ingress/redact.py); shown redacted again,
        # the default credential headers always, for rows stored before that or by a
        # source whose redact_headers leaves one out.
        self._redactions = {name: redaction_for(source, self._registry, DEFAULT_HEADERS)
                            for name, source in config.sources.items()}  # fmt: skip

    # -- reading -------------------------------------------------------------------------

    async def events(
        self, f: EventFilter, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[EventRow]:
        if f.status is not None and f.status not in EVENT_STATUSES:
            raise AdminError(f"status: expected one of {', '.join(EVENT_STATUSES)}")
        limit = _limit(limit)
        rows = await self.store.events(f, decode_uuid_cursor(cursor), limit + 1)
        return page_of(rows, limit, rows[limit - 1].id if len(rows) > limit else None)

    async def event(self, event_id: UUID) -> EventDetail:
        stored = await self.store.event(event_id)
        if stored is None:
            raise AdminError("no event with this id", 404)
        rows = await self.store.deliveries_of(event_id)
        ids = [d.id for d in rows]
        attempts = await self.store.attempts_of(ids)
        marks = await self.store.replays_of(ids)
        return EventDetail(
            id=stored.id,
            source=stored.source,
            event_type=stored.event_type,
            received_at=stored.received_at,
            request=self._request(stored.source, stored),
            verification=self._verification(stored),
            matched_routes=self._routes(stored, "matched"),
            unmatched_routes=self._routes(stored, "unmatched"),
            deliveries=tuple(_delivery(d, attempts, marks) for d in rows),
        )

    async def deliveries(
        self,
        status: str | None = "dead",
        target: str | None = None,
        since: dt.datetime | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[DeliveryListRow]:
        if status is not None and status not in DELIVERY_STATUSES:
            raise AdminError(f"status: expected one of {', '.join(DELIVERY_STATUSES)}")
        limit = _limit(limit)
        rows = await self.store.deliveries(
            status, target, since, decode_uuid_cursor(cursor), limit + 1
        )
        return page_of(rows, limit, rows[limit - 1].id if len(rows) > limit else None)

    async def rejected(
        self,
        source: str | None = None,
        since: dt.datetime | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[Rejected]:
        limit = _limit(limit)
        rows = await self.store.rejected(source, since, decode_int_cursor(cursor), limit + 1)
        items = [self._rejected(row) for row in rows]
        return page_of(items, limit, rows[limit - 1].id if len(rows) > limit else None)

    async def targets(self) -> tuple[TargetHealth, ...]:
        now = self.clock.now()
        stats = await self.store.target_stats(list(self.config.targets), now)
        return tuple(self._health(s, now) for s in stats)

    async def target(self, name: str) -> TargetHealth:
        self._target_config(name)
        now = self.clock.now()
        (stats,) = await self.store.target_stats([name], now)
        return self._health(stats, now)

    async def blocked_keys(self, target: str, limit: int = DEFAULT_LIMIT) -> tuple[BlockedKey, ...]:
        self._target_config(target)
        return tuple(await self.store.blocked_keys(target, _limit(limit)))

    async def series(self, minutes: int = 60) -> tuple[MinuteCounts, ...]:
        return tuple(await self.store.series(self.clock.now(), minutes))

    async def replay_list(
        self, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[ReplayRecord]:
        limit = _limit(limit)
        rows = await self.store.replays(decode_uuid_cursor(cursor), limit + 1)
        return page_of(rows, limit, rows[limit - 1].id if len(rows) > limit else None)

    async def replay_detail(
        self, replay_id: UUID, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> ReplayDetail:
        record = await self.store.replay(replay_id)
        if record is None:
            raise AdminError("no replay with this id", 404)
        limit = _limit(limit)
        rows = await self.store.replayed(replay_id, decode_uuid_cursor(cursor), limit + 1)
        key = rows[limit - 1].delivery_id if len(rows) > limit else None
        return ReplayDetail(record, page_of(rows, limit, key))

    # -- acting --------------------------------------------------------------------------

    async def replay_event(
        self, event: UUID, by: str, targets: Sequence[str] | None = None, new_key: bool = False
    ) -> ReplayResult:
        """Re-queue one event to `targets` (default: every target it had), due now."""
        if await self.store.event(event) is None:
            raise AdminError("no event with this id", 404)
        had = {d.target for d in await self.store.deliveries_of(event)}
        wanted = list(dict.fromkeys(targets)) if targets is not None else sorted(had)
        for name in wanted:
            if name not in had:
                self._target_config(name, status=422, where="targets")
        new = {name: delivery_id(event, name) for name in wanted if name not in had}
        request = self._request_for(by, new_key, dry_run=False)
        counts = await self.replays.replay_event(
            request, event, [t for t in wanted if t in had], new
        )
        return ReplayResult(request.id, False, counts)

    async def replay_matching(
        self, f: ReplayFilter, by: str, dry_run: bool, new_key: bool = False
    ) -> ReplayResult:
        """Queue every delivery matching `f`; the feeder lets them in as targets have room."""
        if f.status is not None and f.status not in DELIVERY_STATUSES:
            raise AdminError(f"filter.status: expected one of {', '.join(DELIVERY_STATUSES)}")
        for name in f.targets or ():
            self._target_config(name, status=422, where="targets")
        request = self._request_for(by, new_key, dry_run)
        counts = await self.replays.replay_matching(request, f)
        if not dry_run and counts.deliveries and self.on_queued is not None:
            self.on_queued()
        return ReplayResult(request.id, dry_run, counts)

    async def cancel(self, delivery: UUID, by: str) -> None:
        status, cancelled = await self.store.cancel(delivery, self.clock.now(), by)
        if status is None:
            raise AdminError("no delivery with this id", 404)
        if not cancelled:
            raise AdminError(
                f"only a pending or queued delivery can be cancelled; it is {status}", 409
            )

    async def release_key(self, target: str, key: str) -> int:
        self._target_config(target)
        released = await self.store.release_key(target, key, self.clock.now())
        if not released:
            raise AdminError("no dead delivery holds this key", 404)
        return released

    async def set_paused(self, target: str, paused: bool, reason: str | None, by: str) -> None:
        self._target_config(target)
        now = self.clock.now()
        await set_paused(self.gateway_store, self.alerting, target, paused, reason, now, by)

    # -- helpers -------------------------------------------------------------------------

    def _request_for(self, by: str, new_key: bool, dry_run: bool) -> ReplayRequest:
        now = self.clock.now()
        return ReplayRequest(event_id(now), now, by, new_key, dry_run)

    def _target_config(self, name: str, status: int = 404, where: str = "target") -> None:
        if name not in self.config.targets:
            raise AdminError(f"{where}: no target named {name!r}", status)

    def _request(self, source: str, row: StoredEvent | RejectedRow) -> RawRequest:
        redaction = self._redactions.get(source) or Redaction.of(DEFAULT_HEADERS)
        return RawRequest(
            method=row.method,
            path=row.path,
            query=redaction.redact_query(row.query),
            headers=tuple(redaction.redact_headers(row.headers)),
            body=Body.of(row.body),
            peer=row.peer,
        )

    def _verification(self, stored: StoredEvent) -> Verification:
        """What verified the event when it came in; for rows stored before ingest recorded
        it, its source's `verify:` in the config now."""
        decided = stored.routes or {}
        if "verified_by" in decided:
            scheme = decided["verified_by"]
        else:
            config = self.config.sources.get(stored.source)
            scheme = config.verify.type if config is not None and config.verify else None
        return Verification(scheme, scheme is not None)

    def _routes(self, stored: StoredEvent, which: str) -> tuple[RouteMatch, ...]:
        indexes = (stored.routes or {}).get(which, [])
        routes = self.config.routes
        return tuple(
            RouteMatch(i, routes[i].targets if 0 <= i < len(routes) else ()) for i in indexes
        )

    def _rejected(self, row: RejectedRow) -> Rejected:
        request = self._request(row.source, row)
        return Rejected(row.id, row.source, row.received_at, row.status, row.reason, request)

    def _health(self, stats: TargetStats, now: dt.datetime) -> TargetHealth:
        until = stats.breaker_until
        breaker = "closed" if until is None else ("open" if until > now else "half-open")
        ratio = stats.succeeded / stats.attempts if stats.attempts else None
        config = self.config.targets.get(stats.name)
        ordering = config.ordering if config is not None else None
        blocks = bool(ordering and ordering.on_dead == "block")
        return TargetHealth(stats, breaker, ratio, blocks)


def _limit(limit: int) -> int:
    if limit < 1:
        raise AdminError("limit: expected a whole number >= 1")
    return min(limit, MAX_LIMIT)


def _delivery(
    row: DeliveryRow, attempts: Sequence[AttemptRow], marks: Sequence[ReplayMark]
) -> Delivery:
    own_marks = tuple(m for m in marks if m.delivery_id == row.id)
    history = tuple(_attempt(a, own_marks) for a in attempts if a.delivery_id == row.id)
    return Delivery(
        id=row.id, target=row.target, status=row.status, attempts=row.attempts,
        budget_from=row.budget_from, due_at=row.due_at, last_outcome=row.last_outcome,
        last_error=row.last_error, ordering_key=row.ordering_key,
        released_key=row.released_key, route=row.route, history=history, replays=own_marks,
    )  # fmt: skip


def _attempt(row: AttemptRow, marks: Sequence[ReplayMark]) -> Attempt:
    after = [m.replay_id for m in marks if m.attempts_before < row.attempt]
    return Attempt(
        attempt=row.attempt, worker=row.worker, started_at=row.started_at,
        duration_ms=row.duration_ms, outcome=row.outcome, status_code=row.status_code,
        response_headers=row.response_headers, response=Body.of(row.response_body),
        error=row.error, replay_id=after[-1] if after else None,
    )  # fmt: skip
