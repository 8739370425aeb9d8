"""A source's own path (``sources.<name>.path``): exact or prefix, and which paths clash.

Behind the reverse-proxy front a source is also captured at the path the provider already
calls (``/webhooks/stripe``, or every path under ``/webhooks/github/*``), as well as at
``/in/<name>``. Two sources may not claim the same or overlapping paths, and no source
path may shadow hookgate's own routes; `check_paths` reports both with key paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.section import show

# hookgate's own routes: never captured by a source path, never passed through.
RESERVED = ("/in", "/admin", "/healthz", "/readyz", "/metrics")
_ALLOWED = re.compile(r"^/[A-Za-z0-9._~!$&'()+,;=:@%/-]*$")


@dataclass(frozen=True, slots=True)
class SourcePath:
    """``/webhooks/stripe`` (exactly that path) or ``/webhooks/github/*`` (that path and
    everything under it)."""

    path: str  # without a trailing "/*"
    prefix: bool = False

    @classmethod
    def parse(cls, value: object) -> SourcePath:
        text = value if isinstance(value, str) else ""
        prefix = text.endswith("/*")
        path = text[:-2] if prefix else text
        if not _ALLOWED.match(path or "/") or not text.startswith("/") or "//" in text:
            example = '"/webhooks/stripe" or "/webhooks/github/*"'
            raise ValueError(f"expected a path like {example}, got {show(value)}")
        return cls(path, prefix)

    def __str__(self) -> str:
        return f"{self.path}/*" if self.prefix else self.path

    def route(self) -> str:
        """The aiohttp route pattern: the path itself, or the path and anything below it."""
        return f"{self.path}{{tail:(?:/.*)?}}" if self.prefix else self.path

    def covers(self, path: str) -> bool:
        """Whether a request path (or an exact source path) is captured here."""
        if not self.prefix:
            return path == self.path
        return path == self.path or path.startswith(self.path + "/")

    def overlaps(self, other: SourcePath) -> bool:
        """Whether some request path would be captured by both."""
        if not self.prefix and not other.prefix:
            return self.path == other.path
        if self.prefix and other.prefix:
            return self.covers(other.path) or other.covers(self.path)
        exact, wide = (other, self) if self.prefix else (self, other)
        return wide.covers(exact.path)


_UNDER_RESERVED = tuple(f"{own}/" for own in RESERVED)


def reserved(path: str) -> bool:
    """Whether `path` is one of hookgate's own routes (or under one)."""
    # Asked for every pass-through request: two C calls, no generator.
    return path in RESERVED or path.startswith(_UNDER_RESERVED)


def shadows(source: SourcePath) -> str | None:
    """The first of hookgate's own routes this source path would capture, if any."""
    for own in RESERVED:
        if source.overlaps(SourcePath(own, prefix=True)):
            return own
    return None


def check_paths(paths: Mapping[str, SourcePath | None], problems: list[str]) -> None:
    """Each source path shadows none of hookgate's routes and overlaps no other source's."""
    claimed: list[tuple[str, SourcePath]] = []
    for name, path in paths.items():
        if path is None:
            continue
        where = f"sources.{name}.path"
        own = shadows(path)
        if own is not None:
            problems.append(f"{where}: {show(str(path))} would shadow hookgate's own {own}")
            continue
        for other, taken in claimed:
            if path.overlaps(taken):
                problems.append(
                    f"{where}: {show(str(path))} overlaps {show(str(taken))}, "
                    f"already claimed by sources.{other}.path"
                )
                break
        else:
            claimed.append((name, path))
