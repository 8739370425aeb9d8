"""The ``alerts:`` part of hookgate.yaml: where failure alerts go, about what, how often.

```yaml
alerts:
  targets:                 # one or several ordinary targets (http unless `type:` says)
    ops: {url: https://alerts.internal/hook, sign: {type: standard-webhooks, secret: whsec_...}}
  when: [dead, breaker, paused, backlog]   # the default: all
  min_interval: 10m        # per target alerted about and kind of alert
  backlog: 1000            # a target's due deliveries (optional)
  oldest_due: 15m          # the age of its oldest due delivery (optional)
  inspector_url: https://hookgate.internal   # links; default http://<server host>:<port>
```

Alert targets join the config's targets as ``_alerts.<name>`` (a name no ``targets:``
entry can have, and no route can name), so the relay sends alerts like any delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from yarl import URL

from gateway.section import Section, show
from gateway.targets import TargetConfig

TARGET_PREFIX = "_alerts."
# What `when:` names, and the alert types each turns on.
KINDS: Mapping[str, tuple[str, ...]] = {
    "dead": ("delivery.dead",),
    "breaker": ("breaker.opened", "breaker.closed"),
    "paused": ("target.paused",),
    "backlog": ("target.backlog",),
}
DEFAULT_INTERVAL = 600.0


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """No targets: no alerts (the default)."""

    targets: Mapping[str, TargetConfig] = field(default_factory=dict)  # by `_alerts.<name>`
    when: frozenset[str] = frozenset(KINDS)
    min_interval: float = DEFAULT_INTERVAL
    backlog: int | None = None
    oldest_due: float | None = None
    inspector_url: str | None = None

    def wants(self, kind: str) -> bool:
        """Whether alerts of type `kind` (``delivery.dead``, ...) are sent."""
        return any(kind in KINDS[name] for name in self.when)


def alert_target(name: str) -> str:
    """The target name an ``alerts.targets`` entry runs under."""
    return TARGET_PREFIX + name


def is_alert_target(name: str) -> bool:
    return name.startswith(TARGET_PREFIX)


def parse_alerts(
    s: Section, parse_targets: Callable[[Section], Mapping[str, TargetConfig]], lease: float
) -> AlertsConfig:
    """``alerts:``; `parse_targets` reads a ``targets:``-like mapping (names checked)."""
    if not s.data:
        s.done()
        return AlertsConfig()
    targets = {alert_target(name): t for name, t in parse_targets(s.section("targets")).items()}
    if "targets" not in s.data:
        s.fail("is required: where alerts go, like {ops: {url: https://...}}", "targets")
    for name, target in targets.items():
        if target.timeout >= lease:
            short = name.removeprefix(TARGET_PREFIX)
            s.fail(f"must be shorter than relay.lease ({lease:g}s)", f"targets.{short}.timeout")
    bare_on = cast(str, True)  # YAML 1.1 reads a bare `on:` key as the boolean true
    if bare_on in s.data:
        s.get(bare_on, lambda v: v, None)
        s.fail("YAML reads a bare `on` as true: write `when: [dead, breaker, ...]`", "on")
    config = AlertsConfig(
        targets=targets,
        when=s.get("when", _kinds, frozenset(KINDS)),
        min_interval=s.duration("min_interval", DEFAULT_INTERVAL),
        backlog=s.integer("backlog", None, minimum=1),
        oldest_due=s.duration("oldest_due", None),
        inspector_url=s.get("inspector_url", _base_url, None),
    )
    s.done()
    return config


def _kinds(value: object) -> frozenset[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(n in KINDS for n in names):
        known = ", ".join(KINDS)
        raise ValueError(f"expected a list of {known}, got {show(value)}")
    return frozenset(names)


def _base_url(value: object) -> str:
    url = URL(str(value))
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"expected an http:// or https:// URL, got {show(value)}")
    return str(value).rstrip("/")
