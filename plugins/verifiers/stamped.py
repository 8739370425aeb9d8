"""The scheme Stripe made common: ``<Header>: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``,
where each v1 is the hex HMAC-SHA256 of ``"<t>.<body>"``; any v1 may match any secret
(rotation), and t must be within `tolerance` either way. Stripe, Calendly and Mux use it;
`spec()` makes a verifier plugin for one of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.plugin import (
    SAMPLE_BODY,
    Inbound,
    Reply,
    Section,
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

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parser(tolerance: float) -> Callable[[Section], Options]:
    def parse(section: Section) -> Options:
        return Options(secrets_from(section), tolerance_from(section, tolerance))

    return parse


def checker(name: str) -> Callable[[Inbound, Options], Reply | None]:
    def check(inbound: Inbound, options: Options) -> Reply | None:
        pairs = key_value_pairs(header(inbound, name))
        stamps = [value for key, value in pairs if key == "t"]
        given = [v.lower() for key, v in pairs if key == "v1" and _HEX_SHA256.fullmatch(v)]
        one_stamp = len(stamps) == 1 and _UNIX_SECONDS.fullmatch(stamps[0]) is not None
        require(one_stamp, f"{name} needs one t=<unix seconds>")
        require(bool(given), f"{name} has no v1=<hex>")
        check_timestamp(stamps[0], inbound.now, options.tolerance)
        signed = stamps[0].encode() + b"." + inbound.body
        expected = [hmac_digest(key, signed).hex() for key in options.secrets]
        require(matches_any(expected, given), "signature does not match")
        return None

    return check


def signer(name: str) -> Callable[[Options, bytes, str, dt.datetime], dict[str, str]]:
    def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
        stamp = str(int(now.timestamp()))
        digest = hmac_digest(options.secrets[0], stamp.encode() + b"." + body).hex()
        return {name: f"t={stamp},v1={digest}"}

    return sign


def spec(
    name: str,
    header_name: str,
    *,
    tolerance: float = 300.0,
    default_dedupe: str | None = None,
    sample_body: bytes = SAMPLE_BODY,
) -> VerifierSpec:
    return VerifierSpec(
        name=name,
        parse=parser(tolerance),
        check=checker(header_name),
        sign=signer(header_name),
        default_dedupe=default_dedupe,
        sample_body=sample_body,
    )
