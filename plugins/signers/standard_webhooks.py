"""Standard Webhooks signing (https://www.standardwebhooks.com/) for outgoing deliveries.

The signing functions are pure (bytes in, strings out) so they can be checked against
the specification's published test vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, replace
from typing import Any, Literal

from gateway.plugin import (
    Message,
    Middleware,
    Resources,
    Section,
    Send,
    SendResult,
)

_SECRET_PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    """Return the signing key from a `whsec_`-prefixed (or bare) base64 secret.

    Unpadded base64 is accepted, as the reference library does. Raises ValueError if
    the secret is empty or not valid base64.
    """
    encoded = secret.removeprefix(_SECRET_PREFIX)
    padding = "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded + padding, validate=True)
    except binascii.Error:
        key = b""
    if not key:
        # No chaining: the decoder's message adds nothing and the input is a secret.
        raise ValueError("expected a base64 secret like whsec_...") from None
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `v1,<base64 HMAC-SHA256>` signature of `{msg_id}.{timestamp}.{body}`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


@dataclass(frozen=True, slots=True)
class SignOptions:
    keys: tuple[bytes, ...]


class StandardWebhooksSigner:
    """Adds webhook-id (the delivery id), webhook-timestamp and webhook-signature.

    With several secrets (rotation), every signature is sent, space-separated, as the
    specification allows: the receiver accepts the message if any one matches.
    """

    def __init__(self, options: SignOptions) -> None:
        self.keys = options.keys

    async def __call__(self, message: Message, call_next: Send) -> SendResult:
        msg_id = str(message.delivery_id)
        timestamp = int(message.now.timestamp())
        signatures = " ".join(sign(key, msg_id, timestamp, message.body) for key in self.keys)
        added = (
            ("webhook-id", msg_id),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", signatures),
        )
        kept = tuple(h for h in message.headers if not h[0].lower().startswith("webhook-"))
        return await call_next(replace(message, headers=kept + added))


class StandardWebhooksSigning:
    kind: Literal["middleware"] = "middleware"
    name = "standard-webhooks"

    def parse(self, section: Section) -> SignOptions:
        secrets = section.text_list("secrets", ())
        if "secret" in section or not secrets:
            secrets = (section.text("secret", ""), *secrets)
        keys = []
        for secret in secrets:
            try:
                keys.append(decode_secret(secret))
            except ValueError as exc:
                section.fail(str(exc), "secret")  # never echo the secret itself
        return SignOptions(tuple(keys))

    def create(self, options: Any, resources: Resources) -> Middleware:
        return StandardWebhooksSigner(options)


plugin = StandardWebhooksSigning()
