"""PagerDuty (v3 webhooks): ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>[,v1=...]``.

PagerDuty sends one ``v1=`` entry per signing secret while a secret is being rotated;
any entry may match any configured secret. Entries of other versions are ignored.
https://developer.pagerduty.com/docs/ZG9jOjExMDI5NTkz-verifying-signatures
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

HEADER = "X-PagerDuty-Signature"
PREFIX = "v1="

SAMPLE_BODY = (
    b'{"event": {"id": "01DEN3TZDX6Q1FQ1G3SADTD0PK", "event_type": "pagey.ping",'
    b' "resource_type": "pagey", "occurred_at": "2026-01-01T00:00:00.000Z",'
    b' "agent": null, "client": null, "data": {"message": "Hello from Pagey!",'
    b' "type": "ping"}}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]


def parse(section: Section) -> Options:
    return Options(secrets_from(section))


def signatures(value: str) -> list[str]:
    """The hex digests of the ``v1=`` entries, lowercased; `VerificationError` if there are none."""
    # isascii: a header decoded with surrogateescape must not reach str.encode() in the compare.
    entries = [part.strip() for part in value.split(",")] if value.isascii() else []
    given = [entry.removeprefix(PREFIX).lower() for entry in entries if entry.startswith(PREFIX)]
    require(any(given), f"{HEADER} has no v1=<hex> signature")
    return given


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = signatures(header(inbound, HEADER))
    expected = [hmac_digest(key, inbound.body).hex() for key in options.secrets]
    require(matches_any(expected, given), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    """One ``v1=`` entry per configured secret, as PagerDuty does during a rotation."""
    entries = [PREFIX + hmac_digest(key, body).hex() for key in options.secrets]
    return {HEADER: ",".join(entries)}


plugin = VerifierSpec(
    name="pagerduty",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:event.id",
    sample_body=SAMPLE_BODY,
)
