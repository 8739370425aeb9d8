"""The live stream behind ``GET /admin/api/stream``: new events and finished attempts.

It polls the database (so it sees what every replica and worker wrote, not only this
process) a little into the past: group commit can make an older event id visible after a
newer one, and an attempt started a while ago may only just have finished. What was
already sent is remembered in bounded sets, so nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import OrderedDict
from collections.abc import AsyncGenerator, Hashable

from gateway.clock import Clock
from gateway.ids import first_id_at
from gateway.storage.admin import AdminStore, StreamAttempt, StreamEvent

BATCH = 500
REMEMBER = 20_000


class Seen:
    """The last `size` keys sent."""

    def __init__(self, size: int = REMEMBER) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self.size = size

    def add(self, key: Hashable) -> bool:
        """True the first time `key` is added."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True


class Stream:
    """Follows new events and attempts for any number of clients until closed."""

    def __init__(
        self,
        store: AdminStore,
        clock: Clock,
        poll: float = 0.5,
        lookback: float = 5.0,
        attempt_window: float = 120.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.poll = poll
        self.lookback = lookback
        self.attempt_window = attempt_window  # longer than any target's timeout
        self._closed = asyncio.Event()

    async def close(self) -> None:
        self._closed.set()

    async def follow(
        self, source: str | None = None
    ) -> AsyncGenerator[StreamEvent | StreamAttempt | None, None]:
        """New events and attempts as they appear; None now and then when there was
        nothing (a heartbeat for the caller to write). Ends when the stream is closed."""
        start = self.clock.now()
        events, attempts = Seen(), Seen()
        while not self._closed.is_set():
            now = self.clock.now()
            found = False
            for event in await self._events(start, now, source):
                if events.add(event.id):
                    found = True
                    yield event
            for attempt in await self._attempts(start, now, source):
                if attempts.add((attempt.delivery_id, attempt.attempt)):
                    found = True
                    yield attempt
            if not found:
                yield None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self.poll)

    async def _events(
        self, start: dt.datetime, now: dt.datetime, source: str | None
    ) -> list[StreamEvent]:
        floor = max(start, now - dt.timedelta(seconds=self.lookback))
        return await self.store.events_after(first_id_at(floor), source, BATCH)

    async def _attempts(
        self, start: dt.datetime, now: dt.datetime, source: str | None
    ) -> list[StreamAttempt]:
        floor = max(start, now - dt.timedelta(seconds=self.attempt_window))
        return await self.store.attempts_after(floor - dt.timedelta(microseconds=1), source, BATCH)
