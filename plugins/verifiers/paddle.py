"""Paddle Billing: ``Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "ts:body">[;h1=...]``.

Several h1 entries may be present while Paddle rotates a secret; any may match any
configured secret. The timestamp must be within `tolerance`: 5 seconds by default, the
default of Paddle's SDKs.
https://developer.paddle.com/webhooks/signature-verification
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gateway.plugin import (
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

HEADER = "Paddle-Signature"
DEFAULT_TOLERANCE = 5.0
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

SAMPLE_BODY = (
    b'{"event_id":"evt_01hv8x2acma4wa0fhn8vfb9mwt","event_type":"transaction.completed",'
    b'"occurred_at":"2024-04-12T10:18:49.621022Z","notification_id":'
    b'"ntf_01hv8x2af1e3h6v0fkd1xgsmac","data":{"id":"txn_01hv8wptq8987qeep44cyrewp9",'
    b'"status":"completed","customer_id":"ctm_01hv6y1jedq4p1n0yqn5ba3ky4",'
    b'"currency_code":"USD","origin":"web"}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section, DEFAULT_TOLERANCE))


def check(inbound: Inbound, options: Options) -> Reply | None:
    pairs = key_value_pairs(header(inbound, HEADER), ";")
    stamps = [value for key, value in pairs if key == "ts"]
    # An h1 that is not hex cannot match; Paddle's SDK vectors carry such entries.
    given = [value.lower() for key, value in pairs if key == "h1" and _HEX_SHA256.fullmatch(value)]
    one_stamp = len(stamps) == 1 and _UNIX_SECONDS.fullmatch(stamps[0]) is not None
    require(one_stamp, f"{HEADER} needs one ts=<unix seconds>")
    require(bool(given), f"{HEADER} has no h1=<hex>")
    check_timestamp(stamps[0], inbound.now, options.tolerance)
    signed = stamps[0].encode() + b":" + inbound.body
    expected = [hmac_digest(key, signed).hex() for key in options.secrets]
    require(matches_any(expected, given), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    digest = hmac_digest(options.secrets[0], stamp.encode() + b":" + body).hex()
    return {HEADER: f"ts={stamp};h1={digest}"}


plugin = VerifierSpec(
    name="paddle",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:event_id",
    sample_body=SAMPLE_BODY,
)
