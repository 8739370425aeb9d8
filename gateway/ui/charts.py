"""Small bar charts for the dashboard, as geometry the SVG template draws.

`bar_chart` is pure: counts per time bucket in, rectangles and labels out. The
template (`_macros.html`) turns the result into an inline `<svg>`, so the page needs
no script and every label goes through Jinja's autoescaping like any other text.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 600
HEIGHT = 120
_GAP = 1.0  # pixels between bars
_LABEL_EVERY = 15  # an axis label every N buckets (every 15 minutes of an hour)


@dataclass(frozen=True, slots=True)
class Bar:
    """One segment of one bucket's stacked bar."""

    x: float
    y: float
    width: float
    height: float
    series: str  # the css class: which series it belongs to
    title: str  # the tooltip: time and count


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    top: int  # the value the chart's full height stands for
    total: Mapping[str, int]  # per series, over every bucket
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= `value` (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    raise AssertionError("unreachable")  # pragma: no cover


def bar_chart(
    starts: Sequence[dt.datetime],
    series: Mapping[str, Sequence[int]],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Stacked bars, one per bucket in `starts`; `series` maps a name to one count per bucket.

    The first series is drawn at the bottom. Empty buckets draw nothing; a chart with
    no counts at all still has its axis ticks.
    """
    for name, counts in series.items():
        if len(counts) != len(starts):
            raise ValueError(f"series {name!r} has {len(counts)} counts for {len(starts)} buckets")
    sums = [sum(counts[i] for counts in series.values()) for i in range(len(starts))]
    top = nice_ceiling(max(sums, default=0))
    slot = width / max(len(starts), 1)
    bars: list[Bar] = []
    for index, start in enumerate(starts):
        bars.extend(_stack(index * slot, slot, start, series, index, top, height))
    ticks = tuple(
        Tick(index * slot, f"{start:%H:%M}")
        for index, start in enumerate(starts)
        if index % _LABEL_EVERY == 0
    )
    totals = {name: sum(counts) for name, counts in series.items()}
    return Chart(width, height, top, totals, tuple(bars), ticks)


def _stack(
    x: float,
    slot: float,
    start: dt.datetime,
    series: Mapping[str, Sequence[int]],
    index: int,
    top: int,
    height: int,
) -> list[Bar]:
    bars = []
    base = float(height)
    for name, counts in series.items():
        count = counts[index]
        if count <= 0:
            continue
        size = height * count / top
        base -= size
        title = f"{start:%H:%M} {name}: {count}"
        bars.append(
            Bar(round(x, 2), round(base, 2), max(slot - _GAP, 1.0), round(size, 2), name, title)
        )
    return bars
