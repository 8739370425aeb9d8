"""Admin access without a server: tokens, session cookies, CSRF, failed-login limits."""

from __future__ import annotations

import pytest

from gateway.admin.auth import Access, FailedLogins
from gateway.admin.login import safe_next
from gateway.clock import FrozenClock
from gateway.config import parse_config
from gateway.errors import ConfigError


def access(clock: FrozenClock, **tokens: str) -> Access:
    return Access(tokens or {"ops": "secret-1", "ci": "secret-2"}, clock, session_ttl=3600)


def test_a_token_is_known_by_its_name():
    a = access(FrozenClock())
    assert a.token_name("secret-2") == "ci"
    assert a.token_name("secret-") is None
    assert a.bearer("Bearer secret-1") == "ops"
    assert a.bearer("Basic secret-1") is None and a.bearer(None) is None


def test_a_session_cookie_carries_the_name_and_expires():
    clock = FrozenClock()
    a = access(clock)
    cookie = a.new_session("ops")
    assert "secret" not in cookie
    who = a.session(cookie)
    assert who is not None and (who.name, who.via) == ("ops", "session")
    assert who.csrf == a.csrf_token(cookie) and len(who.csrf) == 32
    clock.advance(3601)
    assert a.session(cookie) is None


def test_a_forged_or_stale_cookie_is_refused():
    clock = FrozenClock()
    a = access(clock)
    cookie = a.new_session("ops")
    body, _, signature = cookie.partition(".")
    assert a.session(body + "." + signature[:-2] + "AA") is None
    assert a.session("garbage") is None and a.session(None) is None
    rotated = Access({"ops": "secret-new"}, clock, 3600)  # a token changed: sessions end
    assert rotated.session(cookie) is None
    other = a.new_session("ci")
    assert a.csrf_token(other) != a.csrf_token(cookie)


def test_failed_logins_are_limited_per_peer():
    limit = FailedLogins(3)
    for _ in range(3):
        assert limit.wait("1.2.3.4", 0.0) == 0
        limit.failed("1.2.3.4", 0.0)
    assert limit.wait("1.2.3.4", 0.0) == pytest.approx(20.0)
    assert limit.wait("5.6.7.8", 0.0) == 0  # another peer is not affected
    assert limit.wait("1.2.3.4", 20.0) == 0  # refilled, one per 20 s


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/admin/events?q=1", "/admin/events?q=1"), ("https://evil.example", "/admin"),
     ("//evil.example/admin", "/admin"), ("/admin\\@evil", "/admin"), (None, "/admin")],
)  # fmt: skip
def test_after_login_only_admin_paths_are_followed(value, expected):
    assert safe_next(value) == expected


def test_admin_config_takes_named_tokens_or_one_token():
    assert parse_config("admin: {tokens: {ops: a, ci: b}}").admin.tokens == {"ops": "a", "ci": "b"}
    assert parse_config("admin: {token: t}").admin.tokens == {"admin": "t"}
    assert not parse_config("admin: {token: ''}").admin.enabled
    listener = parse_config("admin: {token: t, port: 9090}").admin
    assert (listener.host, listener.port) == ("127.0.0.1", 9090)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("admin: {token: a, tokens: {b: c}}", "admin.token: use token or tokens, not both"),
     ("admin: {tokens: {'bad name': x}}", "admin.tokens.bad name: a token name may use"),
     ("admin: {token: a, host: 0.0.0.0}", "admin.host: needs admin.port"),
     ("admin: {token: a, port: 70000}", "admin.port: expected a port number up to 65535"),
     ("admin: {token: a, colour: red}", "admin.colour: unknown key")],
)  # fmt: skip
def test_admin_config_mistakes_name_their_path(text, expected):
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert any(p.startswith(expected) for p in raised.value.problems), raised.value.problems
