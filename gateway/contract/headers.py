"""Which headers belong to hookgate or to the HTTP client, and the helpers middleware
uses to change a message's headers without touching them.

The relay builds the identity headers (``X-Hookgate-*``, ``Idempotency-Key``) for every
attempt; no config and no middleware may change them, and none is ever forwarded from a
provider's request. Hop-by-hop headers describe the HTTP client's own connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.contract.message import Headers
from gateway.section import show

USER_AGENT = "hookgate/0.1"
# Never copied from the provider's request, nor set by config: they describe the HTTP
# client's own hop, not ours.
HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect",
     "upgrade", "te", "trailer", "proxy-authorization", "proxy-connection"}
)  # fmt: skip

# hookgate's identity headers (built by the relay for every attempt): never forwarded
# from a provider, never changed by config.
IDENTITY_PREFIX = "x-hookgate-"
IDENTITY_HEADERS = (
    "x-hookgate-event-id", "x-hookgate-delivery-id", "x-hookgate-attempt",
    "x-hookgate-source", "x-hookgate-event-type", "idempotency-key",
)  # fmt: skip

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 field name
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def is_identity_header(name: str) -> bool:
    """Whether `name` is one of hookgate's own headers, which no config may change."""
    lower = name.lower()
    return lower.startswith(IDENTITY_PREFIX) or lower == "idempotency-key"


def settable_header_problem(name: str) -> str | None:
    """Why a config may not set header `name`, or None when it may: it must be a valid
    name, and neither an identity header nor one the HTTP client manages."""
    if not _TOKEN.fullmatch(name):
        return f"{show(name)} is not a valid header name"
    if is_identity_header(name):
        return "is one of hookgate's identity headers and cannot be changed"
    if name.lower() in HOP_BY_HOP:
        return "is managed by the HTTP client and cannot be set"
    return None


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a header value, or None when it can."""
    if _BAD_VALUE.search(value):
        return "a header value cannot hold line breaks or control characters"
    return None


def replace_headers(headers: Headers, new: Iterable[tuple[str, str]]) -> Headers:
    """`headers` with every header named in `new` replaced by the values in `new`."""
    added = tuple(new)
    names = {name.lower() for name, _ in added}
    return tuple(h for h in headers if h[0].lower() not in names) + added
