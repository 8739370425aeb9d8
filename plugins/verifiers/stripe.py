"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]``.

Several v1 entries may be present (Stripe rolls secrets); any may match any configured
secret. The timestamp must be within `tolerance` (default 5 minutes) either way.
https://docs.stripe.com/webhooks#verify-manually
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.ingress.verify import (
    Inbound,
    Reply,
    VerifierSpec,
    check_timestamp,
    header,
    hmac_digest,
    key_value_pairs,
    matches_any,
    require,
    secrets_from,
    tolerance_from,
)
from gateway.section import Section


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    pairs = key_value_pairs(header(inbound, "Stripe-Signature"))
    stamps = [value for key, value in pairs if key == "t"]
    given = [value for key, value in pairs if key == "v1"]
    require(len(stamps) == 1 and bool(given), "Stripe-Signature needs one t= and a v1=")
    check_timestamp(stamps[0], inbound.now, options.tolerance)
    signed = stamps[0].encode() + b"." + inbound.body
    expected = [hmac_digest(key, signed).hex() for key in options.secrets]
    require(matches_any(expected, given), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    digest = hmac_digest(options.secrets[0], stamp.encode() + b"." + body).hex()
    return {"Stripe-Signature": f"t={stamp},v1={digest}"}


plugin = VerifierSpec(
    name="stripe",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:id",
)
