"""SendGrid Event Webhook: ECDSA P-256/SHA-256 over timestamp + body, verbatim."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Section, VerificationError
from plugins.verifiers.sendgrid import check, plugin

# The vector SendGrid's official library tests against:
# https://github.com/sendgrid/sendgrid-python/blob/main/test/unit/test_eventwebhook.py
# (the algorithm: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features)
VECTOR_KEY = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
VECTOR_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
VECTOR_STAMP = "1600112502"
VECTOR_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)
# The library's "bad key" case: a valid P-256 key that did not sign the vector.
WRONG_KEY = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
VECTOR_NOW = dt.datetime.fromtimestamp(int(VECTOR_STAMP), dt.UTC)
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
STAMP = int(NOW.timestamp())
BODY = plugin.sample_body
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def fullwidth(text):
    """`text` in fullwidth forms: digits and letters that are not ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


build = Builders(plugin, body=BODY)
options, inbound = build.options, build.inbound


def key_pair():
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


PRIVATE, PUBLIC = key_pair()
OTHER, OTHER_PUBLIC = key_pair()


def headers(private=PRIVATE, stamp=STAMP, body=BODY):
    signature = private.sign(str(stamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: str(stamp)}


def vector(signature=VECTOR_SIGNATURE, stamp=VECTOR_STAMP):
    return {SIGNATURE: signature, TIMESTAMP: stamp}


def test_sendgrid_published_vector_is_accepted():
    assert check(inbound(vector(), VECTOR_BODY, VECTOR_NOW), options(public_key=VECTOR_KEY)) is None


def test_sendgrid_published_vector_needs_its_trailing_crlf():
    opts = options(public_key=VECTOR_KEY)
    for body in (VECTOR_BODY.rstrip(b"\r\n"), VECTOR_BODY[:-2] + b"\n", VECTOR_BODY + b"\r\n"):
        with pytest.raises(VerificationError, match="signature does not match"):
            check(inbound(vector(), body, VECTOR_NOW), opts)


def test_sendgrid_published_vector_with_another_key_is_rejected():
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(vector(), VECTOR_BODY, VECTOR_NOW), options(public_key=WRONG_KEY))


def test_sendgrid_published_bad_signature_is_rejected():
    bad = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0="
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(vector(bad), VECTOR_BODY, VECTOR_NOW), options(public_key=VECTOR_KEY))


def test_sendgrid_body_ending_in_crlf_verifies_only_as_sent():
    body = b'[{"email":"a@example.com","event":"open","sg_event_id":"x1"}]\r\n'
    sent = headers(body=body)
    assert check(inbound(sent, body), options(public_key=PUBLIC)) is None
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(sent, body.rstrip()), options(public_key=PUBLIC))


def test_sendgrid_signed_event_batch_is_accepted():
    assert check(inbound(headers()), options(public_key=PUBLIC)) is None


def test_sendgrid_changed_timestamp_is_rejected():
    sent = headers() | {TIMESTAMP: str(STAMP + 1)}
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(sent), options(public_key=PUBLIC))


@pytest.mark.parametrize("name", [SIGNATURE, TIMESTAMP])
def test_sendgrid_missing_header_is_rejected(name):
    sent = headers()
    del sent[name]
    with pytest.raises(VerificationError, match=f"missing {name} header"):
        check(inbound(sent), options(public_key=PUBLIC))


@pytest.mark.parametrize(
    "signature",
    ["!!!", "MEUCIGHQ VtGj", "AAAA", "bm90IGEgREVSIHNpZ25hdHVyZQ==", "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10Qys",
     fullwidth("MEU"), base64.b64encode(b"\x30\x06\x02\x01\x00\x02\x01\x00").decode(), "MAA="],
)  # fmt: skip
def test_sendgrid_malformed_signature_is_rejected(signature):
    sent = headers() | {SIGNATURE: signature}
    with pytest.raises(VerificationError):
        check(inbound(sent), options(public_key=PUBLIC))


@pytest.mark.parametrize(
    "stamp", ["timestamp", "1600112502.0", "-1", "1e9", fullwidth("1600"), "9" * 30]
)
def test_sendgrid_malformed_timestamp_is_rejected(stamp):
    sent = headers() | {TIMESTAMP: stamp}
    with pytest.raises(VerificationError):
        check(inbound(sent), options(public_key=PUBLIC))


@pytest.mark.parametrize("offset", [-300, 300])
def test_sendgrid_timestamp_at_the_tolerance_edge_is_accepted(offset):
    assert check(inbound(headers(stamp=STAMP + offset)), options(public_key=PUBLIC)) is None


def test_sendgrid_pem_public_key_is_accepted():
    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert check(inbound(headers()), options(public_key=pem.decode())) is None


def test_sendgrid_cannot_sign_and_has_no_default_dedupe():
    assert plugin.sign is None
    assert plugin.default_dedupe is None
    assert plugin.sample_body.startswith(b"[") and plugin.sample_body.endswith(b"]\r\n")


def der(public_key) -> str:
    return base64.b64encode(
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "sources.x.verify.public_key: needs public_key or public_keys"),
        (
            {"public_key": "not base64!"},
            "sources.x.verify.public_key: expected SendGrid's verification key",
        ),
        (
            {"public_key": VECTOR_KEY[:40]},
            "sources.x.verify.public_key: expected SendGrid's verification key",
        ),
        (
            {"public_key": der(ec.generate_private_key(ec.SECP384R1()).public_key())},
            "sources.x.verify.public_key: expected",
        ),
        (
            {"public_key": der(ed25519.Ed25519PrivateKey.generate().public_key())},
            "sources.x.verify.public_key: expected",
        ),
        (
            {"public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
            "sources.x.verify.public_key: expected",
        ),
        (
            {"public_keys": [VECTOR_KEY, "MFkw"]},
            "sources.x.verify.public_keys: expected SendGrid's",
        ),
        (
            {"public_key": VECTOR_KEY, "tolerance": "a while"},
            "sources.x.verify.tolerance: expected a duration",
        ),
    ],
)
def test_sendgrid_config_problems_name_their_key(config, problem):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    assert problems and problems[0].startswith(problem)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from([SIGNATURE, TIMESTAMP, "x-other"]), st.text()),
    body=st.binary(),
)
def test_sendgrid_arbitrary_requests_are_rejected_without_crashing(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(public_key=PUBLIC))
