"""Twilio: ``X-Twilio-Signature: <base64 HMAC-SHA1 of URL + sorted form params>`` (auth token).

A form POST signs the full URL followed by every form parameter, sorted by name (then by
value for a repeated name), each name and value appended with no delimiter. A JSON POST
carries ``bodySHA256=<hex SHA-256 of the body>`` in its query: the URL alone is signed and
the body must hash to that value. Twilio is not consistent about default ports, so the URL
is tried as it is, and with ``:443``/``:80`` added or removed.
https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qsl

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
    sample_id,
    secrets_from,
)

HEADER = "X-Twilio-Signature"
DEFAULT_PORTS = {"http": "80", "https": "443"}

SAMPLE_BODY = (
    b"ToCountry=US&ToState=CA&SmsMessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&NumMedia=0"
    b"&ToCity=SAN+FRANCISCO&FromZip=&SmsSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&FromState=CA"
    b"&SmsStatus=received&FromCity=&Body=Hello+from+hookgate&FromCountry=US&To=%2B15557654321"
    b"&ToZip=94105&NumSegments=1&MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f"
    b"&AccountSid=AC00000000000000000000000000000000&From=%2B15551234567&ApiVersion=2010-04-01"
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    public_url: str | None  # scheme, host and path Twilio calls; the query is the request's


def parse(section: Section) -> Options:
    secrets = secrets_from(section)
    public_url = section.text("public_url", None)
    if public_url is not None and not str(public_url).startswith(("https://", "http://")):
        section.fail(f"expected an absolute http(s) URL, got {public_url!r}", "public_url")
        public_url = None
    return Options(secrets, public_url)


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = b64decode(header(inbound, HEADER))
    url = signed_url(options.public_url, inbound.url)
    expected = [
        hmac_digest(key, message, "sha1")
        for message in messages(url, inbound.body)
        for key in options.secrets
    ]
    require(matches_any(expected, [given]), "signature does not match")
    return None


def signed_url(public_url: str | None, url: str) -> str:
    """The URL Twilio signed: `public_url` if configured, with the query the request came with.

    The query must be the request's own: Twilio appends ``bodySHA256`` to the configured URL.
    """
    if public_url is None:
        return url
    _, mark, query = url.partition("?")
    return public_url.partition("?")[0] + mark + query


def messages(url: str, body: bytes) -> list[bytes]:
    """Every string Twilio may have signed for this request: one per URL port spelling."""
    query = parse_qsl(url.partition("?")[2], keep_blank_values=True)
    hashes = [value for name, value in query if name == "bodySHA256"]
    if hashes:
        require(len(hashes) == 1 and hashes[0].isascii(), "malformed bodySHA256")
        digest = hashlib.sha256(body).hexdigest()
        require(matches_any([digest], [hashes[0].lower()]), "body does not match bodySHA256")
        params = ""
    else:
        # Twilio signs the form's decoded parameters, so the body is parsed before the check.
        params = "".join(name + value for name, value in sorted(form(body)))
    try:
        return [(variant + params).encode() for variant in port_variants(url)]
    except UnicodeEncodeError:  # a Host header decoded with surrogateescape
        raise VerificationError("malformed URL") from None


def form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, errors="strict")
    except ValueError:  # UnicodeDecodeError, from the body or a %-escape
        raise VerificationError("form body is not UTF-8 url-encoded") from None


def port_variants(url: str) -> list[str]:
    """`url`, and `url` with its default port removed, or added when it has none."""
    scheme, sep, rest = url.partition("://")
    default = DEFAULT_PORTS.get(scheme.lower())
    if not sep or default is None:
        return [url]
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    host, colon, port = netloc.rpartition(":")
    if colon and port.isascii() and port.isdigit():
        return [url, f"{scheme}{sep}{host}{tail}"] if port == default else [url]
    return [url, f"{scheme}{sep}{netloc}:{default}{tail}"]


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    """A form body is signed with its parameters; give a URL with ``?bodySHA256=`` for JSON."""
    message = messages(signed_url(options.public_url, url), body)[0]
    return {
        HEADER: b64(hmac_digest(options.secrets[0], message, "sha1")),
        "I-Twilio-Idempotency-Token": sample_id(),
    }


plugin = VerifierSpec(
    name="twilio",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="header:I-Twilio-Idempotency-Token",
    sample_body=SAMPLE_BODY,
    sample_content_type="application/x-www-form-urlencoded",
)
