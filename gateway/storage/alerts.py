"""Failure alerts in the database: written as ordinary events, once per interval.

An alert is an event of the reserved source `_alerts` with one delivery per alert
target, so the relay sends it like any other (retries, dead letters, the inspector,
replay). It is written in the transaction of what caused it where there is one (the
attempts' results that made a delivery dead or opened a breaker, a pause), and only if
`hookgate.alert_state` says none of its kind about its target was sent within the
interval: that row is the one place N relays agree (see `claim_alerts`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from gateway.storage.limits import Health
from gateway.storage.queries import QUERIES
from gateway.storage.store import (
    ACQUIRE_TIMEOUT,
    AttemptResult,
    EventRecord,
    Finished,
    Store,
    finish_args,
    finished,
    translated,
)

SOURCE = "_alerts"  # not a name a configured source can have: never reachable at /in/
_HEADERS = (("Content-Type", "application/json"),)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert to raise, ready to be written: its body lacks only `suppressed`."""

    event_id: UUID
    about: str  # the target it is about
    kind: str  # delivery.dead, breaker.opened, breaker.closed, target.paused, target.backlog
    body: Mapping[str, Any]
    deliveries: tuple[tuple[UUID, str], ...]  # (delivery id, alert target)
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Raised:
    """What became of an alert: sent (its event written) or suppressed by the interval."""

    alert: Alert
    sent: bool
    suppressed: int = 0  # sent: how many of its kind about its target were not, before it


class AlertStore:
    """Writes alerts over a `Store`'s pool, at most one per (target, kind) per `interval`."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval

    async def finish(
        self,
        results: Sequence[AttemptResult],
        now: dt.datetime,
        health: Sequence[Health],
        alerts_for: Callable[[Finished], Sequence[Alert]],
    ) -> tuple[Finished, list[Raised]]:
        """`Store.finish_many`, and the alerts its outcome calls for, in one transaction."""
        async with self._transaction() as conn:
            rows = await conn.fetch(QUERIES["finish_attempts"], *finish_args(results, now, health))
            done = finished(rows, results)
            return done, await self._raise(conn, alerts_for(done), now)

    async def set_paused(
        self,
        target: str,
        reason: str | None,
        now: dt.datetime,
        by: str | None,
        alert: Alert | None,
    ) -> list[Raised]:
        """`Store.set_paused(target, True, ...)` and its alert, in one transaction."""
        async with self._transaction() as conn:
            await conn.execute(QUERIES["set_target_paused"], target, True, reason, now, by)
            return await self._raise(conn, [alert] if alert else [], now)

    async def raise_alerts(self, alerts: Sequence[Alert], now: dt.datetime) -> list[Raised]:
        """Alerts with no transaction of their own cause (a backlog seen by a check)."""
        if not alerts:
            return []
        async with self._transaction() as conn:
            return await self._raise(conn, alerts, now)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        acquired = self.store.pool.acquire(timeout=ACQUIRE_TIMEOUT)
        async with translated(), acquired as conn, conn.transaction():
            yield conn

    async def _raise(
        self, conn: asyncpg.Connection, alerts: Sequence[Alert], now: dt.datetime
    ) -> list[Raised]:
        groups: dict[tuple[str, str], list[Alert]] = {}
        # In one order (by key) in every transaction, so two relays' upserts never wait
        # for each other's rows in a cycle; each transaction locks these rows last.
        for alert in sorted(alerts, key=lambda a: (a.about, a.kind)):
            groups.setdefault((alert.about, alert.kind), []).append(alert)
        if not groups:
            return []
        rows = await conn.fetch(
            QUERIES["claim_alerts"],
            [about for about, _ in groups],
            [kind for _, kind in groups],
            [len(group) for group in groups.values()],
            self.interval,
            now,
        )
        decided = {(row["target"], row["kind"]): row for row in rows}
        raised: list[Raised] = []
        for key, (first, *others) in groups.items():
            row = decided[key]
            raised.append(Raised(first, row["sent"], row["reported"] if row["sent"] else 0))
            raised.extend(Raised(alert, False) for alert in others)
        records = [_record(r.alert, r.suppressed) for r in raised if r.sent]
        if records:
            await conn.execute(QUERIES["insert_events_plain"], *self.store.plain_args(records))
        return raised


def _record(alert: Alert, suppressed: int) -> EventRecord:
    body = orjson.dumps({**alert.body, "suppressed": suppressed})
    return EventRecord(
        id=alert.event_id,
        source=SOURCE,
        event_type=alert.kind,
        received_at=alert.at,
        method="POST",
        path=f"/{SOURCE}",
        query="",
        headers=_HEADERS,
        body=body,
        peer=None,
        deliveries=alert.deliveries,
    )
