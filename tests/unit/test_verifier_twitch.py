"""Twitch EventSub: HMAC of id + timestamp + body, RFC 3339 nanosecond timestamps, the
callback verification challenge, revocations."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Reply, Section, VerificationError
from plugins.verifiers.twitch import check, plugin, sign

SECRET = "a-twitch-eventsub-secret"
OTHER_SECRET = "the-next-eventsub-secret"
MSG_ID = "e76c6bd4-55c9-4987-8304-da1588d8988b"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
STAMP = "2026-11-22T11:59:58.634234626Z"  # nanoseconds, as Twitch sends them
BODY = plugin.sample_body
# The challenge and body shape from https://dev.twitch.tv/docs/eventsub/handling-webhook-events/
CHALLENGE = "pogchamp-kappa-360noscope-vohiyo"
VERIFICATION_BODY = (
    b'{"challenge": "pogchamp-kappa-360noscope-vohiyo", "subscription": {'
    b'"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "status": "webhook_callback_verification_pending",'
    b' "type": "channel.follow", "version": "2", "cost": 1,'
    b' "condition": {"broadcaster_user_id": "12826", "moderator_user_id": "12826"},'
    b' "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},'
    b' "created_at": "2019-11-16T10:11:12.634234626Z"}}'
)


def fullwidth(text):
    """`text` in fullwidth forms: digits and letters that are not ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


build = Builders(plugin, body=BODY)
options, inbound = build.options, build.inbound


def headers(secret=SECRET, stamp=STAMP, body=BODY, kind="notification", msg_id=MSG_ID):
    digest = hmac.new(secret.encode(), f"{msg_id}{stamp}".encode() + body, hashlib.sha256)
    return {
        "Twitch-Eventsub-Message-Id": msg_id,
        "Twitch-Eventsub-Message-Timestamp": stamp,
        "Twitch-Eventsub-Message-Signature": "sha256=" + digest.hexdigest(),
        "Twitch-Eventsub-Message-Type": kind,
    }


def test_twitch_notification_is_accepted():
    assert check(inbound(headers()), options(secret=SECRET)) is None


def test_twitch_revocation_is_a_genuine_event():
    body = b'{"subscription": {"id": "f1c2a387", "status": "authorization_revoked"}}'
    assert (
        check(inbound(headers(body=body, kind="revocation"), body), options(secret=SECRET)) is None
    )


def test_twitch_callback_verification_is_answered_with_the_raw_challenge():
    sent = headers(body=VERIFICATION_BODY, kind="webhook_callback_verification")
    reply = check(inbound(sent, VERIFICATION_BODY), options(secret=SECRET))
    assert reply == Reply(CHALLENGE.encode(), "text/plain", 200)


def test_twitch_callback_verification_with_a_bad_signature_is_not_answered():
    sent = headers(OTHER_SECRET, body=VERIFICATION_BODY, kind="webhook_callback_verification")
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(sent, VERIFICATION_BODY), options(secret=SECRET))


@pytest.mark.parametrize(
    "body",
    [b"", b"pogchamp", b"[]", b'{"challenge": 42}', b'{"challenge": ""}', b'{"subscription": {}}',
     b'{"challenge": null}', b"\xff\xfe", b"[" * 5000],
)  # fmt: skip
def test_twitch_callback_verification_without_a_challenge_is_rejected(body):
    sent = headers(body=body, kind="webhook_callback_verification")
    with pytest.raises(VerificationError):
        check(inbound(sent, body), options(secret=SECRET))


@pytest.mark.parametrize(
    "changed",
    [
        {"Twitch-Eventsub-Message-Id": "e76c6bd4-55c9-4987-8304-da1588d8988c"},
        {"Twitch-Eventsub-Message-Timestamp": "2026-11-22T11:59:58.634234627Z"},
    ],
)
def test_twitch_signed_headers_cannot_be_changed(changed):
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers() | changed), options(secret=SECRET))


@pytest.mark.parametrize(
    "name",
    [
        "Twitch-Eventsub-Message-Id",
        "Twitch-Eventsub-Message-Timestamp",
        "Twitch-Eventsub-Message-Signature",
    ],
)
def test_twitch_missing_header_is_rejected(name):
    sent = headers()
    del sent[name]
    with pytest.raises(VerificationError, match=f"missing {name} header"):
        check(inbound(sent), options(secret=SECRET))


