"""Deliveries claimed ahead: the next lane's worth, taken while the current one is sent.

A relay claims again once half of a lane is free, but a claim takes milliseconds and a
busy relay's event loop turns are long: the rest of the lane had been answered before
the claim came back, so claims and sends took turns (README, Performance). A relay that
runs its claim loop therefore claims up to one more lane's worth than it may have in
flight, for a target without a rate limit or ordering whose breaker it has not seen
open, and starts those as its slots free up: it still sends at most its share at once.

A delivery held here was never sent. It is given back (pending again, the claim's
attempt undone, no attempt written: none was made) when the relay stops, a reload
replaces its target, its breaker opens, a claim finds the target paused or tripped, or
it waited `STALE` seconds (found on a timer every `STALE`), far inside its lease. A
pause set elsewhere stops new sends at this relay's next claim, milliseconds away while
it is busy; what it holds until then may still go out, as a claim under way at the
moment of a pause always could.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterable

import structlog

from gateway.clock import Clock
from gateway.errors import StorageError
from gateway.logging import Sampled
from gateway.relay.lanes import Lane
from gateway.storage.store import Claimed, Store

log = structlog.get_logger("hookgate.relay")
# A delivery held longer than this is given back (the target is slow: nothing gained).
STALE = 1.0


class Ahead:
    """What one relay holds claimed ahead, per target, oldest first."""

    def __init__(self, store: Store, worker: str, clock: Clock) -> None:
        self._store = store
        self._worker = worker
        self._clock = clock
        self._held: dict[str, collections.deque[tuple[Claimed, Lane, float]]] = {}
        self._giving: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        # During an outage every give-back fails: one line per error and minute, counted.
        self._failures = Sampled(log, "deliveries_unclaim_failed", level="warning")

    def count(self, name: str) -> int:
        held = self._held.get(name)
        return len(held) if held else 0

    def hold(self, claimed: Claimed, lane: Lane) -> None:
        """Keep `claimed` (taken through `lane`) until a slot frees up."""
        self._held.setdefault(claimed.target, collections.deque()).append(
            (claimed, lane, time.monotonic())
        )
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(STALE, self._expire)

    def take(self, name: str) -> tuple[Claimed, Lane] | None:
        """The oldest held for `name` (the stale ones went back on the timer)."""
        held = self._held.get(name)
        if not held:
            return None
        claimed, lane, _ = held.popleft()
        return claimed, lane

    def give_back(self, names: Iterable[str] | None = None) -> None:
        """Give back what is held for `names` (None: for every target)."""
        chosen = list(self._held) if names is None else [n for n in names if n in self._held]
        self._back([claimed for name in chosen for claimed, _, _ in self._held.pop(name)])

    async def close(self) -> None:
        """Give everything back and wait until it is (a stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.give_back()
        await asyncio.gather(*self._giving, return_exceptions=True)

    def _expire(self) -> None:
        """Every `STALE` seconds while anything is held: give back what waited that long
        (so nothing waits more than twice that, far inside its lease)."""
        self._timer = None
        now, stale = time.monotonic(), []
        for held in self._held.values():
            while held and now - held[0][2] >= STALE:
                stale.append(held.popleft()[0])
        self._back(stale)
        if any(self._held.values()):
            self._timer = asyncio.get_running_loop().call_later(STALE, self._expire)

    def _back(self, claimed: list[Claimed]) -> None:
        if not claimed:
            return
        task = asyncio.create_task(self._unclaim(claimed))
        self._giving.add(task)
        task.add_done_callback(self._giving.discard)

    async def _unclaim(self, claimed: list[Claimed]) -> None:
        try:
            await self._store.unclaim(claimed, self._clock.now(), self._worker)
        except StorageError as exc:
            # Their leases run out instead, and another claim takes them (LEASE_EXPIRED).
            self._failures.hit(time.monotonic(), error=exc.message)
        else:
            self._failures.flush()
