"""The retention section: defaults, per-source overrides, forever, and its mistakes by key path."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.retention import DAY, RetentionPolicy


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, env={})
    return list(raised.value.problems)


def test_defaults_keep_delivered_30d_dead_90d_rejected_7d():
    retention = parse_config("server: {}", env={}).retention
    assert retention.default == RetentionPolicy(30 * DAY, 90 * DAY, 7 * DAY)
    assert retention.interval == 600.0


def test_a_source_overrides_only_what_it_names_and_inherits_the_rest():
    config = parse_config(
        """
retention: {delivered: 1d, dead: 5d, rejected: 2h, interval: 30s}
sources:
  gh: {retention: {dead: forever}}
  shop: {}
""",
        env={},
    )
    assert config.retention.policy("gh") == RetentionPolicy(DAY, None, 7200.0)
    assert config.retention.policy("shop") == RetentionPolicy(DAY, 5 * DAY, 7200.0)
    assert config.retention.policy("not-configured") == config.retention.default
    assert config.retention.interval == 30.0


def test_seconds_are_accepted():
    assert parse_config("retention: {delivered: 5s}", env={}).retention.default.delivered == 5.0


def test_mistakes_are_reported_with_their_key_paths():
    assert problems(
        """
retention: {delivered: soon, dead: never, colour: red, interval: 0s}
sources:
  gh: {retention: {rejected: -1, kept: 1d}}
"""
    ) == [
        'retention.delivered: expected a duration like 10s, got "soon"',
        'retention.dead: expected a duration like 90d, or forever, got "never"',
        "retention.interval: must be longer than 0s",
        "retention.colour: unknown key",
        "sources.gh.retention.rejected: expected a duration like 10s, got -1",
        "sources.gh.retention.kept: unknown key",
    ]


def test_the_old_rejected_retention_key_still_works_as_an_alias():
    config = parse_config("rejected: {retention: 3d}", env={})
    assert config.retention.default.rejected == 3 * DAY


def test_giving_both_the_old_and_the_new_key_is_an_error():
    assert problems("rejected: {retention: 3d}\nretention: {rejected: 1d}") == [
        "rejected.retention: replaced by retention.rejected: give only that one"
    ]