def test_twitch_uppercase_hex_signature_is_accepted():
    sent = headers()
    sent["Twitch-Eventsub-Message-Signature"] = (
        "sha256=" + sent["Twitch-Eventsub-Message-Signature"][7:].upper()
    )
    assert check(inbound(sent), options(secret=SECRET)) is None


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=", "sha256=abc", "sha1=" + "0" * 40, "0" * 64, "sha256=" + "g" * 64,
     "sha256=" + "0" * 65, "SHA256=" + "0" * 64, "sha256=" + fullwidth("0") * 64, "sha256=" + "0" * 64 + "\n"],
)  # fmt: skip
def test_twitch_malformed_signature_is_rejected(signature):
    sent = headers() | {"Twitch-Eventsub-Message-Signature": signature}
    with pytest.raises(VerificationError):
        check(inbound(sent), options(secret=SECRET))


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-22T11:59:58Z",
        "2026-11-22T11:59:58.6Z",
        "2026-11-22T11:59:58.634234626z",
        "2026-11-22t11:59:58.634234626Z",
        "2026-11-22T12:59:58.634234626+01:00",
        "2026-11-22T07:29:58.634234626-04:30",
        "2026-11-22 11:59:58.634234626Z",
    ],
)
def test_twitch_rfc3339_timestamps_are_parsed(stamp):
    assert check(inbound(headers(stamp=stamp)), options(secret=SECRET)) is None


@pytest.mark.parametrize(
    "stamp",
    [
        "",
        "1795003198",
        "2026-11-22T11:59:58",  # no zone
        "2026-11-22T11:59:58.Z",
        "2026-11-22T11:59:58.6342346261Z",  # ten fraction digits
        "2026-13-22T11:59:58Z",
        "2026-02-30T11:59:58Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T11:59:60Z",
        "2026-11-22T11:59:58+24:00",
        "2026-11-22T11:59:58+0100",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-23:59",
        fullwidth("2026") + "-11-22T11:59:58Z",
        " 2026-11-22T11:59:58Z",
        "2026-11-22T11:59:58Z\n",
        "2026-11-22T11:59:58Z\udcff",
    ],
)
def test_twitch_malformed_timestamp_is_rejected(stamp):
    sent = headers() | {"Twitch-Eventsub-Message-Timestamp": stamp}
    with pytest.raises(VerificationError):
        check(inbound(sent), options(secret=SECRET))


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("2026-11-22T11:49:59.9999Z", "too old"),  # 10 minutes and 100 µs
        ("2026-11-22T12:10:01Z", "in the future"),
    ],
)
def test_twitch_timestamp_outside_ten_minutes_is_rejected(stamp, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(headers(stamp=stamp)), options(secret=SECRET))


@pytest.mark.parametrize("stamp", ["2026-11-22T11:50:00.000000000Z", "2026-11-22T12:10:00Z"])
def test_twitch_timestamp_at_ten_minutes_is_accepted(stamp):
    assert check(inbound(headers(stamp=stamp)), options(secret=SECRET)) is None


def test_twitch_unencodable_message_id_is_rejected():
    with pytest.raises(VerificationError, match="malformed Twitch-Eventsub-Message-Id"):
        check(inbound(headers() | {"Twitch-Eventsub-Message-Id": "\ud800"}), options(secret=SECRET))


def test_twitch_sign_round_trips_with_a_nanosecond_timestamp():
    opts = options(secret=SECRET)
    sent = sign(opts, BODY, "https://hooks.example.com/in/x", NOW)
    assert sent["Twitch-Eventsub-Message-Timestamp"] == "2026-11-22T12:00:00.000000000Z"
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", sent["Twitch-Eventsub-Message-Signature"])
    assert sent["Twitch-Eventsub-Message-Type"] == "notification"
    assert check(inbound(sent), opts) is None


def test_twitch_plugin_declares_dedupe_on_the_message_id():
    assert plugin.default_dedupe == "header:Twitch-Eventsub-Message-Id"


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "sources.x.verify.secret: needs secret or secrets"),
        (
            {"secret": SECRET, "tolerance": "ten minutes"},
            "sources.x.verify.tolerance: expected a duration",
        ),
        ({"secrets": [SECRET, 5]}, "sources.x.verify.secrets: expected a list of strings"),
    ],
)
def test_twitch_config_problems_name_their_key(config, problem):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    assert problems and problems[0].startswith(problem)


def test_twitch_default_tolerance_is_ten_minutes():
    assert options(secret=SECRET).tolerance == 600.0


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp",
             "Twitch-Eventsub-Message-Signature", "Twitch-Eventsub-Message-Type", "x-other"]
        ),
        st.text(),
    ),
    body=st.binary(),
)  # fmt: skip
def test_twitch_arbitrary_requests_are_rejected_without_crashing(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(secret=SECRET))
