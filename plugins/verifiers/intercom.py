"""Intercom: ``X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>``, keyed by the client secret.

https://developers.intercom.com/intercom-api-reference/v1.0/reference/signed-notifications
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerifierSpec,
    header,
    hmac_digest,
    matches_any,
    require,
    secrets_from,
)

HEADER = "X-Hub-Signature"
PREFIX = "sha1="

SAMPLE_BODY = (
    b'{"type": "notification_event", "id": "notif_78c122d0-23ba-11e4-9464-79b01267cc2e",'
    b' "topic": "ping", "app_id": "a86dr8yl", "created_at": 1767225600,'
    b' "data": {"type": "notification_event_data", "item": {"type": "ping",'
    b' "message": "Hello from hookgate"}}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]


def parse(section: Section) -> Options:
    return Options(secrets_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = header(inbound, HEADER)
    # isascii: a header decoded with surrogateescape must not reach str.encode() in the compare.
    require(given.startswith(PREFIX) and given.isascii(), f"{HEADER} is not sha1=<hex>")
    expected = [PREFIX + hmac_digest(key, inbound.body, "sha1").hex() for key in options.secrets]
    require(matches_any(expected, [given.lower()]), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {HEADER: PREFIX + hmac_digest(options.secrets[0], body, "sha1").hex()}


plugin = VerifierSpec(
    name="intercom",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:id",
    sample_body=SAMPLE_BODY,
)
