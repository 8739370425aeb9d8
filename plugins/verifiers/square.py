"""Square: ``x-square-hmacsha256-signature: <base64 HMAC-SHA256 of notification URL + body>``.

The key is the subscription's signature key; the URL is the notification URL exactly as
configured in Square (`public_url`, else the request's public URL). Square signs no
timestamp, so nothing limits replays but deduplication on ``event_id``.
https://developer.squareup.com/docs/webhooks/step3validate
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    b64,
    b64decode,
    header,
    hmac_digest,
    matches_any,
    require,
    secrets_from,
    show,
)

HEADER = "X-Square-HmacSha256-Signature"

SAMPLE_BODY = (
    b'{"merchant_id":"6SSW7HV8K2ST5","type":"payment.created",'
    b'"event_id":"13b867cf-db3d-4b1c-90b6-2f32a9d78124","created_at":"2024-05-01T12:00:00Z",'
    b'"data":{"type":"payment","id":"KkAkhdMsgzn59SM8A89WgKwekxLZY",'
    b'"object":{"payment":{"id":"hYy9pRFVxpDsO1FB05SunFWUe9JZY","status":"APPROVED",'
    b'"amount_money":{"amount":100,"currency":"USD"},"location_id":"S8GWD5R9QB376"}}}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    public_url: str | None  # the notification URL exactly as configured in Square


def parse(section: Section) -> Options:
    return Options(secrets_from(section), section.get("public_url", absolute_url, None))


def absolute_url(value: object) -> str:
    """The `public_url` option: the notification URL, exactly as configured in Square."""
    url = value if isinstance(value, str) else ""
    if not url.startswith(("https://", "http://")) or not url.isprintable() or " " in url:
        raise ValueError(f"expected an absolute http(s) URL, got {show(value)}")
    return url


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = b64decode(header(inbound, HEADER))
    signed = _utf8(options.public_url or inbound.url) + inbound.body
    expected = [hmac_digest(key, signed) for key in options.secrets]
    require(matches_any(expected, [given]), "signature does not match")
    return None


def _utf8(text: str) -> bytes:
    # aiohttp decodes the Host header (part of a rebuilt URL) with surrogateescape:
    # encoding the same way gives back the bytes that were sent.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise VerificationError("the request URL is not valid UTF-8") from None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    digest = hmac_digest(options.secrets[0], _utf8(options.public_url or url) + body)
    return {HEADER: b64(digest)}


plugin = VerifierSpec(
    name="square",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:event_id",
    sample_body=SAMPLE_BODY,
)
