"""A shared key in a header (``X-API-Key: <key>`` by default, or ``Authorization: Bearer
<key>`` with a `prefix`) or in a query parameter; compared in constant time.

`hookgate send` signs the header form only: for the query form, put the key in the URL.
https://datatracker.ietf.org/doc/html/rfc6750#section-2.1
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from gateway.plugin import (
    Credentials,
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    header,
    matches_any,
    require,
    secrets_from,
)

DEFAULT_HEADER = "X-API-Key"


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    name: str  # of the header, or of the query parameter
    in_query: bool
    prefix: str

    @property
    def where(self) -> str:
        return f"{self.name} query parameter" if self.in_query else f"{self.name} header"


def parse(section: Section) -> Options:
    query: str | None = section.text("query", None)
    name: str = section.text("header", DEFAULT_HEADER)
    if query is not None and "header" in section:
        section.fail("use header or query, not both", "query")
    secrets = secrets_from(section)
    prefix: str = section.text("prefix", "")
    return Options(secrets, query or name, query is not None, prefix)


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = _given(inbound, options)
    require(matches_any(options.secrets, [given]), "API key does not match")
    return None


def _given(inbound: Inbound, options: Options) -> bytes:
    """The key the request carries, as the bytes received."""
    if options.in_query:
        value = inbound.query.get(options.name) or ""
        require(bool(value), f"missing {options.where}")
    else:
        value = header(inbound, options.name)
    prefix = options.prefix
    require(value[: len(prefix)].lower() == prefix.lower(), f"{options.where} lacks {prefix!r}")
    try:
        given = value[len(prefix) :].strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise VerificationError(f"malformed {options.where}") from None
    require(bool(given), f"empty {options.where}")
    return given


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    if not options.in_query:
        return {options.name: options.prefix + options.secrets[0].decode()}
    if options.name not in parse_qs(urlsplit(url).query):
        raise NotImplementedError(f"the key goes in the URL: add ?{options.name}=<key> to it")
    return {}


def credentials(options: Options) -> Credentials:
    """The key itself, where it travels: stored redacted."""
    if options.in_query:
        return Credentials(query=(options.name,))
    return Credentials(headers=(options.name,))


plugin = VerifierSpec(
    name="api-key",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe=None,
    credentials=credentials,
)
