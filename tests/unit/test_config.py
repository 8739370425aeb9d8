"""Config validation: every mistake reported with its key path, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from gateway.units import parse_duration, parse_size

EXAMPLE = Path(__file__).parents[2] / "config" / "example.yaml"

GOOD = """
server: {port: 9090, max_body: 2MiB}
sources:
  github: {event_type: "header:X-GitHub-Event", methods: [post]}
targets:
  ci:
    url: http://ci.internal/hooks
    timeout: 5s
    retry: {schedule: [1s, 1m], jitter: 0.1}
    sign: {type: standard-webhooks, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
routes:
  - {source: github, targets: [ci], filter: {event_type: ["push", "pull_request*"]}}
"""


def problems(text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, env=env)
    return list(raised.value.problems)


def test_server_timeouts_and_connection_cap_have_defaults():
    server = parse_config("server: {}", env={}).server
    assert (server.header_timeout, server.body_timeout, server.max_connections) == (10, 30, 1024)


def test_a_good_config_becomes_frozen_dataclasses():
    config = parse_config(GOOD, env={})
    assert config.server.max_body == 2 * 1024 * 1024
    assert config.sources["github"].methods == frozenset({"POST"})
    target = config.targets["ci"]
    assert (target.timeout, target.retry.schedule, target.retry.jitter) == (5.0, (1.0, 60.0), 0.1)
    assert [spec.type for spec in target.middleware] == ["standard-webhooks"]
    assert config.targets_for("github", "pull_request_review") == ["ci"]
    assert config.targets_for("github", "issues") == []
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]


def test_every_error_is_reported_with_its_key_path():
    found = problems(
        """
server: {port: lots, max_body: huge}
targets:
  billing: {url: "ftp://x", timeout: ten, colour: red}
routes:
  - {source: stripe, targets: [billing, nope]}
"""
    )
    assert found == [
        'server.port: expected a whole number >= 0, got "lots"',
        'server.max_body: expected a size like 1MiB, got "huge"',
        'targets.billing.url: expected an http:// or https:// URL, got "ftp://x"',
        'targets.billing.timeout: expected a duration like 10s, got "ten"',
        "targets.billing.colour: unknown key",
        'routes[0].source: no source named "stripe"',
        'routes[0].targets: no target named "nope"',
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("targets: {t: {}}", "targets.t.url: is required"),
        ("targets: {t: {url: 'http://x', type: kafka}}", 'targets.t.type: unknown target type "kafka"'),
        ("targets: {t: {url: 'http://x', sign: {type: pgp}}}", 'targets.t.sign.type: unknown signing'),
        ("targets: {t: {url: 'http://x', sign: {type: standard-webhooks, secret: '!!'}}}",
         "targets.t.sign.secret: expected a base64 secret like whsec_"),
        ("targets: {t: {url: 'http://x', retry: {schedule: 5s}}}", "targets.t.retry.schedule: expected a list"),
        ("targets: {t: {url: 'http://x', retry: {jitter: 2}}}", "targets.t.retry.jitter: expected a fraction"),
        ("targets: {t: {url: 'http://x', timeout: 2m}}", "targets.t.timeout: must be shorter than relay.lease"),
        ("sources: {s: {event_type: body}}", 'sources.s.event_type: expected "json:<field.path>"'),
        ("sources: {s: {methods: [TRACE]}}", 'sources.s.methods: unsupported method "TRACE"'),
        ("sources: {'bad name!': {}}", "sources.bad name!: a name may use"),
        ("sources: [a, b]", "sources: expected a mapping"),
        ("routes: {a: 1}", "routes: expected a list of routes"),
        ("relay: {lease: 0x}", 'relay.lease: expected a duration like 10s, got "0x"'),
        ("database: {pool_size: 1}", "database.pool_size: expected a whole number >= 2"),
        ("serverr: {}", "serverr: unknown key"),
        ("server: {header_timeout: 0s}", "server.header_timeout: must be longer than 0s"),
        ("server: {body_timeout: soon}", 'server.body_timeout: expected a duration like 10s, got "soon"'),
        ("server: {max_connections: 0}", "server.max_connections: expected a whole number >= 1"),
        ("routes: [{source: s, targets: [t], filter: {json: {a: {$regex: '(?<=x)a'}}}}]\nsources: {s: {}}\ntargets: {t: {url: 'http://x'}}",
         'routes[0].filter.json.a.$regex: "(?<=x)a" is not a pattern RE2 can run'),
        ("a: [\n", "line 2, column 1: not valid YAML"),
    ],
)  # fmt: skip
def test_each_mistake_names_its_path(text, expected):
    assert any(p.startswith(expected) for p in problems(text)), problems(text)


def test_environment_variables_are_interpolated_with_defaults():
    text = "server: {port: '${PORT:-8081}', host: '${HOST}'}\nadmin: {token: 'x-${TOKEN:-}'}"
    config = parse_config(text, env={"HOST": "127.0.0.2"})
    assert (config.server.port, config.server.host, config.admin.token) == (8081, "127.0.0.2", "x-")
    assert parse_config(text, env={"HOST": "h", "PORT": "7000"}).server.port == 7000


def test_a_missing_environment_variable_is_an_error_with_its_path():
    assert problems("admin: {token: '${HOOKGATE_ADMIN_TOKEN}'}") == [
        "admin.token: environment variable HOOKGATE_ADMIN_TOKEN is not set"
    ]


def test_secrets_never_appear_in_errors():
    found = problems(
        "targets: {t: {url: 'http://x', sign: {type: standard-webhooks, secret: 's3cr3t!'}}}"
    )
    assert not any("s3cr3t" in p for p in found)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("10s", 10), ("5m", 300), ("72h", 259200), ("2d", 172800), (3, 3)],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("1MiB", 1048576), ("512KiB", 524288), ("1KB", 1000), (10, 10)]
)
def test_sizes_parse(text, size):
    assert parse_size(text) == size


def test_the_example_config_is_valid():
    config = load_config(EXAMPLE)
    assert config.targets_for("demo", None) == ["local"]


def test_the_providers_example_is_valid_when_its_secrets_are_set():
    env = {name: "s3cret" for name in ("STRIPE_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET",
                                        "SLACK_SIGNING_SECRET", "META_APP_SECRET", "META_VERIFY_TOKEN")}  # fmt: skip
    config = parse_config((EXAMPLE.parent / "providers.yaml").read_text(), env=env)
    assert config.sources["stripe"].verify is not None
    assert config.sources["stripe"].dedupe is not None
    assert config.sources["github"].dedupe is not None  # GitHub's default key
    assert config.targets_for("stripe", "invoice.paid") == ["billing"]
    assert config.targets_for("stripe", "customer.created") == []


@pytest.mark.parametrize("path", sorted(EXAMPLE.parent.glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_example_is_valid_once_its_variables_are_set(path):
    """A new config/ example (or a key renamed under it) stays true to the parser."""
    text = path.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    env = {name: "postgresql://127.0.0.1/hookgate" if name.endswith("_URL") else "s3cret"
           for name in required}  # fmt: skip
    config = parse_config(text, env=env)
    assert config.sources, f"{path.name} defines no source"


def test_check_prints_every_error_and_exits_1(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("server: {port: lots}\ntargets: {t: {}}\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f'{path}: server.port: expected a whole number >= 0, got "lots"',
        f"{path}: targets.t.url: is required",
    ]


def test_check_prints_a_summary_and_exits_0(capsys):
    assert main(["check", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.strip() == f"{EXAMPLE}: ok: 1 sources, 1 targets, 1 routes"


def test_check_reports_an_unreadable_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_target_chain_runs_middleware_in_order_then_signs():
    config = parse_config(
        """
targets:
  t:
    url: http://x
    middleware:
      - {type: standard-webhooks, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    sign: {type: standard-webhooks, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
""",
        env={},
    )
    assert [spec.type for spec in config.targets["t"].middleware] == ["standard-webhooks"] * 2


def test_a_middleware_list_reports_its_items_by_index():
    found = problems("targets: {t: {url: 'http://x', middleware: [{type: nope}, {}]}}")
    assert found[0].startswith('targets.t.middleware[0].type: unknown middleware type "nope"')
    assert found[1] == "targets.t.middleware[1].type: is required"


def test_a_verify_block_without_a_type_is_an_error_not_an_unverified_source():
    found = problems("sources: {s: {verify: {secret: abc, header: X-Y}}}")
    assert "sources.s.verify.type: is required" in found


def test_a_plugin_that_crashes_while_parsing_is_reported_at_its_path():
    from gateway.plugins import Registry, load_registry

    class Broken:
        kind = "verifier"
        name = "broken"
        default_dedupe = None

        def parse(self, section):
            raise RuntimeError("boom")

        def create(self, options, resources):
            raise AssertionError("not reached")

    registry = load_registry()
    registry.add(Broken())
    with pytest.raises(ConfigError) as raised:
        parse_config("sources: {s: {verify: {type: broken}}}", registry=registry, env={})
    assert raised.value.problems == (
        "sources.s.verify: the broken plugin could not read its options: RuntimeError: boom",
    )
    assert isinstance(registry, Registry)


def test_two_installed_plugins_claiming_one_name_are_refused():
    from importlib.metadata import EntryPoint

    from gateway.errors import PluginError
    from gateway.plugins import Registry

    registry = Registry(
        [
            EntryPoint("verifier.github", "plugins.verifiers.github:plugin", "hookgate.plugins"),
            EntryPoint("verifier.github", "evil.module:plugin", "hookgate.plugins"),
        ]
    )
    with pytest.raises(PluginError, match=r"two installed plugins claim verifier\.github"):
        registry.verifier("github")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "targets: {t: {url: 'http://x', rate_limit: fast}}",
            "targets.t.rate_limit: expected a rate like 100/s",
        ),
        (
            "targets: {t: {url: 'http://x', rate_limit: {burst: 5}}}",
            "targets.t.rate_limit.rate: is required",
        ),
        (
            "targets: {t: {url: 'http://x', rate_limit: {rate: 5/s, burst: 0}}}",
            "targets.t.rate_limit.burst: expected a whole number >= 1",
        ),
    ],
)
def test_target_rate_limit_mistakes_name_their_path(text, expected):
    assert any(p.startswith(expected) for p in problems(text)), problems(text)


def test_a_target_rate_limit_with_a_burst():
    config = parse_config(
        "targets: {t: {url: 'http://x', rate_limit: {rate: 10/s, burst: 30}}}", env={}
    )
    limit = config.targets["t"].rate_limit
    assert limit is not None and (limit.rate, limit.burst) == (10.0, 30.0)


def test_targets_have_a_breaker_by_default_that_can_be_tuned_or_turned_off():
    config = parse_config(
        """
targets:
  a: {url: "http://a"}
  b: {url: "http://b", breaker: {failures: 10, cooldown: 2m}}
  c: {url: "http://c", breaker: false}
""",
        env={},
    )
    breakers = {name: target.breaker for name, target in config.targets.items()}
    assert (breakers["a"].failures, breakers["a"].cooldown) == (5, 30.0)
    assert (breakers["b"].failures, breakers["b"].cooldown) == (10, 120.0)
    assert breakers["c"] is None
    assert problems(
        "targets: {t: {url: 'http://x', breaker: {failures: 0, ratio: 2, rate: 1}}}"
    ) == [
        "targets.t.breaker.failures: expected a whole number >= 1, got 0",
        "targets.t.breaker.ratio: expected a share of failures above 0 and up to 1, like 0.5, got 2",
        "targets.t.breaker.rate: unknown key",
    ]


def test_ordering_parses_and_its_mistakes_name_their_path():
    config = parse_config(
        "targets: {t: {url: 'http://x', ordering: {key: 'json:data.object.customer', on_dead: block}}}",
        env={},
    )
    ordering = config.targets["t"].ordering
    assert ordering is not None and (ordering.key.key, ordering.on_dead) == (
        "data.object.customer",
        "block",
    )
    assert problems("targets: {t: {url: 'http://x', ordering: {on_dead: later}}}") == [
        "targets.t.ordering.key: is required",
        'targets.t.ordering.on_dead: expected "skip" or "block", got "later"',
    ]


def test_an_unknown_key_suggests_the_nearest_known_one():
    found = problems(
        "targets: {t: {url: 'http://x', sing: {type: standard-webhooks, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}}\n"
        "servr: {port: 1}\n"
    )
    assert 'targets.t.sing: unknown key (did you mean "sign"?)' in found
    assert 'servr: unknown key (did you mean "server"?)' in found


def test_an_unknown_key_with_nothing_close_suggests_nothing():
    assert problems("targets: {t: {url: 'http://x', colour: red}}") == [
        "targets.t.colour: unknown key"
    ]


def test_an_unset_variable_is_reported_once_with_every_key_path_using_it():
    found = problems(
        "targets:\n"
        "  a: {url: 'http://x', headers: {Authorization: 'Bearer ${TOKEN}'}}\n"
        "  b: {url: 'http://y', headers: {Authorization: 'Bearer ${TOKEN}'}}\n"
    )
    assert found == [
        "targets.a.headers.Authorization: environment variable TOKEN is not set "
        "(also used by targets.b.headers.Authorization)"
    ]


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_an_empty_file_is_an_error_not_an_empty_gateway(text):
    (problem,) = problems(text)
    assert problem.startswith("the file is empty") and "config/example.yaml" in problem


@pytest.mark.parametrize(
    "url", ["mysql://root:hunter2@db:3306/hooks", "sqlite:///hooks.db", "db.internal:5432"]
)
def test_a_database_url_that_is_not_postgres_is_refused_without_echoing_it(url):
    (problem,) = problems(f"database: {{url: '{url}'}}")
    assert problem.startswith("database.url: expected a postgresql://")
    assert "hunter2" not in problem and url not in problem


def test_postgres_urls_and_connect_timeout_are_accepted():
    config = parse_config("database: {url: 'postgres://u@h:5433/d', connect_timeout: 5s}", env={})
    assert (config.database.url, config.database.connect_timeout) == ("postgres://u@h:5433/d", 5.0)
    assert parse_config("database: {url: ''}", env={}).database.url is None


def test_check_with_no_file_names_it_once_and_points_to_the_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("hookgate.yaml: cannot read: no such file")
    assert line.count("hookgate.yaml") == 1
    assert "--config FILE" in line and "config/example.yaml" in line


def test_check_takes_the_file_as_config_option_too(capsys):
    assert main(["check", "--config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.startswith(f"{EXAMPLE}: ok:")


def test_serve_prefixes_every_config_problem_with_the_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("server: {port: lots}\ntargets: {t: {sing: {}}}\n")
    assert main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert all(line.startswith(f"hookgate: {path}: ") for line in err), err


def test_an_unset_variable_is_not_reported_again_as_the_empty_value_it_left():
    found = problems("sources: {stripe: {verify: {type: stripe, secret: '${STRIPE_SECRET}'}}}")
    assert found == ["sources.stripe.verify.secret: environment variable STRIPE_SECRET is not set"]
