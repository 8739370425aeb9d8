"""Zoom: ``x-zm-signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">``.

``x-zm-request-timestamp`` (Unix seconds) must be within `tolerance` (default 5 minutes).
The ``endpoint.url_validation`` challenge is signed the same way; once verified it is
answered with ``{"plainToken": p, "encryptedToken": <hex HMAC-SHA256 of p>}``.
https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import orjson

from gateway.errors import VerificationError
from gateway.ingress.verify import (
    Inbound,
    Reply,
    VerifierSpec,
    check_timestamp,
    header,
    hmac_digest,
    matches_any,
    require,
    secrets_from,
    tolerance_from,
)
from gateway.section import Section

SIGNATURE = "x-zm-signature"
TIMESTAMP = "x-zm-request-timestamp"
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-fA-F]{64}")

SAMPLE_BODY = (
    b'{"event":"meeting.started","event_ts":1626230691572,"payload":{"account_id":'
    b'"AAAAAABBBB","object":{"id":"1234567890","uuid":"czLF6FFAQKK4aoOEtyBsxQ==",'
    b'"host_id":"x1yCzABCDEfg23HiJKl4mN","topic":"My Meeting","type":2,'
    b'"start_time":"2021-07-13T21:44:51Z","timezone":"America/Los_Angeles","duration":60}}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    stamp = header(inbound, TIMESTAMP)
    given = header(inbound, SIGNATURE)
    require(_UNIX_SECONDS.fullmatch(stamp) is not None, f"{TIMESTAMP} is not Unix seconds")
    require(_SIGNATURE.fullmatch(given) is not None, f"{SIGNATURE} is not v0=<hex>")
    check_timestamp(stamp, inbound.now, options.tolerance)
    key = _signing_key(options.secrets, stamp, inbound.body, given.lower())
    if key is None:
        raise VerificationError("signature does not match")
    return _url_validation(inbound.body, key)


def _signature(key: bytes, stamp: str, body: bytes) -> str:
    return "v0=" + hmac_digest(key, b"v0:" + stamp.encode() + b":" + body).hex()


def _signing_key(keys: tuple[bytes, ...], stamp: str, body: bytes, given: str) -> bytes | None:
    """The configured secret that made `given` (the challenge is answered with the same one)."""
    found = None
    for key in keys:
        if matches_any([_signature(key, stamp, body)], [given]):
            found = key
    return found


def _url_validation(body: bytes, key: bytes) -> Reply | None:
    """The answer to a (signed) endpoint.url_validation event, None for any other body."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("event") != "endpoint.url_validation":
        return None
    payload = event.get("payload")
    token = payload.get("plainToken") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise VerificationError("endpoint.url_validation has no payload.plainToken")
    encrypted = hmac_digest(key, token.encode()).hex()
    return Reply(orjson.dumps({"plainToken": token, "encryptedToken": encrypted}))


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    return {TIMESTAMP: stamp, SIGNATURE: _signature(options.secrets[0], stamp, body)}


plugin = VerifierSpec(
    name="zoom",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe=None,
    sample_body=SAMPLE_BODY,
)
