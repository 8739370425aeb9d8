"""Per-target flow control shared by every relay: concurrency, a token bucket and a
circuit breaker, kept in hookgate.targets and enforced inside the claim transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from gateway.storage.queries import QUERIES


@dataclass(frozen=True, slots=True)
class TargetLimits:
    """A target's limits across every relay."""

    concurrency: int
    rate: float | None = None  # deliveries started per second
    burst: float = 1.0
    breaker_failures: int = 0  # consecutive failures that open the breaker; 0: no breaker
    breaker_cooldown: float = 30.0
    breaker_ratio: float = 0.0  # or this share of failures over `breaker_window` attempts
    breaker_window: int = 0
    block_on_dead: bool = False  # ordering: a dead delivery holds back later ones of its key


@dataclass(frozen=True, slots=True)
class Health:
    """What a batch of attempts says about a target, for its circuit breaker."""

    target: str
    reset: bool  # it answered at least once: failures count from the last answer
    failed: int
    threshold: int
    cooldown: float
    reason: str | None
    attempts: int = 0  # answered or failed, for the failure ratio
    failed_total: int = 0
    window: int = 0  # attempts per ratio window; 0: no ratio
    ratio: float = 0.0


async def claim_limited(
    conn: asyncpg.Connection,
    quotas: dict[str, int],
    now: dt.datetime,
    lease: float,
    worker: str,
    limits: Mapping[str, TargetLimits],
) -> list[asyncpg.Record]:
    """Claim within each target's limits, holding the targets' rows locked (in the caller's
    transaction) so every relay sees the same in-flight count, tokens and breaker."""
    names = list(quotas)
    states = {row["name"]: row for row in await conn.fetch(QUERIES["lock_targets"], names)}
    busy = {row["target"]: row["n"] for row in await conn.fetch(QUERIES["in_flight"], names, now)}
    allowed, tokens, probing = _allowance(quotas, limits, states, busy, now)
    blocks = [limits[name].block_on_dead if name in limits else False for name in allowed]
    rows = await conn.fetch(
        QUERIES["claim_deliveries"], list(allowed), list(allowed.values()), now, lease, worker,
        blocks,
    ) if allowed else []  # fmt: skip
    probes = sorted({row["target"] for row in rows} & probing)
    if probes:
        await conn.execute(QUERIES["hold_probe"], probes, now + dt.timedelta(seconds=lease))
    if tokens:
        for row in rows:
            if row["target"] in tokens:
                tokens[row["target"]] -= 1
        await conn.execute(QUERIES["spend_tokens"], list(tokens), list(tokens.values()), now)
    return list(rows)


def _allowance(
    quotas: dict[str, int],
    limits: Mapping[str, TargetLimits],
    states: Mapping[str, asyncpg.Record],
    busy: Mapping[str, int],
    now: dt.datetime,
) -> tuple[dict[str, int], dict[str, float], set[str]]:
    """How many each target may start now; the tokens of rate-limited ones; half-open ones."""
    tokens: dict[str, float] = {}
    allowed: dict[str, int] = {}
    probing: set[str] = set()
    for name, quota in quotas.items():
        limit = limits.get(name)
        free = quota if limit is None else min(quota, limit.concurrency - busy.get(name, 0))
        if limit is not None and limit.rate is not None:
            tokens[name] = _refill(states.get(name), limit, now)
            free = min(free, int(tokens[name]))
        breaker = _breaker(states.get(name), limit, now)
        if breaker == "open":
            free = 0
        elif breaker == "half-open":
            free = min(free, 1)
            probing.add(name)
        if free > 0:
            allowed[name] = free
    return allowed, tokens, probing


def _breaker(state: asyncpg.Record | None, limit: TargetLimits | None, now: dt.datetime) -> str:
    """closed, open (cooling down: claim nothing) or half-open (let one probe through)."""
    if state is None or limit is None or not limit.breaker_failures:
        return "closed"
    until = state["breaker_until"]  # set while tripped; cleared by an answer
    if until is None:
        return "closed"
    return "open" if until > now else "half-open"


def _refill(state: asyncpg.Record | None, limit: TargetLimits, now: dt.datetime) -> float:
    """The bucket's tokens now: full at first, refilled at `rate`, at most `burst`."""
    if state is None or state["tokens"] is None or state["tokens_at"] is None:
        return limit.burst
    elapsed: float = max(0.0, (now - state["tokens_at"]).total_seconds())
    return min(limit.burst, float(state["tokens"]) + elapsed * (limit.rate or 0.0))
