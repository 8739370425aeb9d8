"""Svix: Standard Webhooks under svix-* headers (webhook-* accepted too)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from verifiers import Builders

from gateway.plugin import Section, VerificationError
from plugins.verifiers.svix import check, plugin, sign

# Svix's own example, also the vector its libraries test signing against
# (https://docs.svix.com/receiving/verifying-payloads/how-manual,
# https://github.com/svix/svix-webhooks, e.g. php/tests/WebhookTest.php testSignFunctionWorks).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
NOW = dt.datetime.fromtimestamp(STAMP, dt.UTC)
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 24 byte").decode()


build = Builders(plugin, body=BODY, now=NOW)
options, inbound = build.options, build.inbound


def headers(signature=SIGNATURE, stamp=STAMP, prefix="svix"):
    return {
        f"{prefix}-id": MSG_ID,
        f"{prefix}-timestamp": str(stamp),
        f"{prefix}-signature": signature,
    }


def hmac_signature(secret, stamp=STAMP, body=BODY):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_svix_published_vector_is_accepted():
    assert check(inbound(headers()), options(secret=SECRET)) is None


def test_svix_accepts_the_webhook_header_spelling():
    assert check(inbound(headers(prefix="webhook")), options(secret=SECRET)) is None


def test_svix_headers_win_over_webhook_headers():
    sent = headers() | headers("v1,bm9wZQ==", prefix="webhook")
    assert check(inbound(sent), options(secret=SECRET)) is None
    sent = headers("v1,bm9wZQ==") | headers(prefix="webhook")
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(sent), options(secret=SECRET))


@pytest.mark.parametrize("name", ["svix-id", "svix-timestamp", "svix-signature"])
def test_svix_missing_header_is_rejected(name):
    sent = headers()
    del sent[name]
    with pytest.raises(VerificationError, match=f"missing {name} header"):
        check(inbound(sent), options(secret=SECRET))


def test_svix_headers_of_both_spellings_are_not_mixed():
    sent = {"svix-id": MSG_ID, "svix-signature": SIGNATURE, "webhook-timestamp": str(STAMP)}
    with pytest.raises(VerificationError, match="missing svix-timestamp header"):
        check(inbound(sent), options(secret=SECRET))


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"svix-signature": "v1"}, "malformed signature header"),
        ({"svix-signature": "v1,***"}, "malformed base64"),
        ({"svix-signature": "v9,abc"}, "no v1 or v1a signature"),
        ({"svix-signature": "t=1,v1=abc"}, "no v1 or v1a signature"),
        ({"svix-timestamp": "1614265330000"}, "malformed timestamp"),  # milliseconds
        ({"svix-timestamp": "2021-02-25T15:02:10Z"}, "is not Unix seconds"),
        ({"svix-timestamp": "+1614265330"}, "is not Unix seconds"),
    ],
)
def test_svix_malformed_headers_are_rejected_with_a_reason(changed, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(headers() | changed), options(secret=SECRET))


@pytest.mark.parametrize("offset", [-300, 300])
def test_svix_timestamp_at_the_tolerance_edge_is_accepted(offset):
    stamp = STAMP + offset
    assert (
        check(inbound(headers(hmac_signature(SECRET, stamp), stamp)), options(secret=SECRET))
        is None
    )


def test_svix_v1a_signature_is_accepted_with_a_public_key():
    private = Ed25519PrivateKey.generate()
    public = "whpk_" + base64.b64encode(private.public_key().public_bytes_raw()).decode()
    signature = (
        "v1a," + base64.b64encode(private.sign(f"{MSG_ID}.{STAMP}.".encode() + BODY)).decode()
    )
    assert check(inbound(headers(signature)), options(public_key=public)) is None


def test_svix_what_the_reference_library_signs_is_accepted():
    when = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    signature = Webhook(SECRET).sign(MSG_ID, when, BODY.decode())
    sent = headers(signature, int(when.timestamp()))
    assert check(inbound(sent, now=when), options(secret=SECRET)) is None


def test_svix_sign_round_trips_with_svix_headers():
    opts = options(secret=SECRET)
    sent = sign(opts, BODY, "https://hooks.example.com/in/x", NOW)
    assert set(sent) == {"svix-id", "svix-timestamp", "svix-signature"}
    assert sent["svix-timestamp"] == str(STAMP)
    assert check(inbound(sent), opts) is None


def test_svix_plugin_declares_dedupe_on_svix_id():
    assert plugin.name == "svix"
    assert plugin.default_dedupe == "header:svix-id"


def test_svix_missing_secret_is_a_config_error_with_its_path():
    problems: list[str] = []
    plugin.parse(Section({}, "sources.x.verify", problems))
    assert problems == ["sources.x.verify.secret: needs secret, secrets, public_key or public_keys"]


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["svix-id", "svix-timestamp", "svix-signature", "webhook-id", "webhook-timestamp",
             "webhook-signature", "x-other"]
        ),
        st.text(),
    ),
    body=st.binary(),
)  # fmt: skip
def test_svix_arbitrary_requests_are_rejected_without_crashing(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(secret=SECRET))
