"""Linear: ``Linear-Signature: <hex HMAC-SHA256 of the body>``.

Once the signature holds, the body's ``webhookTimestamp`` (Unix milliseconds) must be
within `tolerance` (default 60 seconds) of now.
https://linear.app/developers/webhooks#securing-webhooks
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import orjson

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    check_timestamp,
    header,
    hmac_digest,
    matches_any,
    require,
    sample_id,
    secrets_from,
    tolerance_from,
)

SIGNATURE = "Linear-Signature"
DEFAULT_TOLERANCE = 60.0
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

# No webhookTimestamp: `hookgate send` cannot refresh one in a fixed sample body.
SAMPLE_BODY = (
    b'{"action":"create","type":"Issue","createdAt":"2024-05-01T12:00:00.000Z",'
    b'"data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9","title":"Hello from hookgate",'
    b'"teamId":"72b2a2dc-6f4f-4423-9d34-24b5bd10634a"},'
    b'"url":"https://linear.app/issue/LIN-1778/hello-from-hookgate",'
    b'"organizationId":"b8d7ab1a-6b0a-4dc0-8a56-0a2ed6f2c6bb",'
    b'"webhookId":"000042e3-d123-4980-b49f-8e140eef9329"}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section, DEFAULT_TOLERANCE))


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = header(inbound, SIGNATURE)
    require(_HEX_SHA256.fullmatch(given) is not None, f"{SIGNATURE} is not a hex HMAC-SHA256")
    expected = [hmac_digest(key, inbound.body).hex() for key in options.secrets]
    require(matches_any(expected, [given.lower()]), "signature does not match")
    # The timestamp lives in the body, which is only worth parsing once it is authentic.
    _check_webhook_timestamp(inbound.body, inbound.now, options.tolerance)
    return None


def _check_webhook_timestamp(body: bytes, now: dt.datetime, tolerance: float) -> None:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise VerificationError("body is not JSON") from None
    require(isinstance(event, dict), "body is not a JSON object")
    stamp = event.get("webhookTimestamp")
    if stamp is None:
        # Linear's SDK (LinearWebhookClient.verify) skips the check when the field is absent;
        # only the secret's holder can sign such a body, and Linear's own payloads carry it.
        return
    in_range = isinstance(stamp, int | float) and not isinstance(stamp, bool) and 0 <= stamp < 1e15
    require(in_range, "webhookTimestamp is not Unix milliseconds")
    check_timestamp(stamp / 1000, now, tolerance)


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {
        SIGNATURE: hmac_digest(options.secrets[0], body).hex(),
        "Linear-Delivery": sample_id(),
        "Linear-Event": "Issue",
    }


plugin = VerifierSpec(
    name="linear",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="header:Linear-Delivery",
    sample_body=SAMPLE_BODY,
)
