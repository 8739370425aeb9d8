"""The config ingress serves under, swapped whole by a reload.

A handler reads `Live.current` once, at its start, and uses that `Snapshot` to the
end: a request in flight finishes under the config it started with, whatever a
reload swaps in meanwhile. The swap is one attribute assignment (atomic for every
coroutine of the loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import Config
from gateway.ingress.guard import Guard


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One config and the source guards (verifiers, rate limiters) built from it."""

    config: Config
    guards: Mapping[str, Guard]


class Live:
    """The current snapshot; `swap` replaces it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.current = snapshot

    def swap(self, snapshot: Snapshot) -> Snapshot:
        """Serve `snapshot` from now on; the one it replaces."""
        previous, self.current = self.current, snapshot
        return previous
