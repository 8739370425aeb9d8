"""Twitch EventSub: ``Twitch-Eventsub-Message-Signature: sha256=<hex HMAC-SHA256>`` of
message id + timestamp + body; the RFC 3339 timestamp (nanoseconds) must be within
`tolerance` (default 10 minutes, as Twitch asks). A ``webhook_callback_verification``
is answered with its challenge, as plain text.
https://dev.twitch.tv/docs/eventsub/handling-webhook-events/
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

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

PREFIX = "sha256="
ID = "Twitch-Eventsub-Message-Id"
TIMESTAMP = "Twitch-Eventsub-Message-Timestamp"
SIGNATURE = "Twitch-Eventsub-Message-Signature"
TYPE = "Twitch-Eventsub-Message-Type"
_HEX_SHA256 = re.compile(r"sha256=[0-9a-fA-F]{64}")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
SAMPLE_BODY = (
    b'{"subscription": {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "status": "enabled",'
    b' "type": "channel.follow", "version": "2", "cost": 0,'
    b' "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"},'
    b' "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},'
    b' "created_at": "2019-11-16T10:11:12.634234626Z"},'
    b' "event": {"user_id": "1234", "user_login": "cool_user", "user_name": "Cool_User",'
    b' "broadcaster_user_id": "1337", "broadcaster_user_login": "cooler_user",'
    b' "broadcaster_user_name": "Cooler_User", "followed_at": "2020-07-15T18:16:11.17106713Z"}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section, default=600.0))


def check(inbound: Inbound, options: Options) -> Reply | None:
    msg_id = _raw(header(inbound, ID), ID)
    stamp = header(inbound, TIMESTAMP)
    given = header(inbound, SIGNATURE)
    require(_HEX_SHA256.fullmatch(given) is not None, f"{SIGNATURE} is not sha256=<hex>")
    check_timestamp(unix_seconds(stamp), inbound.now, options.tolerance)
    signed = msg_id + stamp.encode() + inbound.body  # the timestamp is ASCII once parsed
    expected = [PREFIX + hmac_digest(key, signed).hex() for key in options.secrets]
    require(matches_any(expected, [given.lower()]), "signature does not match")
    if inbound.headers.get(TYPE) == "webhook_callback_verification":
        return Reply(_challenge(inbound.body), "text/plain")
    return None  # notifications and revocations alike are events to keep


def unix_seconds(stamp: str) -> float:
    """An RFC 3339 timestamp (Twitch sends nanoseconds, more than datetime holds) as Unix time."""
    match = _RFC3339.fullmatch(stamp)
    if match is None:
        raise VerificationError(f"{TIMESTAMP} is not an RFC 3339 timestamp")
    *fields, fraction, sign, off_h, off_m = match.groups()
    year, month, day, hour, minute, second = map(int, fields)
    try:
        offset = dt.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        zone = dt.timezone(-offset if sign == "-" else offset)
        when = dt.datetime(year, month, day, hour, minute, second, tzinfo=zone)
        seconds = when.timestamp()
    except (ValueError, OverflowError):
        raise VerificationError(f"{TIMESTAMP} is not a valid date") from None
    return seconds + int((fraction or "0").ljust(9, "0")) / 1e9


def _challenge(body: bytes) -> bytes:
    # Parsed only after the signature held: the challenge is signed with the rest.
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise VerificationError("verification body is not JSON") from None
    challenge = payload.get("challenge") if isinstance(payload, dict) else None
    require(isinstance(challenge, str) and bool(challenge), "verification has no challenge")
    return str(challenge).encode()  # orjson refuses lone surrogates: always valid UTF-8


def _raw(value: str, name: str) -> bytes:
    """A header value as the bytes that were sent (the server decoded them with surrogateescape)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise VerificationError(f"malformed {name}") from None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    msg_id = sample_id()
    stamp = f"{now.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S.%f}000Z"
    digest = hmac_digest(options.secrets[0], f"{msg_id}{stamp}".encode() + body).hex()
    return {
        ID: msg_id,
        "Twitch-Eventsub-Message-Retry": "0",
        TYPE: "notification",
        SIGNATURE: PREFIX + digest,
        TIMESTAMP: stamp,
        "Twitch-Eventsub-Subscription-Type": "channel.follow",
        "Twitch-Eventsub-Subscription-Version": "2",
    }


plugin = VerifierSpec(
    name="twitch",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe=f"header:{ID}",
    sample_body=SAMPLE_BODY,
)
