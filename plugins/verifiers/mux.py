"""Mux: ``Mux-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]``.

Entries of other schemes (v2=...) are ignored, as Mux's SDKs do; any v1 may match any
configured secret. The timestamp must be within `tolerance` (default 5 minutes).
https://www.mux.com/docs/core/verify-webhook-signatures
"""

from __future__ import annotations

import datetime as dt
import re
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

HEADER = "Mux-Signature"
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

SAMPLE_BODY = (
    b'{"type":"video.asset.ready","id":"3a56ac3d-33da-4366-855b-f592d898409d",'
    b'"object":{"type":"asset","id":"0201p02fGKPE7MrbC269XRD7LpcHhrmbu0002"},'
    b'"environment":{"name":"Production","id":"j0863n"},'
    b'"data":{"id":"0201p02fGKPE7MrbC269XRD7LpcHhrmbu0002","status":"ready",'
    b'"playback_ids":[{"policy":"public","id":"sRNCd76bzE01KhfTY6O7bHfgn02y7Wq5lpi"}]},'
    b'"created_at":"2024-05-01T12:00:00.000000Z","attempts":[],"request_id":null}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    pairs = key_value_pairs(header(inbound, HEADER))
    stamps = [value for key, value in pairs if key == "t"]
    given = [value.lower() for key, value in pairs if key == "v1" and _HEX_SHA256.fullmatch(value)]
    one_stamp = len(stamps) == 1 and _UNIX_SECONDS.fullmatch(stamps[0]) is not None
    require(one_stamp, f"{HEADER} needs one t=<unix seconds>")
    require(bool(given), f"{HEADER} has no v1=<hex>")
    check_timestamp(stamps[0], inbound.now, options.tolerance)
    signed = stamps[0].encode() + b"." + inbound.body
    expected = [hmac_digest(key, signed).hex() for key in options.secrets]
    require(matches_any(expected, given), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    digest = hmac_digest(options.secrets[0], stamp.encode() + b"." + body).hex()
    return {HEADER: f"t={stamp},v1={digest}"}


plugin = VerifierSpec(
    name="mux",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:id",
    sample_body=SAMPLE_BODY,
)
