"""HubSpot v3: ``X-HubSpot-Signature-v3: <base64 HMAC-SHA256 of method + URI + body + timestamp>``.

The key is the app's client secret; ``X-HubSpot-Request-Timestamp`` is Unix *milliseconds*
and must be within `tolerance` (default 5 minutes). The URI is the full URL HubSpot called
(`public_url`, else the request's public URL) with the escapes HubSpot lists decoded.
https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    b64,
    b64decode,
    check_timestamp,
    header,
    hmac_digest,
    matches_any,
    require,
    secrets_from,
    show,
    tolerance_from,
)

SIGNATURE = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
_UNIX_MILLISECONDS = re.compile(r"[0-9]{1,15}")
# HubSpot decodes exactly these escapes in the URI before signing; all others stay encoded.
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ESCAPE = re.compile("|".join(_DECODED), re.IGNORECASE)

SAMPLE_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
    b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float
    public_url: str | None  # the exact URL configured in HubSpot, query string included


def parse(section: Section) -> Options:
    return Options(
        secrets_from(section),
        tolerance_from(section),
        section.get("public_url", absolute_url, None),
    )


def absolute_url(value: object) -> str:
    """The `public_url` option: what HubSpot calls, exactly as configured there."""
    url = value if isinstance(value, str) else ""
    if not url.startswith(("https://", "http://")) or not url.isprintable() or " " in url:
        raise ValueError(f"expected an absolute http(s) URL, got {show(value)}")
    return url


def check(inbound: Inbound, options: Options) -> Reply | None:
    stamp = header(inbound, TIMESTAMP)
    require(_UNIX_MILLISECONDS.fullmatch(stamp) is not None, f"{TIMESTAMP} is not Unix ms")
    check_timestamp(int(stamp) / 1000, inbound.now, options.tolerance)
    given = b64decode(header(inbound, SIGNATURE))
    uri = options.public_url or inbound.url
    expected = [_digest(key, inbound.method, uri, inbound.body, stamp) for key in options.secrets]
    require(matches_any(expected, [given]), "signature does not match")
    return None


def signed_uri(uri: str) -> str:
    """`uri` as HubSpot signs it: ``%3A`` → ``:`` and the other listed escapes decoded."""
    return _ESCAPE.sub(lambda escape: _DECODED[escape[0].upper()], uri)


def _digest(key: bytes, method: str, uri: str, body: bytes, stamp: str) -> bytes:
    return hmac_digest(key, _utf8(method + signed_uri(uri)) + body + stamp.encode())


def _utf8(text: str) -> bytes:
    # aiohttp decodes the Host header (part of a rebuilt URL) with surrogateescape:
    # encoding the same way gives back the bytes that were sent.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise VerificationError("the request URL is not valid UTF-8") from None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp() * 1000))
    digest = _digest(options.secrets[0], "POST", options.public_url or url, body, stamp)
    return {TIMESTAMP: stamp, SIGNATURE: b64(digest)}


plugin = VerifierSpec(
    name="hubspot",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe=None,
    sample_body=SAMPLE_BODY,
)
