"""The replay feeder: lets bulk-replayed (`queued`) deliveries into the relay's queue a
few at a time, only while their target has room, so live traffic goes first.

A bulk replay parks its deliveries as `queued`, where the claim never looks. Every tick
the feeder moves, per target, enough of them to `pending` (due now) to bring the
target's due-or-in-flight deliveries up to its window (twice its concurrency): the
relay keeps a replay draining at the target's own pace, and a fresh delivery, due when
it arrives, finds at most a window of replayed ones ahead of it in the claim's order.
Every `hookgate serve` runs one; an advisory lock lets one act per tick.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway.clock import Clock
from gateway.config import Config
from gateway.errors import StorageError
from gateway.storage.replay import Replays

log = structlog.get_logger("hookgate.admin")

BUSY_TICK = 0.1  # seconds between releases while a replay drains
IDLE_TICK = 2.0  # between checks when nothing is queued (a replay wakes it at once)


def windows(config: Config) -> dict[str, int]:
    """Per target: how many deliveries may be due or in flight before replays wait."""
    return {name: max(2, 2 * target.concurrency) for name, target in config.targets.items()}


class ReplayFeeder:
    """Moves queued replays to pending as targets have room (see the module docstring)."""

    def __init__(self, replays: Replays, config: Config, clock: Clock) -> None:
        self.replays = replays
        self.windows = windows(config)
        self.clock = clock
        self._wake = asyncio.Event()

    def use(self, config: Config) -> None:
        """Let replays in by `config`'s targets' concurrency (a reload swapped it in)."""
        self.windows = windows(config)

    def wake(self) -> None:
        self._wake.set()

    async def release_once(self) -> tuple[int, bool]:
        """One tick: (deliveries moved to pending, whether any are still queued)."""
        if not self.windows:
            return 0, False
        return await self.replays.release(self.windows, self.clock.now())

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                released, more = await self.release_once()
            except StorageError as exc:
                log.warning("replay_release_failed", error=exc.message)
                released, more = 0, True
            if released:
                log.debug("replays_released", released=released)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), BUSY_TICK if more else IDLE_TICK)
