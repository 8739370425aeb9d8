"""What a verifier sees and returns, and the helpers every verifier needs.

No aiohttp.web here: a verifier is a function of the raw request (bytes, headers,
method, public URL, query), the time, and its config, so it can be tested with the
providers' published vectors. It returns None when the request is genuine, or a
`Reply` when the request is a handshake to answer synchronously, and raises
`VerificationError` with a reason otherwise.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.errors import VerificationError
from gateway.section import Section

DEFAULT_TOLERANCE = 300.0


@dataclass(frozen=True, slots=True)
class Inbound:
    """The request as the provider sent it."""

    method: str
    url: str  # the public URL the provider called (public_url, or rebuilt behind a trusted proxy)
    headers: Mapping[str, str]  # case-insensitive
    query: Mapping[str, str]
    body: bytes
    now: dt.datetime


@dataclass(frozen=True, slots=True)
class Reply:
    """A synchronous answer to a handshake (the request is recorded, never relayed)."""

    body: bytes
    content_type: str = "application/json"
    status: int = 200


class Verifier(Protocol):
    """What a verifier plugin creates: checks requests, and signs samples for ``hookgate send``."""

    async def verify(self, inbound: Inbound) -> Reply | None:
        """None if genuine, a `Reply` for a handshake; raises `VerificationError`."""
        ...

    def sign(self, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
        """The headers the provider would send with `body` (for `hookgate send`).

        Raises NotImplementedError for schemes signed with a key hookgate does not hold.
        """
        ...


def header(inbound: Inbound, name: str) -> str:
    """A required header's value, or `VerificationError` naming it."""
    value = inbound.headers.get(name)
    if not value:
        raise VerificationError(f"missing {name} header")
    return value


def secrets_from(section: Section, key: str = "secret") -> tuple[bytes, ...]:
    """``secret`` or ``secrets: [old, new]`` (any may match: rotation), as bytes."""
    many = section.text_list(f"{key}s", ())
    one = section.text(key, None) if key in section or not many else None
    if any(not s for s in many):
        section.fail("an empty secret would let anyone sign", f"{key}s")
    found = tuple(
        s.encode("utf-8", "surrogateescape") for s in (*([one] if one else []), *many) if s
    )
    if not found:
        section.fail(f"needs {key} or {key}s", key)
    return found


