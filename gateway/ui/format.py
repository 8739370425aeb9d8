"""How values look on a page: relative times, sizes, status pills, bodies.

Pure functions, registered as Jinja filters by `gateway.ui.setup`. They return plain
strings (never markup), so whatever they are given is still escaped by the template.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


@dataclass(frozen=True, slots=True)
class Pill:
    """A delivery state as the UI shows it: colour class, icon and word (never colour alone)."""

    tone: str  # ok | wait | bad | off: the css class, by meaning
    icon: str
    word: str


_PILLS = {
    "delivered": Pill("ok", "✓", "delivered"),
    "pending": Pill("wait", "◷", "pending"),
    "retrying": Pill("wait", "↻", "retrying"),
    "in_flight": Pill("wait", "→", "sending"),
    "queued": Pill("wait", "⋯", "queued"),  # bulk-replayed, let in as the target has room
    "dead": Pill("bad", "✕", "dead"),
    "filtered": Pill("off", "⊘", "filtered"),
    "cancelled": Pill("off", "⊖", "cancelled"),
}


def pill(status: str, attempts: int = 0) -> Pill:
    """The pill for a delivery; a pending one that already failed once is `retrying`."""
    if status == "pending" and attempts > 0:
        status = "retrying"
    return _PILLS.get(status, Pill("off", "?", status))


def relative(moment: dt.datetime | None, now: dt.datetime) -> str:
    """`moment` as "3 min ago" (or "in 5 s" when in the future) from `now`."""
    if moment is None:
        return "—"
    seconds = (now - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        return "just now"
    for unit, size in _UNITS:
        if seconds >= size:
            amount = int(seconds // size)
            return f"in {amount} {unit}" if ahead else f"{amount} {unit} ago"
    raise AssertionError("unreachable")  # pragma: no cover


def absolute(moment: dt.datetime | None) -> str:
    """`moment` in UTC to the millisecond, the hover text of a relative time."""
    if moment is None:
        return ""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d} UTC"


def size(count: int | None) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 3.0 MiB."""
    if count is None:
        return "—"
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def duration(ms: float | None) -> str:
    """Milliseconds, readable: 12 ms, 1.25 s."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


@dataclass(frozen=True, slots=True)
class Body:
    """A stored body ready to show: `pretty` only for JSON, `encoding` says how `raw` reads."""

    raw: str
    encoding: str  # utf-8 | base64
    pretty: str | None


def show_body(text: str | None, encoded: str | None = None) -> Body:
    """A stored body (text when it was UTF-8, else base64) as shown; JSON is pretty too."""
    if text is None:
        return Body(encoded or "", "base64", None)
    return Body(text, "utf-8", pretty_json(text))


def pretty_json(text: str) -> str | None:
    """`text` indented when it is a JSON object or array, None otherwise."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)
