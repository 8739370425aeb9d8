"""A relay's shares of its targets' concurrency (migration 0022).

Each relay holds a share of every target's concurrency for a short term (`SHARE_TERM`,
renewed every `SHARE_RENEW`, before a claim): the shares of all relays add up to at most
the target's concurrency, and a relay keeps its deliveries in flight within its own, so
its claims neither count nor lock anything for that. A relay whose share is short of its
fair part, or that holds more than its share (its part shrank while more of its
deliveries were in flight), renews after `SHARE_SOON`, less often while nothing moves
(at most every `SHARE_RENEW`), until the parts settle. An idle relay renews nothing: its
shares lapse, and the other relays get its part.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import KeysView, Mapping

from gateway.errors import StorageError
from gateway.storage.store import Share, Store

# A relay's shares last this long (a relay that dies gives its part back then), and are
# renewed when this old, before a claim.
SHARE_TERM = 5.0
SHARE_RENEW = 0.5
# ... or this soon while the parts change hands (a relay joined or left).
SHARE_SOON = 0.05


class Shares:
    """What `worker` holds of each target's concurrency, and when to renew it."""

    def __init__(self, store: Store, worker: str) -> None:
        self._store = store
        self._worker = worker
        self._held: dict[str, Share] = {}
        self._due: dt.datetime | None = None  # None: renew before the next claim
        self._wait = SHARE_SOON  # between renewals while the parts change hands
        self._renewing = asyncio.Lock()  # one renewal for claims that overlap

    def names(self) -> KeysView[str]:
        """The targets it holds a share of (maybe none of a slot)."""
        return self._held.keys()

    def cap(self, name: str, concurrency: int) -> int:
        """How many of the target's deliveries this relay may have in flight."""
        share = self._held.get(name)
        return min(share.share, concurrency) if share else 0

    def forget(self) -> None:
        """Renew before the next claim (a reload changed the targets or their limits)."""
        self._due = None

    def soon(self, busy: Mapping[str, int]) -> dt.datetime | None:
        """When to renew while the parts change hands; None when they have settled (the
        next claim renews them once due)."""
        return None if self._due is None or self._settled(busy) else self._due

    async def renew_if_due(self, now: dt.datetime, concurrency: Mapping[str, int],
                           busy: Mapping[str, int]) -> None:  # fmt: skip
        """Renew for the targets in `concurrency` (each one's limit), with `busy` of this
        relay's deliveries in flight at each, if it is time."""
        async with self._renewing:
            if self._due is not None and now < self._due:
                return
            before = self._held
            in_flight = {name: (limit, busy.get(name, 0)) for name, limit in concurrency.items()}
            self._held = await self._store.take_shares(self._worker, in_flight, now, SHARE_TERM)
            if self._settled(busy):
                self._wait, wait = SHARE_SOON, SHARE_RENEW
            else:
                # Less often while nothing moves: a relay that holds the rest and is idle
                # renews nothing, its share lapses instead.
                moved = self._held != before
                self._wait = SHARE_SOON if moved else min(2 * self._wait, SHARE_RENEW)
                wait = self._wait
            self._due = now + dt.timedelta(seconds=wait)

    async def release(self) -> None:
        """Give every share back at once (a clean stop); if the database is away, the
        other relays get them in SHARE_TERM."""
        if self._held:
            with contextlib.suppress(StorageError):
                await self._store.release_shares(self._worker)

    def _settled(self, busy: Mapping[str, int]) -> bool:
        return all(
            s.share >= s.fair and busy.get(name, 0) <= s.share for name, s in self._held.items()
        )
