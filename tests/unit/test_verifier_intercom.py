"""Intercom: ``sha1=`` + hex HMAC-SHA1 of the body in X-Hub-Signature."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Section, VerificationError
from plugins.verifiers.intercom import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
SECRET = "client-secret"
BODY = b'{"type":"notification_event","id":"notif_1","topic":"ping"}'
# Intercom's docs show a signed request but not the secret behind it, so there is no usable
# published vector; this known answer was computed independently with
# `printf '%s' "$BODY" | openssl dgst -sha1 -hmac client-secret`.
KNOWN_SIGNATURE = "sha1=d2350c00af572cc3f44437d448d250a14b1365dc"


build = Builders(plugin, body=BODY, url="https://hooks.example.com/in/ic")
options, inbound = build.options, build.inbound


def signature(secret: str, body: bytes = BODY) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_intercom_known_signature_is_accepted():
    assert check(inbound({"X-Hub-Signature": KNOWN_SIGNATURE}), options(secret=SECRET)) is None


def test_intercom_uppercase_hex_is_accepted():
    value = "sha1=" + KNOWN_SIGNATURE.removeprefix("sha1=").upper()
    assert check(inbound({"x-hub-signature": value}), options(secret=SECRET)) is None


def test_intercom_missing_header_is_rejected():
    # X-Hub-Signature-256 is GitHub's header, not Intercom's.
    with pytest.raises(VerificationError, match="missing X-Hub-Signature header"):
        check(inbound({"X-Hub-Signature-256": KNOWN_SIGNATURE}), options(secret=SECRET))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing X-Hub-Signature header"),
        (KNOWN_SIGNATURE.removeprefix("sha1="), "is not sha1=<hex>"),
        ("sha256=" + KNOWN_SIGNATURE.removeprefix("sha1="), "is not sha1=<hex>"),
        ("sha1=", "signature does not match"),
        ("sha1=zz", "signature does not match"),
        (KNOWN_SIGNATURE[:-2], "signature does not match"),
        (KNOWN_SIGNATURE + " ", "signature does not match"),
        ("sha1=é" + KNOWN_SIGNATURE[6:], "is not sha1=<hex>"),
        ("sha1=\udcff" + KNOWN_SIGNATURE[6:], "is not sha1=<hex>"),
    ],
)
def test_intercom_malformed_header_is_rejected(value, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound({"X-Hub-Signature": value}), options(secret=SECRET))


def test_intercom_sign_round_trips_with_the_sample_body():
    opts = options(secret=SECRET)
    headers = sign(opts, plugin.sample_body, "", NOW)
    assert headers == {"X-Hub-Signature": signature(SECRET, plugin.sample_body)}
    assert check(inbound(headers, plugin.sample_body), opts) is None


def test_intercom_dedupes_on_the_notification_id():
    assert plugin.default_dedupe == "json:id"


def test_intercom_missing_secret_is_reported_with_its_key_path():
    problems: list[str] = []
    plugin.parse(Section({"secrets": []}, "sources.x.verify", problems))
    assert problems == ["sources.x.verify.secret: needs secret or secrets"]


TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))
HEADER_TEXT = st.one_of(TEXT, TEXT.map("sha1=".__add__))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["X-Hub-Signature", "x-other"]), HEADER_TEXT),
    body=st.binary(),
)
def test_intercom_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(secret=SECRET))
