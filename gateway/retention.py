"""The ``retention:`` part of hookgate.yaml: how long events and refused requests are kept.

Globally, and per source under ``sources.<name>.retention`` (any key there overrides the
global one for that source's events)::

    retention:
      delivered: 30d     # events whose deliveries all ended delivered/filtered (or had none)
      dead: 90d          # events with a dead delivery; `forever` keeps them
      rejected: 7d       # the rejected-request log
      interval: 10m      # how often the background purge runs

An event is aged by its ``received_at``; one with a pending or in-flight delivery is never
purged. ``rejected.retention`` (before this section existed) is still read, as a
deprecated alias of ``retention.rejected``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gateway.section import Section, show
from gateway.units import parse_duration

DAY = 86400.0
FOREVER = "forever"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Seconds each kind of row is kept; `dead` None keeps dead events forever."""

    delivered: float = 30 * DAY
    dead: float | None = 90 * DAY
    rejected: float = 7 * DAY


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    default: RetentionPolicy = field(default_factory=RetentionPolicy)
    sources: Mapping[str, RetentionPolicy] = field(default_factory=dict)  # overrides only
    interval: float = 600.0

    def policy(self, source: str) -> RetentionPolicy:
        return self.sources.get(source, self.default)


def parse_retention(top: Section, legacy_rejected: float | None) -> RetentionConfig:
    """``retention`` and every ``sources.<name>.retention``; `legacy_rejected` is the
    deprecated ``rejected.retention`` (None when not given)."""
    section = top.section("retention")
    if legacy_rejected is not None and "rejected" in section:
        top.fail("replaced by retention.rejected: give only that one", "rejected.retention")
    base = RetentionPolicy()
    if legacy_rejected is not None:
        base = replace(base, rejected=legacy_rejected)
    default = _policy(section, base)
    interval = section.duration("interval", 600.0)
    if interval <= 0:
        section.fail("must be longer than 0s", "interval")
    section.done()
    overrides = {}
    for name, data in top.section("sources").items():
        if isinstance(data, Mapping) and "retention" in data:
            nested = Section(data["retention"], f"sources.{name}.retention", top.problems)
            overrides[name] = _policy(nested, default)
            nested.done()
    return RetentionConfig(default, overrides, interval)


def _policy(s: Section, base: RetentionPolicy) -> RetentionPolicy:
    return RetentionPolicy(
        delivered=s.duration("delivered", base.delivered),
        dead=s.get("dead", _duration_or_forever, base.dead),
        rejected=s.duration("rejected", base.rejected),
    )


def _duration_or_forever(value: object) -> float | None:
    if value == FOREVER:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"expected a duration like 90d, or forever, got {show(value)}") from None
