"""Typeform: ``sha256=`` + base64 HMAC-SHA256 of the body in Typeform-Signature."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Section, VerificationError
from plugins.verifiers.typeform import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
SECRET = "abc123"
BODY = b'{"event_id":"01HOOKGATE","event_type":"form_response"}'
# Typeform publishes no test vector; this known answer was computed independently with
# `printf '%s' "$BODY" | openssl dgst -sha256 -hmac abc123 -binary | base64`.
KNOWN_SIGNATURE = "sha256=IrzrNNUfsMAybn12Q021k8Zixg7KhaKAa571kZsiJVs="


build = Builders(plugin, body=BODY, url="https://hooks.example.com/in/tf")
options, inbound = build.options, build.inbound


def signature(secret: str, body: bytes = BODY) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def test_typeform_known_signature_is_accepted():
    assert check(inbound({"Typeform-Signature": KNOWN_SIGNATURE}), options(secret=SECRET)) is None


def test_typeform_header_name_is_case_insensitive():
    assert check(inbound({"typeform-signature": KNOWN_SIGNATURE}), options(secret=SECRET)) is None


def test_typeform_missing_header_is_rejected():
    with pytest.raises(VerificationError, match="missing Typeform-Signature header"):
        check(inbound({}), options(secret=SECRET))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing Typeform-Signature header"),
        (KNOWN_SIGNATURE.removeprefix("sha256="), "is not sha256=<base64>"),
        ("sha1=" + KNOWN_SIGNATURE.removeprefix("sha256="), "is not sha256=<base64>"),
        ("SHA256=" + KNOWN_SIGNATURE.removeprefix("sha256="), "is not sha256=<base64>"),
        ("sha256=", "signature does not match"),
        ("sha256=!!!", "malformed base64"),
        (
            "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),
            "signature does not match",
        ),
        ("sha256=é" + KNOWN_SIGNATURE[7:], "malformed base64"),
        ("sha256=\udcff" + KNOWN_SIGNATURE[7:], "malformed base64"),
        (KNOWN_SIGNATURE + "," + KNOWN_SIGNATURE, "malformed base64"),
    ],
)
def test_typeform_malformed_header_is_rejected(value, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound({"Typeform-Signature": value}), options(secret=SECRET))


def test_typeform_sign_round_trips_with_the_sample_body():
    opts = options(secret=SECRET)
    headers = sign(opts, plugin.sample_body, "", NOW)
    assert headers == {"Typeform-Signature": signature(SECRET, plugin.sample_body)}
    assert check(inbound(headers, plugin.sample_body), opts) is None


def test_typeform_dedupes_on_the_event_id_in_the_body():
    assert plugin.default_dedupe == "json:event_id"
    assert b'"event_id"' in plugin.sample_body


def test_typeform_missing_secret_is_reported_with_its_key_path():
    problems: list[str] = []
    plugin.parse(Section({}, "sources.x.verify", problems))
    assert problems == ["sources.x.verify.secret: needs secret or secrets"]


TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))
HEADER_TEXT = st.one_of(TEXT, TEXT.map("sha256=".__add__))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["Typeform-Signature", "x-other"]), HEADER_TEXT),
    body=st.binary(),
)
def test_typeform_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(secret=SECRET))
