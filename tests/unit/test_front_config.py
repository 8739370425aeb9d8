"""The front's config: `upstream:`, source paths and their clashes, the built-in target."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from gateway.paths import SourcePath
from plugins.targets.upstream import UpstreamOptions


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, env={})
    return list(raised.value.problems)


FRONT = """
upstream: {url: "http://app.internal:8000/", timeout: 5s, max_body: 1GiB, host: app.internal}
sources:
  stripe: {path: /webhooks/stripe}
  github: {path: "/webhooks/github/*"}
routes:
  - {source: stripe, targets: [upstream]}
"""


def test_the_upstream_section_and_the_builtin_target():
    config = parse_config(FRONT, env={})
    assert config.upstream is not None
    assert (config.upstream.url, config.upstream.timeout) == ("http://app.internal:8000", 5.0)
    assert (config.upstream.max_body, config.upstream.host) == (1024**3, "app.internal")
    target = config.targets["upstream"]
    assert target.type == "upstream"
    assert isinstance(target.options, UpstreamOptions)
    assert target.options.http.url == "http://app.internal:8000"
    assert target.options.host == "app.internal"
    assert target.forwards("Stripe-Signature")  # the app gets the provider's headers
    assert config.sources["github"].path == SourcePath("/webhooks/github", prefix=True)


def test_the_builtin_target_takes_the_usual_target_settings():
    config = parse_config(
        FRONT
        + """
targets:
  upstream:
    timeout: 3s
    retry: {schedule: [1s]}
    breaker: false
    ordering: {key: "json:customer"}
    sign: {type: standard-webhooks, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
""",
        env={},
    )
    target = config.targets["upstream"]
    assert (target.type, target.timeout, target.retry.schedule) == ("upstream", 3.0, (1.0,))
    assert target.breaker is None and target.ordering is not None
    assert [spec.type for spec in target.middleware] == ["standard-webhooks"]


def test_no_upstream_no_builtin_target_and_defaults():
    config = parse_config("sources: {a: {}}", env={})
    assert config.upstream is None and "upstream" not in config.targets
    default = parse_config("upstream: {url: http://app:8000}", env={}).upstream
    assert default is not None
    assert (default.timeout, default.max_body, default.host) == (30.0, None, None)
    assert "upstream" not in parse_config("upstream: {url: http://app:8000}", env={}).targets


def test_upstream_mistakes_are_reported_with_their_key_paths():
    found = problems(
        """
upstream: {url: "ftp://app", timeout: 0s, connections: 0, colour: red}
sources:
  a: {path: "webhooks"}
targets:
  upstream: {method: PUT}
"""
    )
    assert any(p.startswith("upstream.url: expected an http:// or https:// URL") for p in found)
    assert "upstream.timeout: must be longer than 0s" in found
    assert any(p.startswith("upstream.connections: expected a whole number >= 1") for p in found)
    assert "upstream.colour: unknown key" in found
    assert any(
        p.startswith('sources.a.path: expected a path like "/webhooks/stripe"') for p in found
    )
    assert "targets.upstream.method: the upstream target sends with the event's own method" in found


def test_a_bad_upstream_url_is_reported_once():
    found = problems(
        'upstream: {url: "ftp://x"}\nsources: {a: {}}\nroutes: [{source: a, targets: [upstream]}]'
    )
    assert len(found) == 1 and found[0].startswith("upstream.url: ")


def test_the_builtin_target_needs_an_upstream():
    found = problems("sources: {a: {}}\nroutes: [{source: a, targets: [upstream]}]")
    assert found == [
        'routes[0].targets: no target named "upstream" (the built-in one needs an upstream: section)'
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/webhooks/stripe", "/webhooks/stripe"),
        ("/webhooks/*", "/webhooks/stripe"),
        ("/webhooks/stripe", "/webhooks/*"),
        ("/webhooks/*", "/webhooks/github/*"),
        ("/webhooks/*", "/webhooks"),
    ],
)
def test_two_sources_may_not_claim_overlapping_paths(first, second):
    found = problems(f'sources:\n  a: {{path: "{first}"}}\n  b: {{path: "{second}"}}')
    assert found == [
        f'sources.b.path: "{second}" overlaps "{first}", already claimed by sources.a.path'
    ]


def test_paths_that_only_share_a_start_do_not_overlap():
    parse_config(
        'sources:\n  a: {path: "/webhooks/git/*"}\n  b: {path: "/webhooks/github"}\n'
        '  c: {path: "/webhooks/github/x"}',
        env={},
    )


@pytest.mark.parametrize(
    ("path", "own"),
    [("/in/stripe", "/in"), ("/in", "/in"), ("/admin/*", "/admin"), ("/healthz", "/healthz"),
     ("/readyz", "/readyz"), ("/metrics", "/metrics"), ("/*", "/in")],
)  # fmt: skip
def test_a_path_may_not_shadow_hookgates_own_routes(path, own):
    found = problems(f'sources:\n  a: {{path: "{path}"}}')
    assert found == [f'sources.a.path: "{path}" would shadow hookgate\'s own {own}']


def test_a_path_under_a_name_that_only_starts_like_ours_is_fine():
    parse_config('sources: {a: {path: "/inbound/hooks"}, b: {path: "/administrator"}}', env={})


def test_check_reports_clashes(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text('sources:\n  a: {path: /hooks}\n  b: {path: "/hooks/*"}\n  c: {path: /admin}\n')
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert 'sources.b.path: "/hooks/*" overlaps "/hooks"' in err
    assert 'sources.c.path: "/admin" would shadow hookgate\'s own /admin' in err


def test_a_prefix_path_routes_its_subtree():
    path = SourcePath.parse("/webhooks/github/*")
    assert path.covers("/webhooks/github") and path.covers("/webhooks/github/org/repo")
    assert not path.covers("/webhooks/githubx")
    assert path.route() == "/webhooks/github{tail:(?:/.*)?}"
    assert SourcePath.parse("/webhooks/stripe").route() == "/webhooks/stripe"


def test_the_front_example_config_is_valid():
    config = load_config(Path(__file__).parents[2] / "config" / "front.yaml")
    assert config.upstream is not None
    assert config.targets["upstream"].type == "upstream"
    assert {name: str(s.path) for name, s in config.sources.items()} == {
        "stripe": "/webhooks/stripe",
        "github": "/webhooks/github/*",
    }
