"""Discord: ``X-Signature-Ed25519`` is the hex Ed25519 signature of
``{X-Signature-Timestamp}{body}`` by the application's key (``public_key``, hex).

Discord mandates no timestamp window; hookgate applies `tolerance` (default 5 minutes)
against replays. Handshakes, after the signature holds: an Interactions PING
(``{"type": 1}``) is answered ``{"type": 1}``; a Webhook Events PING (``{"type": 0}``)
is answered 204. Other interactions need an answer only the application can give:
point Discord's Webhook Events, not the Interactions endpoint, at hookgate.
https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint
https://discord.com/developers/docs/events/webhook-events
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    check_timestamp,
    header,
    require,
    secrets_from,
    tolerance_from,
)

SIGNATURE = "X-Signature-Ed25519"
TIMESTAMP = "X-Signature-Timestamp"
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{128}")
INTERACTION_PING = 1
WEBHOOK_EVENT_PING = 0
SAMPLE_BODY = (
    b'{"version": 1, "application_id": "1234567890123456789", "type": 1,'
    b' "event": {"type": "APPLICATION_AUTHORIZED", "timestamp": "2024-10-18T14:42:53.064834",'
    b' "data": {"integration_type": 1, "scopes": ["applications.commands"],'
    b' "user": {"id": "111111111111111111", "username": "some_user"}}}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    public_keys: tuple[Ed25519PublicKey, ...]
    tolerance: float


def parse(section: Section) -> Options:
    keys = []
    for text in secrets_from(section, "public_key"):
        try:
            keys.append(_public_key(text.decode().strip()))
        except ValueError:
            where = "public_key" if "public_key" in section else "public_keys"
            section.fail("expected the application's public key: 64 hex digits", where)
    return Options(tuple(keys), tolerance_from(section))


def _public_key(value: str) -> Ed25519PublicKey:
    if _HEX_KEY.fullmatch(value) is None:
        raise ValueError("not 64 hex digits")
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = header(inbound, SIGNATURE)
    stamp = header(inbound, TIMESTAMP)
    require(_HEX_SIGNATURE.fullmatch(given) is not None, f"{SIGNATURE} is not 128 hex digits")
    require(stamp.isascii() and stamp.isdigit(), f"{TIMESTAMP} is not Unix seconds")
    check_timestamp(stamp, inbound.now, options.tolerance)
    signed = stamp.encode() + inbound.body
    signature = bytes.fromhex(given)
    require(
        any(_ok(key, signature, signed) for key in options.public_keys), "signature does not match"
    )
    return _handshake(inbound.body)


def _ok(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        return False
    return True


def _handshake(body: bytes) -> Reply | None:
    """The answer to a PING, or None for an event (parsed only once the signature held)."""
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise VerificationError("body is not JSON") from None
    require(isinstance(payload, dict), "body is not a JSON object")
    kind = payload.get("type")
    if type(kind) is not int:
        return None
    if kind == WEBHOOK_EVENT_PING:
        return Reply(b"", status=204)
    # A webhook event is type 1 too, but always carries its "event".
    if kind == INTERACTION_PING and "event" not in payload:
        return Reply(b'{"type": 1}')
    return None


plugin = VerifierSpec(
    name="discord",
    parse=parse,
    check=check,
    sign=None,  # Discord signs with the application's private key, which it never hands out
    default_dedupe=None,  # webhook events carry no delivery id
    sample_body=SAMPLE_BODY,
)
