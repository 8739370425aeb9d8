"""SendGrid Event Webhook: ``X-Twilio-Email-Event-Webhook-Signature`` is the base64 DER
ECDSA P-256/SHA-256 signature of ``{X-Twilio-Email-Event-Webhook-Timestamp}{body}``,
verified with the webhook's verification key (``public_key``: base64 DER, as SendGrid
shows it, or PEM). The body is signed as sent, trailing CRLF included.

SendGrid documents no timestamp window; hookgate applies `tolerance` (default 5
minutes) against replays.
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerifierSpec,
    b64decode,
    check_timestamp,
    header,
    require,
    secrets_from,
    tolerance_from,
)

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
SAMPLE_BODY = (
    b'[{"email": "example@test.com", "timestamp": 1700000000,'
    b' "smtp-id": "<14c5d75ce93@example.com>",'
    b' "event": "delivered", "category": ["cat facts"], "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A==",'
    b' "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",'
    b' "response": "250 OK"}]\r\n'
)


@dataclass(frozen=True, slots=True)
class Options:
    public_keys: tuple[ec.EllipticCurvePublicKey, ...]
    tolerance: float


def parse(section: Section) -> Options:
    keys = []
    for text in secrets_from(section, "public_key"):
        try:
            keys.append(_public_key(text.decode().strip()))
        except ValueError:
            where = "public_key" if "public_key" in section else "public_keys"
            section.fail("expected SendGrid's verification key: a base64 P-256 public key", where)
    return Options(tuple(keys), tolerance_from(section))


def _public_key(value: str) -> ec.EllipticCurvePublicKey:
    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(value.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, UnsupportedAlgorithm) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 key")
    return key


def check(inbound: Inbound, options: Options) -> Reply | None:
    signature = b64decode(header(inbound, SIGNATURE))
    stamp = header(inbound, TIMESTAMP)
    require(stamp.isascii() and stamp.isdigit(), f"{TIMESTAMP} is not Unix seconds")
    check_timestamp(stamp, inbound.now, options.tolerance)
    signed = stamp.encode() + inbound.body
    require(
        any(_ok(key, signature, signed) for key in options.public_keys), "signature does not match"
    )
    return None


def _ok(key: ec.EllipticCurvePublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


plugin = VerifierSpec(
    name="sendgrid",
    parse=parse,
    check=check,
    sign=None,  # SendGrid signs with a private key it never hands out
    default_dedupe=None,  # a request batches events, each with its own sg_event_id
    sample_body=SAMPLE_BODY,
)
