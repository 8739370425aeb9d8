"""Per-target flow control shared by every relay: concurrency, a token bucket and a
circuit breaker. Decided on the server, in the claim's one statement (the function
`hookgate.claim_allowance`, migration 0010); this module describes the limits and
turns them into that statement's arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


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


def limit_columns(
    quotas: Mapping[str, int], limits: Mapping[str, TargetLimits]
) -> tuple[list[int | None], list[float | None], list[float], list[bool], list[bool]]:
    """Per target of `quotas`, in order, the `claim_deliveries` arguments $7..$10 and $6:
    concurrency, rate, burst, breaker on, and whether a dead delivery blocks its key.
    A target without limits has no concurrency cap (its quota is what this relay may take)."""
    found = [limits.get(name) for name in quotas]
    return (
        [limit.concurrency if limit else None for limit in found],
        [limit.rate if limit else None for limit in found],
        [limit.burst if limit else 1.0 for limit in found],
        [bool(limit and limit.breaker_failures) for limit in found],
        [bool(limit and limit.block_on_dead) for limit in found],
    )


def health_columns(health: Sequence[Health]) -> list[list[Any]]:
    """The `finish_attempts` arguments $15..$24: per target, what a batch said about it."""
    return [
        [h.target for h in health],
        [h.reset for h in health],
        [h.failed for h in health],
        [h.threshold for h in health],
        [h.cooldown for h in health],
        [h.reason for h in health],
        [h.attempts for h in health],
        [h.failed_total for h in health],
        [h.window for h in health],
        [h.ratio for h in health],
    ]
