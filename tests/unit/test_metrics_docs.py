"""The dashboard and the alert rules under docs/ use only names /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from gateway.metrics import Metrics

DOCS = Path(__file__).parents[2] / "docs"
NAME = re.compile(r"\bhookgate_[a-z_]+")
SUFFIX = re.compile(r"_(total|bucket|sum|count)$")


def exposed() -> set[str]:
    return {family.name for family in Metrics().registry.collect()}


def used(text: str) -> set[str]:
    return {SUFFIX.sub("", name) for name in NAME.findall(text)}


def test_the_dashboard_uses_exposed_names():
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    names = used(exprs)
    assert names and names <= exposed()


def test_the_alert_rules_use_exposed_names():
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yaml").read_text())
    exprs = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    names = used(exprs)
    assert {"hookgate_relay_dead", "hookgate_target_breaker_open"} <= names <= exposed()
