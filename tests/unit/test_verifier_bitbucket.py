"""Bitbucket: ``sha256=`` + hex HMAC-SHA256 of the body in X-Hub-Signature."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Section, VerificationError
from plugins.verifiers.bitbucket import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
SECRET = "bb-secret"
BODY = b'{"push":{"changes":[]}}'
# Bitbucket publishes no test vector; this known answer was computed independently with
# `printf '%s' "$BODY" | openssl dgst -sha256 -hmac bb-secret`.
KNOWN_SIGNATURE = "sha256=2b7638acf5dc51584501f797f9ce374b1f0bc588e62e5a339eb2d725189ff41f"


build = Builders(plugin, body=BODY, url="https://hooks.example.com/in/bb")
options, inbound = build.options, build.inbound


def signature(secret: str, body: bytes = BODY) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_bitbucket_known_signature_is_accepted():
    assert check(inbound({"X-Hub-Signature": KNOWN_SIGNATURE}), options(secret=SECRET)) is None


def test_bitbucket_uppercase_hex_and_lowercase_header_name_are_accepted():
    value = "sha256=" + KNOWN_SIGNATURE.removeprefix("sha256=").upper()
    assert check(inbound({"x-hub-signature": value}), options(secret=SECRET)) is None


def test_bitbucket_unsigned_webhook_is_rejected():
    # A Bitbucket webhook saved without a secret sends no X-Hub-Signature at all.
    with pytest.raises(VerificationError, match="missing X-Hub-Signature header"):
        check(inbound({"X-Event-Key": "repo:push", "X-Request-UUID": "x"}), options(secret=SECRET))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing X-Hub-Signature header"),
        (KNOWN_SIGNATURE.removeprefix("sha256="), "is not sha256=<hex>"),
        (
            "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
            "is not sha256=<hex>",
        ),
        ("sha256=", "signature does not match"),
        ("sha256=" + "g" * 64, "signature does not match"),
        (KNOWN_SIGNATURE[:-1], "signature does not match"),
        ("sha256=" + "\uff10" * 64, "is not sha256=<hex>"),  # fullwidth digits
        ("sha256=\udcff", "is not sha256=<hex>"),
    ],
)
def test_bitbucket_malformed_header_is_rejected(value, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound({"X-Hub-Signature": value}), options(secret=SECRET))


def test_bitbucket_sign_round_trips_with_the_sample_body():
    opts = options(secret=SECRET)
    headers = sign(opts, plugin.sample_body, "", NOW)
    assert headers["X-Hub-Signature"] == signature(SECRET, plugin.sample_body)
    assert headers["X-Event-Key"] == "repo:push"
    assert headers["X-Request-UUID"]
    assert check(inbound(headers, plugin.sample_body), opts) is None


def test_bitbucket_dedupes_on_the_request_uuid_header():
    assert plugin.default_dedupe == "header:X-Request-UUID"


def test_bitbucket_missing_secret_is_reported_with_its_key_path():
    problems: list[str] = []
    plugin.parse(Section({"secret": None}, "sources.x.verify", problems))
    assert problems == ["sources.x.verify.secret: needs secret or secrets"]


TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))
HEADER_TEXT = st.one_of(TEXT, TEXT.map("sha256=".__add__))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["X-Hub-Signature", "x-other"]), HEADER_TEXT),
    body=st.binary(),
)
def test_bitbucket_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(secret=SECRET))
