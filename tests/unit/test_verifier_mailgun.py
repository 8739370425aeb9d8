"""Mailgun: hex HMAC-SHA256 of ``timestamp + token`` in the body's signature object."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from verifiers import Builders

from gateway.plugin import Inbound, Section, VerificationError
from plugins.verifiers.mailgun import check, plugin, signature

KEY = "key-1234567890abcdef"
TIMESTAMP = "1767225600"  # 2026-01-01T00:00:00Z
TOKEN = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"  # the token in Mailgun's docs
# Mailgun's docs show a signature object but not the key behind it, so there is no usable
# published vector; this known answer was computed independently with
# `printf '%s' "$TIMESTAMP$TOKEN" | openssl dgst -sha256 -hmac key-1234567890abcdef`.
KNOWN_SIGNATURE = "d6897e0ad821f68ba43e890b6a8fca05b15e94131aa2134d42931dfe053ed257"
SIGNED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = SIGNED_AT + dt.timedelta(seconds=10)


build = Builders(plugin, now=NOW, url="https://hooks.example.com/in/mg")
options = build.options


def inbound(body, now=NOW, content_type="application/json"):
    return build.inbound({"Content-Type": content_type}, body, now)


def json_body(timestamp=TIMESTAMP, token=TOKEN, sig=KNOWN_SIGNATURE, **extra) -> bytes:
    fields = {"timestamp": timestamp, "token": token, "signature": sig, **extra}
    event = {"event": "delivered", "id": "CPgfbmQMTCKtHW6uIWtuVe", "recipient": "alice@example.com"}
    return json.dumps({"signature": fields, "event-data": event}).encode()


def form_body(timestamp=TIMESTAMP, token=TOKEN, sig=KNOWN_SIGNATURE) -> bytes:
    fields = {"event": "delivered", "recipient": "alice@example.com", "timestamp": timestamp}
    return urlencode({**fields, "token": token, "signature": sig}).encode()


def signed(key: str, timestamp: str, token: str = TOKEN) -> str:
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def test_mailgun_known_signature_in_a_json_body_is_accepted():
    assert check(inbound(json_body()), options(secret=KEY)) is None


def test_mailgun_known_signature_in_a_legacy_form_body_is_accepted():
    body = form_body()
    assert (
        check(inbound(body, content_type="application/x-www-form-urlencoded"), options(secret=KEY))
        is None
    )


def test_mailgun_body_shape_is_told_by_content_not_content_type():
    assert (
        check(inbound(b"  \n" + json_body(), content_type="text/plain"), options(secret=KEY))
        is None
    )
    assert check(inbound(form_body(), content_type="application/json"), options(secret=KEY)) is None


def test_mailgun_timestamp_sent_as_a_json_number_is_accepted():
    assert check(inbound(json_body(timestamp=int(TIMESTAMP))), options(secret=KEY)) is None


def test_mailgun_signature_helper_matches_the_known_answer():
    assert signature(KEY.encode(), TIMESTAMP, TOKEN) == KNOWN_SIGNATURE


def test_mailgun_event_data_is_not_signed_so_a_changed_event_still_passes():
    # Documented limitation of Mailgun's scheme: only timestamp + token are signed. Replays of
    # a token are what the default dedupe key (the token) and the tolerance are there for.
    body = json_body().replace(b"delivered", b"failed")
    assert check(inbound(body), options(secret=KEY)) is None
    assert plugin.default_dedupe == "json:signature.token"


@pytest.mark.parametrize(
    "body",
    [
        json_body(token=TOKEN[:-1] + "4"),
        json_body(timestamp=str(int(TIMESTAMP) + 1)),
        form_body(token=TOKEN.upper()),
    ],
)
def test_mailgun_tampered_timestamp_or_token_is_rejected(body):
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(body), options(secret=KEY))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "no signature fields"),
        (b"{}", "no signature object"),
        (b'{"event-data": {}}', "no signature object"),
        (b'{"signature": "abc"}', "no signature object"),
        (b'{"signature": null}', "no signature object"),
        (b"[1, 2]", "no signature fields"),
        (b'{"signature": {', "not JSON"),
        (json_body(sig=None), "signature.signature is missing"),
        (json_body(sig=12), "signature.signature is missing"),
        (json_body(sig="\u00e9" * 64), "signature.signature is missing"),
        (json_body(token=None), "signature.token is missing"),
        (json_body(token=""), "signature.token is missing"),
        (json_body(token=["a"]), "signature.token is missing"),
        (json_body(timestamp=None), "not Unix seconds"),
        (json_body(timestamp=True), "not Unix seconds"),
        (json_body(timestamp=1767225600.0), "not Unix seconds"),
        (json_body(timestamp="1767225600.0"), "not Unix seconds"),
        (json_body(timestamp="-1"), "not Unix seconds"),
        (json_body(timestamp=" 1767225600"), "not Unix seconds"),
        (
            json_body(timestamp="".join(chr(0xFF10 + int(d)) for d in TIMESTAMP)),
            "not Unix seconds",
        ),  # fullwidth digits
        (json_body(timestamp="9" * 400), "malformed timestamp"),
        (json_body(token="\ud800"), "not JSON"),  # a lone surrogate escape
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "not JSON"),  # nested past orjson's limit
        (b'{"signature": {"timestamp": 1e400}}', "not JSON|not Unix seconds"),
        (b"timestamp=1&timestamp=2&token=t&signature=s", "repeated signature field"),
        (b"token=%ff&timestamp=1&signature=s", "UTF-8 url-encoded"),
        (b"\xff\xfe", "UTF-8 url-encoded"),
        (b"hello world", "no signature fields"),
        (b"token=t&signature=s", "not Unix seconds"),
    ],
)
def test_mailgun_malformed_body_is_rejected(body, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(body), options(secret=KEY))


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(301, "too old"), (-301, "in the future"), (86400, "too old"), (-86400, "in the future")],
)
def test_mailgun_timestamp_outside_the_default_tolerance_is_rejected(offset, reason):
    with pytest.raises(VerificationError, match=reason):
        check(
            inbound(json_body(), now=SIGNED_AT + dt.timedelta(seconds=offset)), options(secret=KEY)
        )


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_mailgun_timestamp_at_the_tolerance_edge_is_accepted(offset):
    now = SIGNED_AT + dt.timedelta(seconds=offset)
    assert check(inbound(json_body(), now=now), options(secret=KEY)) is None


def test_mailgun_configured_tolerance_is_honoured():
    opts = options(secret=KEY, tolerance="10m")
    assert check(inbound(json_body(), now=SIGNED_AT + dt.timedelta(seconds=600)), opts) is None
    with pytest.raises(VerificationError, match="too old"):
        check(inbound(json_body(), now=SIGNED_AT + dt.timedelta(seconds=601)), opts)


def test_mailgun_subaccount_event_verifies_with_the_parent_key():
    body = json_body(
        sig=signed("key-subaccount", TIMESTAMP),
        **{"parent-signature": signed("key-parent", TIMESTAMP)},
    )
    assert check(inbound(body), options(secret="key-parent")) is None
    assert check(inbound(body), options(secret="key-subaccount")) is None
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(body), options(secret="key-other"))


def test_mailgun_prepare_puts_a_fresh_signature_in_the_body_that_verifies():
    opts = options(secret="key-abc")
    body = plugin.prepare(opts, plugin.sample_body, NOW)
    assert check(inbound(body), opts) is None
    assert plugin.prepare(opts, plugin.sample_body, NOW) != body  # a new token each time


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "sources.x.verify.secret: needs secret or secrets"),
        ({"secret": KEY, "tolerance": "soon"}, "sources.x.verify.tolerance: "),
    ],
)
def test_mailgun_config_problems_carry_their_key_path(config, expected):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    assert len(problems) == 1
    assert problems[0].startswith(expected)


TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), TEXT, st.lists(st.integers())
)
JSON_BODIES = st.dictionaries(
    st.sampled_from(["timestamp", "token", "signature", "parent-signature"]), JSON_VALUES
).map(lambda fields: json.dumps({"signature": fields}).encode())


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["Content-Type", "x-other"]), TEXT),
    body=st.one_of(st.binary(), JSON_BODIES),
)
def test_mailgun_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    request = Inbound(
        "POST", "https://hooks.example.com/in/mg", CIMultiDict(headers), {}, body, NOW
    )
    with pytest.raises(VerificationError):
        check(request, options(secret=KEY))
