"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>``, keyed by the app secret.

Shopify's docs spell the header both ``X-Shopify-Hmac-Sha256`` and ``X-Shopify-Hmac-SHA256``;
header names are case-insensitive, so both arrive here as the same header.
https://shopify.dev/docs/apps/build/webhooks/subscribe/https (verify),
https://shopify.dev/docs/apps/build/webhooks/delivery-structure (headers)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerifierSpec,
    b64,
    b64decode,
    header,
    hmac_digest,
    matches_any,
    require,
    sample_id,
    secrets_from,
)

HEADER = "X-Shopify-Hmac-Sha256"

SAMPLE_BODY = (
    b'{"id": 820982911946154508, "email": "jon@example.com", "name": "#9999",'
    b' "financial_status": "paid", "total_price": "403.00", "currency": "USD",'
    b' "line_items": [{"id": 866550311766439020, "title": "IPod Nano - 8GB",'
    b' "quantity": 1, "price": "199.00"}]}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]


def parse(section: Section) -> Options:
    return Options(secrets_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = b64decode(header(inbound, HEADER))
    expected = [hmac_digest(key, inbound.body) for key in options.secrets]
    require(matches_any(expected, [given]), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {
        HEADER: b64(hmac_digest(options.secrets[0], body)),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "hookgate-test.myshopify.com",
        "X-Shopify-API-Version": "2025-07",
        "X-Shopify-Webhook-Id": sample_id(),
        "X-Shopify-Event-Id": sample_id(),
        "X-Shopify-Triggered-At": now.isoformat(),
    }


plugin = VerifierSpec(
    name="shopify",
    parse=parse,
    check=check,
    sign=sign,
    # X-Shopify-Webhook-Id is the same on every retry of one delivery: what a provider's
    # retries must not turn into duplicates. (X-Shopify-Event-Id would also merge one
    # event sent by several subscriptions; set dedupe.key to it if that is wanted.)
    default_dedupe="header:X-Shopify-Webhook-Id",
    sample_body=SAMPLE_BODY,
)
