"""The ``shared-token`` verifier: the provider sends a fixed token in a header.

    sources:
      partner:
        verify:
          type: shared-token
          token: ${PARTNER_TOKEN}       # or tokens: [old, new] while rotating
          header: X-Partner-Token       # optional; default X-Shared-Token

The token is compared in constant time, and declared as a credential, so hookgate stores
the header redacted. A shared token proves who sent a request, not what it sent: prefer
a signature (``hmac``, ``standard-webhooks``) when the provider offers one.
``hookgate send shared-token URL -o token=...`` sends the header.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gateway.plugin import (
    Credentials,
    Inbound,
    Reply,
    Section,
    VerifierSpec,
    header,
    matches_any,
    require,
    secrets_from,
    show,
)

DEFAULT_HEADER = "X-Shared-Token"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 field name


@dataclass(frozen=True, slots=True)
class Options:
    tokens: tuple[bytes, ...]
    header: str = DEFAULT_HEADER


def parse(section: Section) -> Options:
    """``token`` or ``tokens`` (any may match), and the ``header`` that carries it."""
    name: str = section.get("header", _header_name, DEFAULT_HEADER)
    return Options(secrets_from(section, "token"), name)


def check(inbound: Inbound, options: Options) -> Reply | None:
    """None if the header holds one of the tokens; raises `VerificationError` otherwise."""
    given = header(inbound, options.header)
    require(matches_any(options.tokens, [given]), f"{options.header} does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    """The header the provider sends, with the first token (for ``hookgate send``)."""
    return {options.header: options.tokens[0].decode("utf-8", "surrogateescape")}


def _header_name(value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ValueError(f"expected a header name like {DEFAULT_HEADER}, got {show(value)}")
    return value


def credentials(options: Options) -> Credentials:
    """The token travels as it is: hookgate stores that header redacted."""
    return Credentials(headers=(options.header,))


plugin = VerifierSpec(
    name="shared-token", parse=parse, check=check, sign=sign, credentials=credentials
)
