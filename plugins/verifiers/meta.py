"""Meta (Facebook, Instagram, WhatsApp): ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``.

Notifications are POSTs signed with the app secret. Subscribing first sends a GET with
``hub.mode=subscribe``, ``hub.verify_token`` (the token set in the App Dashboard) and
``hub.challenge``, answered with the challenge itself; the source must allow GET for it.
https://developers.facebook.com/docs/graph-api/webhooks/getting-started
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.plugin import (
    Credentials,
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    header,
    hmac_digest,
    matches_any,
    require,
    secrets_from,
)

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="

SAMPLE_BODY = (
    b'{"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",'
    b' "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",'
    b' "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},'
    b' "messages": [{"from": "16315551181", "id": "wamid.HOOKGATE0TEST",'
    b' "timestamp": "1767225600", "type": "text", "text": {"body": "Hello from hookgate"}}]}}]}]}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    verify_token: bytes


def parse(section: Section) -> Options:
    secrets = secrets_from(section)
    token: str | None = section.text("verify_token", None)
    if token == "" or section.data.get("verify_token") is None:
        section.fail("is required: the Verify Token set in the App Dashboard", "verify_token")
    return Options(secrets, (token or "").encode())


def check(inbound: Inbound, options: Options) -> Reply | None:
    if inbound.method == "GET":
        return _subscribe(inbound, options)
    given = header(inbound, HEADER)
    # isascii: a header decoded with surrogateescape must not reach str.encode() in the compare.
    require(given.startswith(PREFIX) and given.isascii(), f"{HEADER} is not sha256=<hex>")
    expected = [PREFIX + hmac_digest(key, inbound.body).hex() for key in options.secrets]
    require(matches_any(expected, [given.lower()]), "signature does not match")
    return None


def _subscribe(inbound: Inbound, options: Options) -> Reply:
    """The verification request: echo hub.challenge if hub.verify_token is ours."""
    require(inbound.query.get("hub.mode") == "subscribe", "GET without hub.mode=subscribe")
    token = _utf8(inbound.query.get("hub.verify_token") or "", "hub.verify_token")
    require(matches_any([options.verify_token], [token]), "hub.verify_token does not match")
    challenge = _utf8(inbound.query.get("hub.challenge") or "", "hub.challenge")
    require(bool(challenge), "GET without hub.challenge")
    return Reply(challenge, content_type="text/plain", status=200)


def _utf8(value: str, name: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a percent-decoded query
        raise VerificationError(f"malformed {name}") from None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {
        HEADER: PREFIX + hmac_digest(options.secrets[0], body).hex(),
        # Meta still sends the SHA-1 signature alongside; nothing here relies on it.
        "X-Hub-Signature": "sha1=" + hmac_digest(options.secrets[0], body, "sha1").hex(),
    }


plugin = VerifierSpec(
    name="meta",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe=None,
    sample_body=SAMPLE_BODY,
    credentials=lambda options: Credentials(query=("hub.verify_token",)),
)
