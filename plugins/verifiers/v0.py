"""The ``v0`` scheme Slack and Zoom share: a timestamp header, and a signature header of
``v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">``, within `tolerance` either way."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.plugin import (
    Inbound,
    Section,
    VerificationError,
    check_timestamp,
    header,
    hmac_digest,
    matches_any,
    require,
    secrets_from,
    tolerance_from,
)

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    tolerance: float


def parse(section: Section) -> Options:
    return Options(secrets_from(section), tolerance_from(section))


def signature(key: bytes, stamp: str, body: bytes) -> str:
    return "v0=" + hmac_digest(key, b"v0:" + stamp.encode() + b":" + body).hex()


def matching_key(inbound: Inbound, options: Options, signed: str, stamped: str) -> bytes:
    """The configured secret that made the signature (a handshake may need to answer
    with it); `VerificationError` if none did. Every secret is tried, in constant time."""
    stamp = header(inbound, stamped)
    given = header(inbound, signed)
    require(_UNIX_SECONDS.fullmatch(stamp) is not None, f"{stamped} is not Unix seconds")
    require(_SIGNATURE.fullmatch(given) is not None, f"{signed} is not v0=<hex>")
    check_timestamp(stamp, inbound.now, options.tolerance)
    found = None
    for key in options.secrets:
        if matches_any([signature(key, stamp, inbound.body)], [given.lower()]):
            found = key
    if found is None:
        raise VerificationError("signature does not match")
    return found


def signer(
    signed: str, stamped: str
) -> Callable[[Options, bytes, str, dt.datetime], dict[str, str]]:
    def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
        stamp = str(int(now.timestamp()))
        return {stamped: stamp, signed: signature(options.secrets[0], stamp, body)}

    return sign
