"""Zoom: ``x-zm-signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">``.

``x-zm-request-timestamp`` (Unix seconds) must be within `tolerance` (default 5 minutes).
The ``endpoint.url_validation`` challenge is signed the same way; once verified it is
answered with ``{"plainToken": p, "encryptedToken": <hex HMAC-SHA256 of p>}``.
https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events
"""

from __future__ import annotations

import orjson

from gateway.plugin import (
    Inbound,
    Reply,
    VerificationError,
    VerifierSpec,
    hmac_digest,
)
from plugins.verifiers import v0

SIGNATURE = "x-zm-signature"
TIMESTAMP = "x-zm-request-timestamp"

SAMPLE_BODY = (
    b'{"event":"meeting.started","event_ts":1626230691572,"payload":{"account_id":'
    b'"AAAAAABBBB","object":{"id":"1234567890","uuid":"czLF6FFAQKK4aoOEtyBsxQ==",'
    b'"host_id":"x1yCzABCDEfg23HiJKl4mN","topic":"My Meeting","type":2,'
    b'"start_time":"2021-07-13T21:44:51Z","timezone":"America/Los_Angeles","duration":60}}}'
)


Options = v0.Options


def check(inbound: Inbound, options: Options) -> Reply | None:
    key = v0.matching_key(inbound, options, SIGNATURE, TIMESTAMP)
    return _url_validation(inbound.body, key)


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


sign = v0.signer(SIGNATURE, TIMESTAMP)


plugin = VerifierSpec(
    name="zoom",
    parse=v0.parse,
    check=check,
    sign=sign,
    default_dedupe=None,
    sample_body=SAMPLE_BODY,
)
