"""Standard Webhooks: ``webhook-signature: v1,<base64 HMAC-SHA256> v1a,<base64 Ed25519>``.

Both sign ``{webhook-id}.{webhook-timestamp}.{body}``; any of the space-separated
signatures may match any configured key. Svix and GitLab reuse these functions.
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    b64decode,
    check_timestamp,
    header,
    hmac_digest,
    matches_any,
    require,
    sample_id,
    secrets_from,
    tolerance_from,
)
from plugins.signers.standard_webhooks import decode_secret, signature_headers

PUBLIC_KEY_PREFIX = "whpk_"


@dataclass(frozen=True, slots=True)
class Options:
    keys: tuple[bytes, ...]  # HMAC keys, for v1
    public_keys: tuple[Ed25519PublicKey, ...]  # for v1a
    tolerance: float


def parse(section: Section) -> Options:
    has_secret = "secret" in section or "secrets" in section
    has_public_key = "public_key" in section or "public_keys" in section
    if not (has_secret or has_public_key):
        section.fail("needs secret, secrets, public_key or public_keys", "secret")
    keys = hmac_keys(section, "secret") if has_secret else ()
    public_keys = ed25519_keys(section, "public_key") if has_public_key else ()
    return Options(keys, public_keys, tolerance_from(section))


def hmac_keys(section: Section, key: str) -> tuple[bytes, ...]:
    """The ``whsec_...`` secrets at `key` or `key`s, decoded; bad ones become problems."""
    keys = []
    for secret in secrets_from(section, key):
        try:
            keys.append(decode_secret(secret.decode()))
        except ValueError as exc:
            section.fail(str(exc), key if key in section else f"{key}s")  # never echo it
    return tuple(keys)


def ed25519_keys(section: Section, key: str) -> tuple[Ed25519PublicKey, ...]:
    """The ``whpk_...`` public keys (base64 of the raw 32 bytes) at `key` or `key`s."""
    keys = []
    for text in secrets_from(section, key):
        encoded = text.decode().removeprefix(PUBLIC_KEY_PREFIX)
        try:
            raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError):
            message = "expected a base64 Ed25519 public key like whpk_..."
            section.fail(message, key if key in section else f"{key}s")
    return tuple(keys)


def verify(inbound: Inbound, options: Options, prefixes: Sequence[str] = ("webhook",)) -> None:
    """Check the ``<prefix>-id``, ``-timestamp`` and ``-signature`` headers of `inbound`.

    With several prefixes, the first whose signature header is present is used.
    """
    prefix = next((p for p in prefixes if f"{p}-signature" in inbound.headers), prefixes[0])
    msg_id = header(inbound, f"{prefix}-id")
    stamp = header(inbound, f"{prefix}-timestamp")
    given = signatures(header(inbound, f"{prefix}-signature"))
    require(stamp.isascii() and stamp.isdigit(), f"{prefix}-timestamp is not Unix seconds")
    check_timestamp(stamp, inbound.now, options.tolerance)
    signed = raw(msg_id, f"{prefix}-id") + f".{stamp}.".encode() + inbound.body
    require(matches(given, signed, options), "signature does not match")


def check(inbound: Inbound, options: Options) -> Reply | None:
    verify(inbound, options)
    return None


def signatures(value: str) -> list[tuple[str, bytes]]:
    """``v1,abc= v1a,def=`` → [("v1", ...), ("v1a", ...)]; other versions are skipped."""
    found = []
    for item in value.split():
        version, comma, encoded = item.partition(",")
        require(bool(comma and version), "malformed signature header")
        if version in ("v1", "v1a"):
            found.append((version, b64decode(encoded)))
    require(bool(found), "no v1 or v1a signature")
    return found


def matches(given: list[tuple[str, bytes]], signed: bytes, options: Options) -> bool:
    expected = [hmac_digest(key, signed) for key in options.keys]
    if matches_any(expected, [sig for version, sig in given if version == "v1"]):
        return True
    # A public-key check compares nothing secret, so it need not be constant-time.
    asymmetric = [sig for version, sig in given if version == "v1a"]
    return any(_ed25519_ok(key, sig, signed) for key in options.public_keys for sig in asymmetric)


def _ed25519_ok(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
    except (InvalidSignature, ValueError):
        return False
    return True


def raw(value: str, name: str) -> bytes:
    """A header value as the bytes that were sent (the server decoded them with surrogateescape)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise VerificationError(f"malformed {name} header") from None


def headers_for(
    options: Options, body: bytes, now: dt.datetime, prefix: str, msg_id: str | None = None
) -> dict[str, str]:
    """The ``<prefix>-*`` headers a sender holding the first secret would send."""
    if not options.keys:
        raise NotImplementedError("only public keys are configured; v1a needs the private key")
    msg_id = msg_id or sample_id(lambda: f"msg_{uuid.uuid4().hex}")
    sent = signature_headers(options.keys[0], msg_id, int(now.timestamp()), body)
    return {name.replace("webhook-", f"{prefix}-", 1): value for name, value in sent.items()}


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return headers_for(options, body, now, "webhook")


plugin = VerifierSpec(
    name="standard-webhooks",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="header:webhook-id",
)
