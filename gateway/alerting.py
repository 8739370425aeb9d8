"""Failure alerts: what to say when a delivery goes dead, a breaker opens or closes, a
target is paused or its backlog passes a threshold, and to whom.

`Alerting` builds each alert (its JSON body, its deliveries to the alert targets) and
writes it through `AlertStore` in the transaction of what caused it; the relay then
sends it like any delivery. It never alerts about an alert delivery going dead (a
broken alert target must not feed itself), and an alert about an alert target goes
to the other alert targets only. The backlog check (`watch`) runs in every relay;
`hookgate.alert_state` makes N of them send one alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog

from gateway.alerts import AlertsConfig, is_alert_target
from gateway.clock import Clock
from gateway.config import Config, ServerConfig
from gateway.errors import StorageError
from gateway.ids import delivery_id, event_id
from gateway.metrics import Metrics
from gateway.storage.alerts import Alert, AlertStore, Raised
from gateway.storage.limits import Health
from gateway.storage.stats import queue_gauges
from gateway.storage.store import AttemptResult, Finished, Store

log = structlog.get_logger("hookgate.alerts")
CHECK_EVERY = 15.0  # seconds between backlog checks (the queue-gauge query, per relay)
_WILDCARD = {"0.0.0.0", "::", ""}
# A breaker change seen in a batch of results: (target, opened); see Breakers.changes
# in gateway/relay/health.py.
BreakerChange = tuple[str, bool]


def inspector_base(config: AlertsConfig, server: ServerConfig) -> str:
    """Where alerts link to: `inspector_url`, else this machine at the server's port."""
    if config.inspector_url:
        return config.inspector_url
    host = socket.gethostname() if server.host in _WILDCARD else server.host
    return f"http://{f'[{host}]' if ':' in host else host}:{server.port}"


def alerting_for(config: Config, store: Store, metrics: Metrics) -> Alerting | None:
    """The alerts of a process under `config`, over `store`: None without `alerts.targets`."""
    if not config.alerts.targets:
        return None
    return Alerting(config.alerts, config.server, store, metrics)


async def set_paused(
    store: Store, alerting: Alerting | None, target: str, paused: bool, reason: str | None,
    now: dt.datetime, by: str | None, status: int | None = None,
) -> None:  # fmt: skip
    """Pause `target` (alerting about it, in the same transaction, when there are alert
    targets; `status` 410 when the target asked for it) or resume it."""
    if paused and alerting is not None:
        await alerting.pause(target, reason, now, by, status)
    else:
        await store.set_paused(target, paused, reason if paused else None, now, by)


