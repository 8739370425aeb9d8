"""What a batch of attempts says about its targets' health, and the breakers a relay
has seen open: the circuit breaker's side of the relay (its state is kept in
`hookgate.targets`, written with the results; see `finish_attempts`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import structlog

from gateway.alerting import BreakerChange
from gateway.contract.outcome import DELIVERED, Outcome
from gateway.relay.lanes import Lane
from gateway.storage.limits import Health, TargetLimits
from gateway.storage.store import AttemptResult

log = structlog.get_logger("hookgate.relay")


def limits_of(lane: Lane) -> TargetLimits:
    """The lane's flow-control limits, as the claims and results ask for them."""
    rate, breaker = lane.config.rate_limit, lane.config.breaker
    return TargetLimits(
        concurrency=lane.config.concurrency,
        rate=rate.rate if rate else None,
        burst=rate.burst if rate else 1.0,
        breaker_failures=breaker.failures if breaker else 0,
        breaker_cooldown=breaker.cooldown if breaker else 0.0,
        breaker_ratio=breaker.ratio if breaker else 0.0,
        breaker_window=breaker.window if breaker else 0,
        block_on_dead=bool(lane.config.ordering and lane.config.ordering.on_dead == "block"),
    )


# The target answered (whatever it said): it is up. Its trouble: it is not.
ANSWERED = DELIVERED | {Outcome.HTTP_3XX, Outcome.HTTP_4XX_PERMANENT, Outcome.GONE}
FAILED = frozenset({Outcome.HTTP_5XX, Outcome.TIMEOUT, Outcome.CONNECT_ERROR,
                     Outcome.DNS_ERROR, Outcome.TLS_ERROR, Outcome.TARGET_ERROR})  # fmt: skip


def health_of(results: list[AttemptResult], limits: dict[str, TargetLimits]) -> list[Health]:
    """Per target with a breaker, in order: failures since its last answer in this batch."""
    # target -> [answered since, failed since its last answer, failed in all, attempts, reason]
    seen: dict[str, list[Any]] = {}
    for result in results:
        limit = limits.get(result.target)
        if limit is None or not limit.breaker_failures:
            continue
        counts = seen.get(result.target)
        if counts is None:
            counts = seen[result.target] = [False, 0, 0, 0, None]
        if result.outcome in ANSWERED:
            counts[0], counts[1] = True, 0
            counts[3] += 1
        elif result.outcome in FAILED:
            counts[1] += 1
            counts[2] += 1
            counts[3] += 1
            counts[4] = result.error or result.outcome
    return [
        Health(target, reset, failed, limit.breaker_failures, limit.breaker_cooldown, reason,
               attempts=attempts, failed_total=failed_total, window=limit.breaker_window,
               ratio=limit.breaker_ratio)
        for target, (reset, failed, failed_total, attempts, reason) in seen.items()
        for limit in (limits[target],)
    ]  # fmt: skip


class Breakers:
    """The breakers one relay has seen open, so that the result which closes one is
    known as a close (and logged, and alerted) wherever it was opened."""

    def __init__(self) -> None:
        self.open: set[str] = set()

    def saw_open(self, names: Iterable[str]) -> None:
        """Breakers the database says are open (another relay may have opened them)."""
        self.open |= set(names)

    def changes(
        self, rows: list[dict[str, object]], health: list[Health], now: dt.datetime
    ) -> list[BreakerChange]:
        """(target, True) for each breaker these results opened, (target, False) for each
        they closed that this relay saw open."""
        failed = {h.target: h for h in health}
        changes = []
        for row in rows:
            name, until = str(row["name"]), row["breaker_until"]
            is_open = isinstance(until, dt.datetime) and until > now
            if is_open and failed[name].failed:
                changes.append((name, True))
            elif not is_open and name in self.open:
                changes.append((name, False))
        return changes

    def record(self, rows: list[dict[str, object]], health: list[Health], now: dt.datetime) -> None:
        """Log what these results opened and closed, and remember what is open now."""
        changed = dict(self.changes(rows, health, now))
        for row in rows:
            name, until = str(row["name"]), row["breaker_until"]
            if changed.get(name) is True:
                log.warning(
                    "breaker_opened", target=name, until=str(until), reason=row["breaker_reason"]
                )
            elif changed.get(name) is False:
                log.info("breaker_closed", target=name)
            is_open = isinstance(until, dt.datetime) and until > now
            (self.open.add if is_open else self.open.discard)(name)
