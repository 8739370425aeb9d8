"""Discord: Ed25519 over timestamp + body with the application's public key; PINGs.

Discord publishes no test vector, so the tests sign with a key pair of their own.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Reply, Section, VerificationError
from plugins.verifiers.discord import check, plugin

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
STAMP = int(NOW.timestamp())
PRIVATE = Ed25519PrivateKey.generate()
PUBLIC = PRIVATE.public_key().public_bytes_raw().hex()
OTHER = Ed25519PrivateKey.generate()
OTHER_PUBLIC = OTHER.public_key().public_bytes_raw().hex()
EVENT = plugin.sample_body
# https://discord.com/developers/docs/interactions/receiving-and-responding#receiving-an-interaction
INTERACTION_PING = (
    b'{"application_id": "1234567890123456789", "id": "1234567890123456790",'
    b' "token": "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc5MA", "type": 1, "version": 1}'
)
# https://discord.com/developers/docs/events/webhook-events#payload-structure
WEBHOOK_EVENT_PING = b'{"version": 1, "application_id": "1234567890123456789", "type": 0}'
COMMAND = b'{"id": "1", "token": "t", "type": 2, "data": {"name": "hello"}, "version": 1}'


def fullwidth(text):
    """`text` in fullwidth forms: digits and letters that are not ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


build = Builders(plugin, body=EVENT)
options, inbound = build.options, build.inbound


def headers(body=EVENT, stamp=STAMP, key=PRIVATE):
    signature = key.sign(str(stamp).encode() + body).hex()
    return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": str(stamp)}


def test_discord_signed_webhook_event_is_accepted_and_relayed():
    assert check(inbound(headers()), options(public_key=PUBLIC)) is None


@pytest.mark.parametrize("ping", [b'{"type": 1}', b'{"type":1}', INTERACTION_PING])
def test_discord_interaction_ping_is_answered_with_a_pong(ping):
    reply = check(inbound(headers(ping), ping), options(public_key=PUBLIC))
    assert reply == Reply(b'{"type": 1}', "application/json", 200)


def test_discord_webhook_events_ping_is_answered_204_without_a_body():
    reply = check(
        inbound(headers(WEBHOOK_EVENT_PING), WEBHOOK_EVENT_PING), options(public_key=PUBLIC)
    )
    assert reply == Reply(b"", "application/json", 204)


@pytest.mark.parametrize(
    "body",
    [
        EVENT,
        COMMAND,
        b'{"type": true}',
        b'{"type": false}',
        b'{"type": 1.0}',
        b'{"type": "1"}',
        b"{}",
    ],
)
def test_discord_signed_non_ping_payloads_are_events(body):
    assert check(inbound(headers(body), body), options(public_key=PUBLIC)) is None


@pytest.mark.parametrize("body", [b"", b"not json", b"[1]", b'"type"', b"\xff", b"[" * 5000])
def test_discord_signed_body_that_is_not_a_json_object_is_rejected(body):
    with pytest.raises(VerificationError, match=r"not a JSON object|not JSON"):
        check(inbound(headers(body), body), options(public_key=PUBLIC))


@pytest.mark.parametrize("ping", [b'{"type": 1}', WEBHOOK_EVENT_PING])
def test_discord_ping_with_a_bad_signature_is_not_answered(ping):
    # Discord's routine security checks send invalid signatures and expect a 401.
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers(ping, key=OTHER), ping), options(public_key=PUBLIC))


def test_discord_changed_timestamp_is_rejected():
    sent = headers() | {"X-Signature-Timestamp": str(STAMP - 1)}
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(sent), options(public_key=PUBLIC))


@pytest.mark.parametrize("name", ["X-Signature-Ed25519", "X-Signature-Timestamp"])
def test_discord_missing_header_is_rejected(name):
    sent = headers()
    del sent[name]
    with pytest.raises(VerificationError, match=f"missing {name} header"):
        check(inbound(sent), options(public_key=PUBLIC))


def test_discord_uppercase_hex_signature_is_accepted():
    sent = headers()
    sent["X-Signature-Ed25519"] = sent["X-Signature-Ed25519"].upper()
    assert check(inbound(sent), options(public_key=PUBLIC)) is None


@pytest.mark.parametrize(
    "signature",
    ["0", "0" * 127, "0" * 130, "g" * 128, "0x" + "0" * 126, " " + "0" * 127, "00 " * 42 + "00",
     fullwidth("0") * 128, "0" * 128 + "\n", "0" * 128],
)  # fmt: skip
def test_discord_malformed_signature_is_rejected(signature):
    sent = headers() | {"X-Signature-Ed25519": signature}
    with pytest.raises(VerificationError):
        check(inbound(sent), options(public_key=PUBLIC))


@pytest.mark.parametrize(
    "stamp",
    ["soon", "1795003200.0", "-1795003200", fullwidth("1795003200"), "1795003200000", "nan"],
)
def test_discord_malformed_timestamp_is_rejected(stamp):
    sent = headers() | {"X-Signature-Timestamp": stamp}
    with pytest.raises(VerificationError):
        check(inbound(sent), options(public_key=PUBLIC))


@pytest.mark.parametrize("offset", [-300, 300])
def test_discord_timestamp_at_the_tolerance_edge_is_accepted(offset):
    assert check(inbound(headers(stamp=STAMP + offset)), options(public_key=PUBLIC)) is None


def test_discord_public_key_in_uppercase_is_accepted():
    assert check(inbound(headers()), options(public_key=PUBLIC.upper())) is None


def test_discord_cannot_sign_and_has_no_default_dedupe():
    assert plugin.sign is None
    assert plugin.default_dedupe is None
    with pytest.raises(NotImplementedError):
        plugin.create(options(public_key=PUBLIC), None).sign(EVENT, "", NOW)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "sources.x.verify.public_key: needs public_key or public_keys"),
        ({"secret": PUBLIC}, "sources.x.verify.public_key: needs public_key or public_keys"),
        (
            {"public_key": PUBLIC[:-2]},
            "sources.x.verify.public_key: expected the application's public key",
        ),
        (
            {"public_key": "z" * 64},
            "sources.x.verify.public_key: expected the application's public key",
        ),
        (
            {"public_keys": [PUBLIC, "0x12"]},
            "sources.x.verify.public_keys: expected the application's",
        ),
        (
            {"public_key": PUBLIC, "tolerance": "later"},
            "sources.x.verify.tolerance: expected a duration",
        ),
    ],
)
def test_discord_config_problems_name_their_key(config, problem):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    assert problems and problems[0].startswith(problem)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-Signature-Ed25519", "X-Signature-Timestamp", "x-other"]), st.text()
    ),
    body=st.binary(),
)
def test_discord_arbitrary_requests_are_rejected_without_crashing(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(public_key=PUBLIC))
