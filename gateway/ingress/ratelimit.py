"""Token buckets per source and per caller, checked before the body is read.

In-process: each replica limits what it receives (the load balancer spreads a flood).
The per-caller table is bounded, so a flood from many addresses cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from gateway.errors import RateLimited
from gateway.sources import RateLimit

MAX_CALLERS = 10_000


@dataclass(slots=True)
class Bucket:
    limit: RateLimit
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0 if a token was taken, else seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.limit.burst, self.tokens + elapsed * self.limit.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.limit.rate


class Limiter:
    """One source's limits: overall, and (optionally) per caller address."""

    def __init__(self, overall: RateLimit | None, per_caller: RateLimit | None) -> None:
        self._overall = Bucket(overall, overall.burst, 0.0) if overall else None
        self._per_caller = per_caller
        self._callers: OrderedDict[str, Bucket] = OrderedDict()
        self.limited = overall is not None or per_caller is not None  # else check is a no-op

    def check(self, caller: str | None, now: float) -> None:
        """Take a token or raise `RateLimited` with the wait in seconds."""
        wait = self._caller_bucket(caller, now).take(now) if self._per_caller else 0.0
        if not wait and self._overall is not None:
            wait = self._overall.take(now)
        if wait:
            raise RateLimited(wait, "rate limit exceeded")

    def _caller_bucket(self, caller: str | None, now: float) -> Bucket:
        assert self._per_caller is not None
        key = caller or "-"
        bucket = self._callers.get(key)
        if bucket is None:
            bucket = self._callers[key] = Bucket(self._per_caller, self._per_caller.burst, now)
            if len(self._callers) > MAX_CALLERS:
                self._callers.popitem(last=False)
        self._callers.move_to_end(key)
        return bucket
