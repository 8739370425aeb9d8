"""Mailgun: the body carries ``signature: {timestamp, token, signature}``, where ``signature``
is the hex HMAC-SHA256 of ``timestamp + token`` keyed by the HTTP webhook signing key.

The body itself is NOT signed: the signature only proves that Mailgun issued this
timestamp and token, so a captured token could be replayed with another body. The
timestamp must be within `tolerance` (default 5 minutes) and the default dedupe key is the
token, so a token is honoured once within the dedupe window. JSON bodies (webhooks API)
and url-encoded forms with top-level ``timestamp``/``token``/``signature`` fields (legacy
webhooks) are both read, told apart by their content. ``parent-signature``, sent for a
subaccount's events, is accepted as well when the parent account's key is configured.
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    check_timestamp,
    hmac_digest,
    matches_any,
    require,
    sample_id,
    secrets_from,
    tolerance_from,
)

FIELDS = ("timestamp", "token", "signature", "parent-signature")

SAMPLE_BODY = (
    b'{"signature": {"timestamp": "1767225600",'
    b' "token": "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",'
    b' "signature": "0000000000000000000000000000000000000000000000000000000000000000"},'
    b' "event-data": {"id": "CPgfbmQMTCKtHW6uIWtuVe", "event": "delivered",'
    b' "timestamp": 1767225600.0, "recipient": "alice@example.com"}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    fields = signature_fields(inbound.body)
    timestamp, token = _timestamp(fields.get("timestamp")), fields.get("token")
    if not isinstance(token, str) or not token:
        raise VerificationError("signature.token is missing")
    given = [
        value.lower()
        for value in (fields.get("signature"), fields.get("parent-signature"))
        if isinstance(value, str) and value.isascii()
    ]
    require(bool(given), "signature.signature is missing")
    check_timestamp(timestamp, inbound.now, options.tolerance)
    expected = [signature(key, timestamp, token) for key in options.secrets]
    require(matches_any(expected, given), "signature does not match")
    return None


def _timestamp(value: object) -> str:
    """Unix seconds as the string that was signed (JSON may carry them as a number)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        raise VerificationError("signature.timestamp is not Unix seconds")
    return value


def signature_fields(body: bytes) -> Mapping[str, object]:
    """The signature object of a JSON body, or the fields of a url-encoded one."""
    # The signature lives in the body, so the body is parsed before anything is verified.
    if body.lstrip()[:1] == b"{":
        return _json_fields(body)
    return _form_fields(body)


def _json_fields(body: bytes) -> Mapping[str, object]:
    try:
        data = orjson.loads(body)  # rejects lone surrogates, and nesting past 1024 levels
    except orjson.JSONDecodeError:
        raise VerificationError("body is not JSON") from None
    fields = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(fields, dict):
        raise VerificationError("body has no signature object")
    return fields


def _form_fields(body: bytes) -> Mapping[str, object]:
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, errors="strict")
    except ValueError:  # UnicodeDecodeError, from the body or a %-escape
        raise VerificationError("body is neither JSON nor a UTF-8 url-encoded form") from None
    names = [name for name, _ in pairs]
    require(any(name in names for name in FIELDS), "body has no signature fields")
    require(all(names.count(name) <= 1 for name in FIELDS), "repeated signature field")
    return {name: value for name, value in pairs if name in FIELDS}


def signature(key: bytes, timestamp: str, token: str) -> str:
    """The ``signature`` Mailgun sends for `timestamp` and `token`."""
    return hmac_digest(key, f"{timestamp}{token}".encode()).hex()


def prepare(options: Options, body: bytes, now: dt.datetime) -> bytes:
    """`body` (a JSON object) with a fresh ``signature`` object, as Mailgun sends it."""
    document = orjson.loads(body)
    timestamp, token = str(int(now.timestamp())), sample_id(lambda: secrets.token_hex(25))
    document["signature"] = {
        "timestamp": timestamp,
        "token": token,
        "signature": signature(options.secrets[0], timestamp, token),
    }
    return orjson.dumps(document)


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {}  # the signature travels in the body (see prepare)


plugin = VerifierSpec(
    name="mailgun",
    parse=parse,
    check=check,
    # The signature is inside the body and `sign` can only add headers: nothing to sign with.
    sign=sign,
    prepare=prepare,
    default_dedupe="json:signature.token",
    sample_body=SAMPLE_BODY,
)
