"""HTTP Basic authentication: ``Authorization: Basic <base64 of username:password>``.

Several credentials may be configured (rotation); the username and the password of every
one are compared in constant time, as UTF-8 bytes.
https://datatracker.ietf.org/doc/html/rfc7617
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any

from gateway.plugin import (
    Credentials,
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    b64,
    header,
    require,
    show,
)

Credential = tuple[bytes, bytes]  # username, password


@dataclass(frozen=True, slots=True)
class Options:
    credentials: tuple[Credential, ...]


def parse(section: Section) -> Options:
    found = []
    if "credentials" not in section or "username" in section or "password" in section:
        found.append(_credential(section))
    for item in _items(section):
        found.append(_credential(item))
        item.done()
    return Options(tuple(credential for credential in found if credential is not None))


def _items(section: Section) -> list[Section]:
    """``credentials: [{username, password}, ...]``, one section each."""
    raw: list[Any] = section.get("credentials", _non_empty_list, [])
    path = section.key_path("credentials")
    return [Section(item, f"{path}[{index}]", section.problems) for index, item in enumerate(raw)]


def _non_empty_list(value: object) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a list of {{username, password}}, got {show(value)}")
    return value


def _credential(section: Section) -> Credential | None:
    username: str | None = section.text("username", None)
    password: str | None = section.text("password", None)
    if username is None:
        section.fail("is required", "username")
    elif ":" in username:
        section.fail("may not contain a colon (RFC 7617)", "username")
    if not password:
        section.fail("is required", "password")
    if username is None or ":" in username or not password:
        return None
    return username.encode(), password.encode()


def check(inbound: Inbound, options: Options) -> Reply | None:
    scheme, _, token = header(inbound, "Authorization").strip().partition(" ")
    require(scheme.lower() == "basic", "Authorization is not Basic")
    username, colon, password = _decode(token.strip()).partition(b":")
    require(bool(colon), "Basic credentials have no colon")
    found = False
    for known_username, known_password in options.credentials:
        same_username = hmac.compare_digest(username, known_username)
        found |= same_username & hmac.compare_digest(password, known_password)
    require(found, "credentials do not match")
    return None


def _decode(token: str) -> bytes:
    try:
        return base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):  # ValueError: not ASCII
        raise VerificationError("malformed Basic credentials") from None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    username, password = options.credentials[0]
    return {"Authorization": "Basic " + b64(username + b":" + password)}


plugin = VerifierSpec(
    name="basic",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe=None,
    credentials=lambda options: Credentials(headers=("Authorization",)),
)
