"""Typeform: ``Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>``, keyed by the secret.

https://www.typeform.com/developers/webhooks/secure-your-webhooks/
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
    secrets_from,
)

HEADER = "Typeform-Signature"
PREFIX = "sha256="

SAMPLE_BODY = (
    b'{"event_id": "01HOOKGATE0TEST0EVENT00000", "event_type": "form_response",'
    b' "form_response": {"form_id": "lT4Z3j", "token": "a3a12ec67a1365927098a606107fac15",'
    b' "submitted_at": "2026-01-18T18:17:02Z", "definition": {"id": "lT4Z3j",'
    b' "title": "Webhooks example", "fields": []}, "answers": []}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]


def parse(section: Section) -> Options:
    return Options(secrets_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    value = header(inbound, HEADER)
    require(value.startswith(PREFIX), f"{HEADER} is not sha256=<base64>")
    given = b64decode(value.removeprefix(PREFIX))
    expected = [hmac_digest(key, inbound.body) for key in options.secrets]
    require(matches_any(expected, [given]), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {HEADER: PREFIX + b64(hmac_digest(options.secrets[0], body))}


plugin = VerifierSpec(
    name="typeform",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:event_id",
    sample_body=SAMPLE_BODY,
)
