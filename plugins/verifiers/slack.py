"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">``.

``X-Slack-Request-Timestamp`` (Unix seconds) must be within `tolerance` (default 5 minutes).
A signed ``url_verification`` event is answered with its challenge.
https://docs.slack.dev/authentication/verifying-requests-from-slack
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import orjson

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

SIGNATURE = "X-Slack-Signature"
TIMESTAMP = "X-Slack-Request-Timestamp"
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-fA-F]{64}")

SAMPLE_BODY = (
    b'{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456",'
    b'"event":{"type":"app_mention","user":"U123ABC456","text":"<@U0LAN0Z89> hello",'
    b'"ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522.000016"},'
    b'"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522}'
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
    expected = [_signature(key, stamp, inbound.body) for key in options.secrets]
    require(matches_any(expected, [given.lower()]), "signature does not match")
    return _challenge(inbound.body)


def _signature(key: bytes, stamp: str, body: bytes) -> str:
    return "v0=" + hmac_digest(key, b"v0:" + stamp.encode() + b":" + body).hex()


def _challenge(body: bytes) -> Reply | None:
    """The answer to a (signed) url_verification event, None for any other body.

    Slash commands and interactions are form-encoded, so a body that is not JSON is an
    ordinary delivery, not an error.
    """
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("type") != "url_verification":
        return None
    challenge = event.get("challenge")
    require(isinstance(challenge, str) and bool(challenge), "url_verification has no challenge")
    return Reply(orjson.dumps({"challenge": challenge}))


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    return {TIMESTAMP: stamp, SIGNATURE: _signature(options.secrets[0], stamp, body)}


plugin = VerifierSpec(
    name="slack",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="json:event_id",
    sample_body=SAMPLE_BODY,
)
