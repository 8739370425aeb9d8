"""Standard Webhooks: v1 (HMAC-SHA256) and v1a (Ed25519), the published vector, the
reference library, tolerance, rotation and malformed headers."""

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

from gateway.plugin import VerificationError
from plugins.verifiers import standard_webhooks
from plugins.verifiers.standard_webhooks import check, plugin, sign

# The vector the Standard Webhooks reference libraries test against
# (https://github.com/standard-webhooks/standard-webhooks/tree/main/libraries).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
NOW = dt.datetime.fromtimestamp(STAMP, dt.UTC)
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 24 byte").decode()


def fullwidth(text):
    """`text` in fullwidth forms: digits and letters that are not ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


build = Builders(plugin, body=BODY, now=NOW)
options, problems_for, inbound = build.options, build.problems_for, build.inbound


def headers(signature=SIGNATURE, msg_id=MSG_ID, stamp=STAMP):
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def hmac_signature(secret, msg_id=MSG_ID, stamp=STAMP, body=BODY):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def ed25519_pair():
    private = Ed25519PrivateKey.generate()
    public = "whpk_" + base64.b64encode(private.public_key().public_bytes_raw()).decode()
    return private, public


def ed25519_signature(private, msg_id=MSG_ID, stamp=STAMP, body=BODY):
    raw = private.sign(f"{msg_id}.{stamp}.".encode() + body)
    return "v1a," + base64.b64encode(raw).decode()


def test_standard_webhooks_published_vector_is_accepted():
    assert check(inbound(headers()), options(secret=SECRET)) is None


def test_standard_webhooks_bare_base64_secret_is_accepted():
    assert check(inbound(headers()), options(secret=SECRET.removeprefix("whsec_"))) is None


@pytest.mark.parametrize(
    "changed",
    [{"webhook-id": "msg_other"}, {"webhook-timestamp": str(STAMP + 1)}],
    ids=["id", "timestamp"],
)
def test_standard_webhooks_signed_metadata_cannot_be_changed(changed):
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers() | changed), options(secret=SECRET))


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_missing_header_is_rejected(name):
    sent = headers()
    del sent[name]
    with pytest.raises(VerificationError, match=f"missing {name} header"):
        check(inbound(sent), options(secret=SECRET))


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "v1",
        "v1,",
        ",abc",
        "v1,not base64!",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ",  # truncated
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1=g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        SIGNATURE.removeprefix("v1,"),
        SIGNATURE + " garbage",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=,extra",
        "v1,"
        + fullwidth("g")
        + "0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",  # a fullwidth letter
    ],
)
def test_standard_webhooks_malformed_signature_header_is_rejected(signature):
    with pytest.raises(VerificationError):
        check(inbound(headers(signature)), options(secret=SECRET))


@pytest.mark.parametrize(
    "stamp",
    ["now", "1614265330.0", "1.61426533e9", "-1614265330", " 1614265330", "1_614_265_330",
     fullwidth("1614265330"), "0x6037a2f2", "nan", "inf", "9" * 400],
)  # fmt: skip
def test_standard_webhooks_malformed_timestamp_is_rejected(stamp):
    with pytest.raises(VerificationError):
        check(inbound(headers(stamp=stamp)), options(secret=SECRET))


@pytest.mark.parametrize("offset", [-300, 300])
def test_standard_webhooks_timestamp_at_the_tolerance_edge_is_accepted(offset):
    stamp = STAMP + offset
    sent = headers(hmac_signature(SECRET, stamp=stamp), stamp=stamp)
    assert check(inbound(sent), options(secret=SECRET)) is None


def test_standard_webhooks_any_of_several_signatures_may_match():
    signature = f"v1,bm9wZQ== v2,whatever {SIGNATURE} v1a,bm9wZQ=="
    assert check(inbound(headers(signature)), options(secret=SECRET)) is None


def test_standard_webhooks_what_the_reference_library_signs_is_accepted():
    when = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    body = '{"type": "user.created", "name": "Zoë"}'
    signature = Webhook(SECRET).sign(MSG_ID, when, body)
    sent = headers(signature, stamp=int(when.timestamp()))
    assert check(inbound(sent, body.encode(), when), options(secret=SECRET)) is None


def test_standard_webhooks_sign_round_trips_and_the_reference_library_accepts_it():
    opts = options(secret=SECRET)
    now = dt.datetime.now(dt.UTC)  # the library checks against the wall clock
    sent = sign(opts, BODY, "https://hooks.example.com/in/x", now)
    assert set(sent) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert check(inbound(sent, now=now), opts) is None
    assert Webhook(SECRET).verify(BODY, sent) == {"test": 2432232314}


def test_standard_webhooks_header_bytes_are_signed_as_sent():
    # The server decodes header bytes as UTF-8 with surrogateescape: b"\xff" → "\udcff".
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, b"msg_\xff." + str(STAMP).encode() + b"." + BODY, hashlib.sha256)
    sent = headers("v1," + base64.b64encode(digest.digest()).decode(), msg_id="msg_\udcff")
    assert check(inbound(sent), options(secret=SECRET)) is None


def test_standard_webhooks_unencodable_id_is_rejected():
    with pytest.raises(VerificationError, match="malformed webhook-id"):
        check(inbound(headers(msg_id="msg_\ud800")), options(secret=SECRET))


def test_standard_webhooks_v1a_ed25519_signature_is_accepted():
    private, public = ed25519_pair()
    sent = headers(ed25519_signature(private))
    assert check(inbound(sent), options(public_key=public)) is None


def test_standard_webhooks_v1a_tampered_body_is_rejected():
    private, public = ed25519_pair()
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers(ed25519_signature(private)), b"{}"), options(public_key=public))


def test_standard_webhooks_v1a_from_another_key_is_rejected():
    private, _ = ed25519_pair()
    _, public = ed25519_pair()
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers(ed25519_signature(private))), options(public_key=public))


def test_standard_webhooks_v1a_rotation_accepts_either_public_key():
    (old, old_public), (new, new_public) = ed25519_pair(), ed25519_pair()
    opts = options(public_keys=[old_public, new_public])
    for private in (old, new):
        assert check(inbound(headers(ed25519_signature(private))), opts) is None


def test_standard_webhooks_public_key_only_config_ignores_hmac_signatures():
    _, public = ed25519_pair()
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers()), options(public_key=public))


def test_standard_webhooks_secret_and_public_key_each_verify_their_signatures():
    private, public = ed25519_pair()
    opts = options(secret=SECRET, public_key=public)
    assert check(inbound(headers()), opts) is None
    assert check(inbound(headers(ed25519_signature(private))), opts) is None


def test_standard_webhooks_v1a_signature_of_the_wrong_length_is_rejected():
    _, public = ed25519_pair()
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers("v1a,bm9wZQ==")), options(public_key=public))


def test_standard_webhooks_cannot_sign_with_only_a_public_key():
    _, public = ed25519_pair()
    with pytest.raises(NotImplementedError):
        sign(options(public_key=public), BODY, "", NOW)


def test_standard_webhooks_plugin_declares_dedupe_on_webhook_id():
    assert plugin.default_dedupe == "header:webhook-id"
    assert plugin.sign is sign


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "sources.x.verify.secret: needs secret, secrets, public_key or public_keys"),
        ({"secret": "whsec_!!!!"}, "sources.x.verify.secret: expected a base64 secret"),
        ({"secrets": [SECRET, "whsec_"]}, "sources.x.verify.secrets: expected a base64 secret"),
        ({"secret": 42.5}, "sources.x.verify.secret: expected a base64 secret"),
        ({"public_key": "whpk_bm9wZQ=="}, "sources.x.verify.public_key: expected a base64 Ed25519"),
        ({"public_keys": ["whpk_!"]}, "sources.x.verify.public_keys: expected a base64 Ed25519"),
        (
            {"secret": SECRET, "tolerance": "soon"},
            "sources.x.verify.tolerance: expected a duration",
        ),
        ({"secrets": [1, 2]}, "sources.x.verify.secrets: expected a list of strings"),
    ],
)
def test_standard_webhooks_config_problems_name_their_key(config, problem):
    found = problems_for(**config)
    assert found, config
    assert found[0].startswith(problem)
    assert all("!!!!" not in p for p in found)  # a bad secret is never echoed


def test_standard_webhooks_options_hold_decoded_keys():
    opts = options(secrets=[SECRET, OTHER_SECRET])
    assert opts.keys == (
        base64.b64decode(SECRET.removeprefix("whsec_")),
        b"another secret of 24 byte",
    )
    assert opts.tolerance == 300.0
    assert standard_webhooks.Options is type(opts)


BOTH = options(secret=SECRET, public_key=ed25519_pair()[1])


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "x-other"]),
        st.text(),
    ),
    body=st.binary(),
)
def test_standard_webhooks_arbitrary_requests_are_rejected_without_crashing(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), BOTH)
