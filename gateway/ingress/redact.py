"""Credentials are stored redacted: the request stays useful, the secret does not stay.

What is stored of a request (in `hookgate.events` and `hookgate.rejected`) keeps every
header and the query string, except the values of credentials:

- the source's ``redact_headers`` (default ``Authorization``, ``Cookie``,
  ``Proxy-Authorization``; setting the list replaces the default);
- whatever the source's verifier declares as its credential inputs (the api-key
  header or query parameter, basic auth's ``Authorization``, GitLab's token, Meta's
  ``hub.verify_token``): always, whatever the list says.

A redacted value keeps its shape and loses its secret: ``Bearer [redacted]`` (a known
auth scheme is kept), ``session=[redacted]; theme=[redacted]`` (cookie names are
kept), ``[redacted]`` otherwise, and ``key=[redacted]`` in the query. There is no
fingerprint: an unkeyed hash of a short secret can be guessed offline. Signature
headers are not credentials (they prove one body, not the sender's key): they stay,
so a stored request can be verified again. A proxy forward leaves out (`strip`) the
verifier's credential inputs: hookgate's own, checked already.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import unquote_plus

from gateway.storage.store import EventRecord, RejectedRecord

REDACTED = "[redacted]"
DEFAULT_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
_SCHEMES = frozenset(
    {"basic", "bearer", "digest", "token", "negotiate", "ntlm", "apikey", "api-key", "key"}
)

R = TypeVar("R", EventRecord, RejectedRecord)


@dataclass(frozen=True, slots=True)
class Redaction:
    """Which header names (lower-case) and query parameters hold credentials."""

    headers: frozenset[str] = frozenset()
    query: frozenset[str] = frozenset()

    @classmethod
    def of(cls, headers: Iterable[str], query: Iterable[str] = ()) -> Redaction:
        return cls(frozenset(name.lower() for name in headers), frozenset(query))

    def apply(self, record: R) -> R:
        """The record as it may be stored."""
        if not self.headers and not self.query:
            return record
        headers = self.redact_headers(record.headers)
        query = self.redact_query(record.query)
        if headers is record.headers and query is record.query:
            return record  # most requests carry no credential: no copy
        return replace(record, headers=headers, query=query)

    def strip(self, record: R) -> R:
        """The record without the credentials at all, names and values: what is forwarded
        to a receiver that has no use for them (hookgate's own, checked already)."""
        if not self.headers and not self.query:
            return record
        headers = [
            (name, value) for name, value in record.headers if name.lower() not in self.headers
        ]
        kept = (part for part in record.query.split("&") if not self._named(part))
        query = "&".join(kept) if self.query and record.query else record.query
        return replace(record, headers=headers, query=query)

    def _named(self, part: str) -> bool:
        return unquote_plus(part.partition("=")[0]) in self.query

    def redact_headers(self, headers: Sequence[tuple[str, str]]) -> Sequence[tuple[str, str]]:
        """The headers with credentials redacted (the same object when there are none)."""
        names = self.headers
        if not any(name.lower() in names for name, _ in headers):
            return headers
        return [
            (name, redact_value(name, value) if name.lower() in self.headers else value)
            for name, value in headers
        ]

    def redact_query(self, query: str) -> str:
        if not self.query or not query:
            return query
        return "&".join(self._parameter(part) for part in query.split("&"))

    def _parameter(self, part: str) -> str:
        name, eq, _ = part.partition("=")
        return f"{name}={REDACTED}" if eq and self._named(part) else part


def redact_value(name: str, value: str) -> str:
    """A credential header's value without its secret."""
    if name.lower() == "cookie":
        names = (item.partition("=")[0].strip() for item in value.split(";"))
        return "; ".join(f"{cookie}={REDACTED}" for cookie in names if cookie) or REDACTED
    scheme, space, _ = value.strip().partition(" ")
    if space and scheme.lower() in _SCHEMES:
        return f"{scheme} {REDACTED}"
    return REDACTED
