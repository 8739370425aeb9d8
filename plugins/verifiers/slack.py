"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">``.

``X-Slack-Request-Timestamp`` (Unix seconds) must be within `tolerance` (default 5 minutes).
A signed ``url_verification`` event is answered with its challenge.
https://docs.slack.dev/authentication/verifying-requests-from-slack
"""

from __future__ import annotations

import orjson

from gateway.plugin import (
    Inbound,
    Reply,
    VerifierSpec,
    require,
)
from plugins.verifiers import v0

SIGNATURE = "X-Slack-Signature"
TIMESTAMP = "X-Slack-Request-Timestamp"

SAMPLE_BODY = (
    b'{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456",'
    b'"event":{"type":"app_mention","user":"U123ABC456","text":"<@U0LAN0Z89> hello",'
    b'"ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522.000016"},'
    b'"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522}'
)


Options = v0.Options


def check(inbound: Inbound, options: Options) -> Reply | None:
    v0.matching_key(inbound, options, SIGNATURE, TIMESTAMP)
    return _challenge(inbound.body)


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


sign = v0.signer(SIGNATURE, TIMESTAMP)


plugin = VerifierSpec(
    name="slack",
    parse=v0.parse,
    check=check,
    sign=sign,
    default_dedupe="json:event_id",
    sample_body=SAMPLE_BODY,
)