class Alerting:
    """Raises alerts for one process (a relay, or the admin's pause)."""

    def __init__(
        self, config: AlertsConfig, server: ServerConfig, store: Store, metrics: Metrics
    ) -> None:
        self.config = config
        self.base = inspector_base(config, server)
        self.store = AlertStore(store, config.min_interval)
        self.metrics = metrics
        self._over: set[str] = set()  # targets over a backlog threshold at the last check

    # -- writing, in the transaction of the cause ------------------------------------

    def may_alert(self, results: Sequence[AttemptResult], health: Sequence[Health],
                  open_breakers: set[str]) -> bool:  # fmt: skip
        """Whether these results can call for an alert (else they are written as usual)."""
        dead = self.config.wants("delivery.dead") and any(
            r.next_status == "dead" and not is_alert_target(r.target) for r in results
        )
        breaker = self.config.wants("breaker.opened") and any(
            h.failed or (h.reset and h.target in open_breakers) for h in health
        )
        return dead or breaker

    async def finish(
        self,
        results: Sequence[AttemptResult],
        now: dt.datetime,
        health: Sequence[Health],
        changes: Callable[[Finished], Sequence[BreakerChange]],
    ) -> Finished:
        """Record the results with the alerts they call for (dead deliveries, breakers).
        Alerts never stand in the way of results: if that write fails, the results are
        written alone (and fail too if the database is the trouble)."""
        try:
            done, raised = await self.store.finish(
                results, now, health,
                lambda done: self.for_results(results, done, changes(done), now),
            )  # fmt: skip
        except StorageError as exc:
            log.error("alert_write_failed", error=exc.message)
            return await self.store.store.finish_many(results, now, health)
        await self._report(raised)
        return done

    async def pause(
        self, target: str, reason: str | None, now: dt.datetime, by: str | None,
        status: int | None = None,
    ) -> None:  # fmt: skip
        """Pause `target` (by hand, or for a 410 `status`) and alert about it."""
        alert = self._alert(
            "target.paused", target, _reason("GONE" if status == 410 else None, status, reason),
            now, {"by": by}, f"{self.base}/admin/targets",
        )  # fmt: skip
        try:
            raised = await self.store.set_paused(target, reason, now, by, alert)
        except StorageError as exc:
            log.error("alert_write_failed", error=exc.message)
            await self.store.store.set_paused(target, True, reason, now, by)
            return
        await self._report(raised)

    def for_results(
        self,
        results: Sequence[AttemptResult],
        done: Finished,
        changes: Iterable[BreakerChange],
        now: dt.datetime,
    ) -> list[Alert]:
        """The alerts a committed batch calls for: one per dead delivery still held,
        one per breaker it opened or closed (with the target's last result as reason)."""
        made: list[Alert | None] = [
            self.dead(result, now)
            for result, kept in zip(results, done.kept, strict=True)
            if kept and result.next_status == "dead"
        ]
        last = {r.target: r for r in results}
        failed = {r.target: r for r in results if r.next_status != "delivered"}
        for target, opened in changes:
            result = (failed if opened else last).get(target) or last.get(target)
            made.append(self.breaker(target, opened, result, now))
        return [alert for alert in made if alert is not None]

    # -- what each alert says ---------------------------------------------------------

    def dead(self, result: AttemptResult, now: dt.datetime) -> Alert | None:
        if is_alert_target(result.target):
            return None  # an alert that could not be delivered is a dead letter, not an alert
        event = str(result.event_id) if result.event_id else None
        return self._alert(
            "delivery.dead", result.target, _result_reason(result), now,
            {"event_id": event, "delivery_id": str(result.delivery_id)},
            f"{self.base}/admin/events/{event}" if event else f"{self.base}/admin/dead",
        )  # fmt: skip

    def breaker(
        self, target: str, opened: bool, result: AttemptResult | None, now: dt.datetime
    ) -> Alert | None:
        kind = "breaker.opened" if opened else "breaker.closed"
        reason = _result_reason(result) if result else _reason(None, None, None)
        return self._alert(kind, target, reason, now, {}, f"{self.base}/admin/targets")

    def backlog(self, row: Mapping[str, Any], now: dt.datetime) -> Alert | None:
        due, age = int(row["due"]), float(row["oldest_due_age"] or 0.0)
        error = f"{due} deliveries due, the oldest for {age:.0f}s"
        extra = {"due": due, "oldest_due_age": round(age, 3), "backlog_threshold":
                 self.config.backlog, "oldest_due_threshold": self.config.oldest_due}  # fmt: skip
        return self._alert(
            "target.backlog", str(row["name"]), _reason(None, None, error), now, extra,
            f"{self.base}/admin/targets",
        )  # fmt: skip

    def _alert(
        self,
        kind: str,
        about: str,
        reason: Mapping[str, Any],
        now: dt.datetime,
        extra: Mapping[str, Any],
        url: str,
    ) -> Alert | None:
        to = [name for name in self.config.targets if name != about]
        if not self.config.wants(kind) or not to:
            return None
        new = event_id(now)
        body = {"type": kind, "target": about, "reason": reason, **extra, "url": url,
                "at": now.isoformat()}  # fmt: skip
        return Alert(new, about, kind, body, tuple((delivery_id(new, t), t) for t in to), now)

    # -- the backlog check ------------------------------------------------------------

    async def check(self, targets: Sequence[str], now: dt.datetime) -> set[str]:
        """Alert about targets whose backlog crossed a threshold since the last check;
        the targets whose breaker the database says is open."""
        rows = await queue_gauges(self.store.store, targets, now)
        over = {str(row["name"]): row for row in rows if self._over_threshold(row)}
        alerts = [self.backlog(over[name], now) for name in sorted(over.keys() - self._over)]
        await self._report(await self.store.raise_alerts([a for a in alerts if a], now))
        self._over = set(over)
        return {str(row["name"]) for row in rows if row["breaker_open"]}

    async def watch(
        self, targets: Sequence[str], clock: Clock, seen_open: Callable[[set[str]], None],
        every: float = CHECK_EVERY,
    ) -> None:  # fmt: skip
        """`check` every `every` seconds until cancelled."""
        while True:
            try:
                seen_open(await self.check(targets, clock.now()))
            except StorageError as exc:
                log.warning("alert_check_failed", error=exc.message)
            await asyncio.sleep(every)

    def _over_threshold(self, row: Mapping[str, Any]) -> bool:
        backlog, oldest = self.config.backlog, self.config.oldest_due
        age = row["oldest_due_age"]
        return (backlog is not None and row["due"] >= backlog) or (
            oldest is not None and age is not None and age >= oldest
        )

    async def _report(self, raised: Sequence[Raised]) -> None:
        for item in raised:
            result = "sent" if item.sent else "suppressed"
            self.metrics.alerted(item.alert.kind, result)
            if item.sent:
                log.warning(
                    "alert_raised", kind=item.alert.kind, about=item.alert.about,
                    alert_event_id=str(item.alert.event_id), suppressed=item.suppressed,
                )  # fmt: skip
        if any(item.sent for item in raised):
            with contextlib.suppress(StorageError):  # committed; relays poll if this is lost
                await self.store.store.notify()  # wake every relay: the alert is due now


def _result_reason(result: AttemptResult) -> dict[str, Any]:
    reason = _reason(result.outcome, result.status_code, result.error)
    if result.response_body:
        reason["response"] = result.response_body[:256].decode("utf-8", "replace")
    return reason


def _reason(outcome: str | None, status: int | None, error: str | None) -> dict[str, Any]:
    return {"outcome": outcome, "status": status, "error": error}
