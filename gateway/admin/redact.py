"""Credentials inside stored requests, shown redacted wherever the admin surface shows them.

Always: Authorization, Proxy-Authorization, Cookie (the scheme of an Authorization value
is kept: "Basic [redacted]"). For an ``api-key`` source, also its key's header or query
parameter. Pure functions over what was stored; the stored bytes are never changed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
ALWAYS = frozenset({"authorization", "proxy-authorization", "cookie"})
_SCHEMED = frozenset({"authorization", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class Secrets:
    """Where one source's requests carry credentials, besides the usual headers."""

    headers: frozenset[str] = frozenset()  # lower-case names
    query: frozenset[str] = frozenset()


def secrets_of(verify_type: str | None, options: object) -> Secrets:
    """An api-key source's key is in its configured header or query parameter."""
    if verify_type != "api-key" or options is None:
        return Secrets()
    name = str(getattr(options, "name", "") or "")
    if getattr(options, "in_query", False):
        return Secrets(query=frozenset({name}))
    return Secrets(headers=frozenset({name.lower()}))


def redact_headers(
    headers: Iterable[tuple[str, str]], secrets: Secrets = Secrets()
) -> tuple[tuple[str, str], ...]:
    return tuple((name, _redact_value(name.lower(), value, secrets)) for name, value in headers)


def _redact_value(lower: str, value: str, secrets: Secrets) -> str:
    if lower not in ALWAYS and lower not in secrets.headers:
        return value
    if REDACTED in value:
        return value  # stored redacted already (at ingest), in its own shape
    scheme, space, rest = value.partition(" ")
    if lower in _SCHEMED and space and rest and scheme.isalpha():
        return f"{scheme} {REDACTED}"
    return REDACTED


def redact_query(query: str, secrets: Secrets = Secrets()) -> str:
    """The raw query string with the values of secret parameters replaced (order kept)."""
    if not secrets.query or not query:
        return query
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(
            f"{name}={REDACTED}" if equals and unquote_plus(name) in secrets.query else part
        )
    return "&".join(parts)
