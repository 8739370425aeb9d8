"""The ``alerts:`` section: defaults, its targets joining the config's, mistakes by key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.alerting import inspector_base
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BASE = """
sources: {shop: {}}
targets: {billing: {url: "http://billing.internal/hook"}}
routes: [{source: shop, targets: [billing]}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(BASE + text, env={})
    return list(raised.value.problems)


def test_alert_targets_join_the_targets_under_a_reserved_name_with_the_defaults():
    config = parse_config(
        BASE
        + f"""
alerts:
  targets:
    ops: {{url: https://alerts.internal/hook, sign: {{type: standard-webhooks, secret: {SECRET}}}}}
""",
        env={},
    )
    alerts = config.alerts
    assert set(config.targets) == {"billing", "_alerts.ops"}
    assert alerts.targets["_alerts.ops"] is config.targets["_alerts.ops"]
    assert [spec.type for spec in config.targets["_alerts.ops"].middleware] == ["standard-webhooks"]
    assert alerts.min_interval == 600 and alerts.backlog is None and alerts.oldest_due is None
    assert all(alerts.wants(k) for k in ("delivery.dead", "breaker.closed", "target.backlog"))
    assert inspector_base(alerts, config.server).endswith(":8080")


def test_thresholds_kinds_and_the_inspector_url_are_read():
    config = parse_config(
        BASE
        + """
server: {host: 127.0.0.1, port: 9000}
alerts:
  targets: {ops: {url: "https://alerts.internal/hook"}}
  when: [dead, paused]
  min_interval: 5m
  backlog: 1000
  oldest_due: 15m
  inspector_url: https://hookgate.internal/
""",
        env={},
    )
    alerts = config.alerts
    assert (alerts.min_interval, alerts.backlog, alerts.oldest_due) == (300, 1000, 900)
    assert alerts.wants("delivery.dead") and alerts.wants("target.paused")
    assert not alerts.wants("breaker.opened") and not alerts.wants("target.backlog")
    assert inspector_base(alerts, config.server) == "https://hookgate.internal"
    default = parse_config(BASE + "server: {host: 127.0.0.1, port: 9000}", env={})
    assert inspector_base(default.alerts, default.server) == "http://127.0.0.1:9000"


def test_alerts_mistakes_are_reported_with_their_key_paths():
    found = problems(
        """
relay: {lease: 20s}
alerts:
  targets:
    ops: {url: "ftp://alerts", timeout: 30s}
    "bad name!": {url: "https://x.internal"}
  when: [dead, typo]
  min_interval: soon
  backlog: 0
  inspector_url: hookgate.internal
  min_intervl: 5m
"""
    )
    assert any(p.startswith("alerts.targets.ops.url: expected an http") for p in found)
    assert any(
        p.startswith("alerts.targets.ops.timeout: must be shorter than relay.lease") for p in found
    )
    assert any(p.startswith("alerts.targets.bad name!: a name may use") for p in found)
    assert any(p.startswith("alerts.when: expected a list of dead, breaker") for p in found)
    assert any(p.startswith("alerts.min_interval: ") for p in found)
    assert any(p.startswith("alerts.backlog: expected a whole number >= 1") for p in found)
    assert any(p.startswith("alerts.inspector_url: expected an http") for p in found)
    assert "alerts.min_intervl: unknown key" in found


def test_alerts_without_targets_is_an_error():
    assert problems("alerts: {backlog: 10}") == [
        "alerts.targets: is required: where alerts go, like {ops: {url: https://...}}"
    ]


def test_a_bare_on_key_is_explained():
    found = problems('alerts: {targets: {ops: {url: "https://a.internal"}}, on: [dead]}')
    assert found == [
        "alerts.on: YAML reads a bare `on` as true: write `when: [dead, breaker, ...]`"
    ]


def test_a_route_cannot_name_an_alert_target():
    found = problems(
        'alerts: {targets: {ops: {url: "https://a.internal"}}}\n'
        "routes: [{source: shop, targets: [_alerts.ops]}]"
    )
    assert found == ['routes[0].targets: no target named "_alerts.ops"']


def test_the_alerts_example_config_loads():
    config = load_config(Path(__file__).parents[2] / "config" / "alerts.yaml")
    assert set(config.alerts.targets) == {"_alerts.ops"}
    assert (config.alerts.backlog, config.alerts.oldest_due) == (1000, 900)
