"""The ``targets:`` part of hookgate.yaml: where events go and how they are sent.

A target's type (a target plugin) and its options, timeout, concurrency, rate limit,
circuit breaker, FIFO ordering, filter, retry schedule and middleware chain. Parsed with
the same `Section` as the rest of the config, so every mistake carries its key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from gateway.contract.outcome import RetryPolicy
from gateway.errors import PluginError
from gateway.filters import Filter, parse_filter
from gateway.plugins import PluginSpec, Registry, parse_options
from gateway.section import Section, show
from gateway.sources import Extractor, RateLimit, parse_rate_limit
from gateway.units import parse_duration


@dataclass(frozen=True, slots=True)
class Breaker:
    """Open after `failures` consecutive failed attempts; probe again after `cooldown`."""

    failures: int = 5
    cooldown: float = 30.0
    ratio: float = 0.0  # also open when this share of `window` attempts failed (0: off)
    window: int = 20


@dataclass(frozen=True, slots=True)
class Ordering:
    """FIFO per key: one delivery per key at a time, in arrival order; keys in parallel."""

    key: Extractor
    on_dead: str = "skip"  # skip: a dead delivery stops holding its key back; block: it does


@dataclass(frozen=True, slots=True)
class TargetConfig:
    name: str
    type: str
    options: Any
    timeout: float = 10.0
    concurrency: int = 8  # in flight at once, across every relay sharing the database
    rate_limit: RateLimit | None = None  # deliveries started, across every relay
    breaker: Breaker | None = field(default_factory=lambda: Breaker())
    ordering: Ordering | None = None
    filter: Filter = field(default_factory=Filter.always)  # decided at ingest, like a route's
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    middleware: tuple[PluginSpec, ...] = ()
    forward_headers: tuple[str, ...] = ()

    def forwards(self, header: str) -> bool:
        name = header.lower()
        return any(fnmatchcase(name, pattern.lower()) for pattern in self.forward_headers)


def parse_target(s: Section, name: str, registry: Registry) -> TargetConfig:
    kind = s.text("type", "http")
    try:
        plugin = registry.target(kind)
    except PluginError as exc:
        plugin = None
        s.fail(exc.message, "type")
    else:
        if plugin is None:
            known = ", ".join(registry.names("target"))
            s.fail(f"unknown target type {show(kind)} (installed: {known})", "type")
    config = TargetConfig(
        name=name,
        type=kind,
        options=parse_options(plugin, s) if plugin else None,
        timeout=s.duration("timeout", 10.0),
        concurrency=s.integer("concurrency", 8, minimum=1),
        rate_limit=parse_rate_limit(s)[0],
        breaker=_breaker(s),
        ordering=_ordering(s),
        filter=parse_filter(s.section("filter")),
        retry=_retry(s.section("retry")),
        middleware=parse_middleware(s, registry),
        forward_headers=s.text_list("forward_headers", ()),
    )
    s.done()
    return config


def _ordering(s: Section) -> Ordering | None:
    """``ordering: {key: "json:data.object.customer", on_dead: skip | block}``."""
    if "ordering" not in s:
        return None
    section = s.section("ordering")
    key = section.get("key", Extractor.parse)
    on_dead = section.text("on_dead", "skip")
    if on_dead not in {"skip", "block"}:
        section.fail(f'expected "skip" or "block", got {show(on_dead)}', "on_dead")
    section.done()
    return Ordering(key, on_dead) if key else None


def _breaker(s: Section) -> Breaker | None:
    """``breaker: {failures: 5, cooldown: 30s}`` (the default), or ``breaker: false``."""
    if s.data.get("breaker") is False:
        s.get("breaker", lambda v: v, None)
        return None
    section = s.section("breaker")
    default = Breaker()
    breaker = Breaker(
        failures=section.integer("failures", default.failures, minimum=1),
        cooldown=section.duration("cooldown", default.cooldown),
        ratio=section.get("ratio", _ratio, default.ratio),
        window=section.integer("window", default.window, minimum=2),
    )
    section.done()
    return breaker


def _ratio(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    raise ValueError(
        f"expected a share of failures above 0 and up to 1, like 0.5, got {show(value)}"
    )


def _retry(s: Section) -> RetryPolicy:
    default = RetryPolicy()
    schedule = s.get("schedule", _schedule, default.schedule)
    jitter = s.get("jitter", _fraction, default.jitter)
    cap = s.duration("max_retry_after", default.max_retry_after)
    s.done()
    return RetryPolicy(schedule=schedule, jitter=jitter, max_retry_after=cap)


def _schedule(value: object) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of durations like [5s, 5m, 1h], got {show(value)}")
    return tuple(parse_duration(v) for v in value)


def _fraction(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1:
        return float(value)
    raise ValueError(f"expected a fraction from 0 to below 1, got {show(value)}")


def parse_middleware(s: Section, registry: Registry, sign: bool = True) -> tuple[PluginSpec, ...]:
    """The target's chain: `middleware: [...]` in order (the first is outermost), then
    `sign:` innermost, so the signature covers what the chain made of the body. A route
    has only the list (it runs around the target's chain, outside its signature)."""
    items: list[Any] = s.get("middleware", _middleware_list, [])
    chain = [_plugin_spec(Section(item, f"{s.key_path('middleware')}[{i}]", s.problems), registry)
             for i, item in enumerate(items)]  # fmt: skip
    if sign and "sign" in s:
        chain.append(_plugin_spec(s.section("sign"), registry, what="signing type"))
    return tuple(spec for spec in chain if spec is not None)


def _plugin_spec(
    s: Section, registry: Registry, what: str = "middleware type"
) -> PluginSpec | None:
    kind = s.text("type")
    try:
        plugin = registry.middleware(kind) if kind else None
    except PluginError as exc:
        s.fail(exc.message, "type")
        return None
    if plugin is None:
        if kind:
            known = ", ".join(registry.names("middleware"))
            s.fail(f"unknown {what} {show(kind)} (installed: {known})", "type")
        return None
    options = parse_options(plugin, s)
    s.done()
    return PluginSpec(kind, options)


def _middleware_list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list like [{{type: transform, ...}}], got {show(value)}")
    return value