def tolerance_from(section: Section, default: float = DEFAULT_TOLERANCE) -> float:
    """``tolerance`` (a duration such as 5m) in seconds, or `default`."""
    value: float = section.duration("tolerance", default)
    return value


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    """HMAC of `message` with `key`; `algorithm` is a hashlib name (sha1, sha256, sha512)."""
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def _bytes(value: bytes | str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 as lone surrogates: keep them
    # as the bytes they were (they can never match) instead of failing to encode.
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def matches_any(expected: Iterable[bytes | str], given: Iterable[bytes | str]) -> bool:
    """True if any given signature equals any expected one; every comparison is constant-time."""
    found = False
    for want in expected:
        for have in given:
            found |= hmac.compare_digest(_bytes(want), _bytes(have))
    return found


def require(ok: bool, reason: str) -> None:
    """Raise `VerificationError(reason)` unless `ok`."""
    if not ok:
        raise VerificationError(reason)


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_UNIX_TIME = re.compile(r"[0-9]{1,11}(\.[0-9]{1,9})?")


def check_timestamp(timestamp: str | int | float, now: dt.datetime, tolerance: float) -> float:
    """The timestamp (Unix seconds: ASCII digits, an optional fraction), if within
    `tolerance` of `now` in the past or the future."""
    text = str(timestamp) if isinstance(timestamp, int | float) else timestamp
    if not isinstance(text, str) or not _UNIX_TIME.fullmatch(text):
        raise VerificationError("malformed timestamp")
    seconds = float(text)
    age = now.timestamp() - seconds
    if age > tolerance:
        raise VerificationError("timestamp too old")
    if age < -tolerance:
        raise VerificationError("timestamp in the future")
    return seconds


def b64decode(value: str) -> bytes:
    """Strict base64 (padding optional); `VerificationError` if it is not base64."""
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("malformed base64 signature") from None


def b64(data: bytes) -> str:
    """`data` as standard base64 text (what a signer sends)."""
    return base64.b64encode(data).decode()


def hexdecode(value: str, reason: str = "malformed hex signature") -> bytes:
    """Strict hex (pairs of digits, either case, nothing else); `VerificationError` with
    `reason` if it is not. Unlike `bytes.fromhex`, whitespace is refused."""
    if _HEX.fullmatch(value) is None:
        raise VerificationError(reason)
    return bytes.fromhex(value)


def key_value_pairs(value: str, separator: str = ",") -> list[tuple[str, str]]:
    """``t=1,v1=ab,v1=cd`` → [("t", "1"), ("v1", "ab"), ("v1", "cd")]; malformed → error."""
    pairs = []
    for part in value.split(separator):
        key, eq, item = part.strip().partition("=")
        if not eq or not key:
            raise VerificationError("malformed signature header")
        pairs.append((key, item))
    return pairs


# What ``hookgate send`` posts unless the verifier names its own sample or the user a file.
SAMPLE_BODY = b'{"id": "evt_hookgate_test", "type": "hookgate.test", "data": {"hello": "world"}}'


_PINNED_ID: ContextVar[str | None] = ContextVar("hookgate_pinned_sample_id", default=None)


def _uuid() -> str:
    return str(uuid.uuid4())


def sample_id(fresh: Callable[[], str] = _uuid) -> str:
    """The id a provider would give a new delivery, for `sign` and `prepare` to put in
    their id headers or body: the one ``hookgate send --id`` pinned, else `fresh()`, so
    two samples are two events unless the user asks for a duplicate."""
    return _PINNED_ID.get() or fresh()


@contextmanager
def pinned_sample_id(value: str | None) -> Iterator[None]:
    """While inside, `sample_id()` returns `value` (None: fresh ids as usual)."""
    token = _PINNED_ID.set(value)
    try:
        yield
    finally:
        _PINNED_ID.reset(token)


PRIVATE_KEY_ONLY = (
    "the provider signs with a private key that only the provider holds, so no one else "
    "can make a signature its verifier accepts; send a test event from the provider instead"
)


@dataclass(frozen=True, slots=True)
class FunctionVerifier:
    """A verifier made of two plain functions and their options."""

    options: Any
    check: Callable[[Inbound, Any], Reply | None]
    signer: Callable[[Any, bytes, str, dt.datetime], dict[str, str]] | None

    async def verify(self, inbound: Inbound) -> Reply | None:
        return self.check(inbound, self.options)

    def sign(self, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
        if self.signer is None:
            raise NotImplementedError(PRIVATE_KEY_ONLY)
        return self.signer(self.options, body, url, now)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The inputs of a request that are the sender's secret itself (not a signature over
    one body): they are stored redacted, never as received (see gateway/ingress/redact.py)."""

    headers: tuple[str, ...] = ()
    query: tuple[str, ...] = ()


NO_CREDENTIALS = Credentials()


def _no_credentials(options: Any) -> Credentials:
    return NO_CREDENTIALS


@dataclass(frozen=True, slots=True)
class VerifierSpec:
    """A verifier plugin declared by its functions:

    - `parse(section)` validates the options (errors go to the section, with paths);
    - `check(inbound, options)` returns None or a handshake `Reply`, or raises
      `VerificationError`;
    - `sign(options, body, url, now)` returns the headers the provider would send;
    - `prepare(options, body, now)`, for schemes that sign inside the body, returns the
      body as the provider would send it (for `hookgate send`);
    - `credentials(options)` names the headers and query parameters that carry a
      secret as is (a key, a password, a token compared verbatim): they are stored
      redacted. Signature headers are not credentials: they stay, to re-verify.
    """

    name: str
    parse: Callable[[Section], Any]
    check: Callable[[Inbound, Any], Reply | None]
    sign: Callable[[Any, bytes, str, dt.datetime], dict[str, str]] | None = None
    default_dedupe: str | None = None
    sample_body: bytes = SAMPLE_BODY
    sample_content_type: str = "application/json"
    prepare: Callable[[Any, bytes, dt.datetime], bytes] | None = None
    credentials: Callable[[Any], Credentials] = _no_credentials
    kind: Literal["verifier"] = "verifier"

    def create(self, options: Any, resources: Any) -> FunctionVerifier:
        """The `Verifier` that runs `check` and `sign` with `options`."""
        return FunctionVerifier(options, self.check, self.sign)
