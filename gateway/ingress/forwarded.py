"""Headers across the pass-through hop: hop-by-hop ones dropped, forwarding ones appended.

To the upstream: the client's headers in order, every value kept, minus those that
describe our hop (RFC 9110 §7.6.1: Connection, the headers it names, Keep-Alive, TE,
Trailer, Transfer-Encoding, Upgrade, Proxy-*), with ``X-Forwarded-For/-Proto/-Host``
and ``Forwarded`` (RFC 7239) describing the hop we received. A trusted proxy's own
forwarding headers are extended; anyone else's are replaced, so a client cannot forge
the address the app sees. Back to the client: the upstream's headers minus hop-by-hop.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.ingress.network import is_in
from gateway.sources import IPNetwork

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
     "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)  # fmt: skip
FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"})
# aiohttp's client makes its own handshake; the client's would not match it.
WEBSOCKET_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
     "sec-websocket-protocol", "sec-websocket-accept"}
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    """The header names the Connection header lists (they are hop-by-hop too)."""
    return {
        token.strip().lower()
        for value in headers.getall("Connection", ())
        for token in value.split(",")
        if token.strip()
    }


_TO_UPSTREAM = HOP_BY_HOP | FORWARDING | {"expect"}
_TO_UPSTREAM_WS = _TO_UPSTREAM | WEBSOCKET_HANDSHAKE


def _kept(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: frozenset[str]
) -> list[tuple[str, str]]:
    """The headers in order, minus `drop` and those the Connection header names."""
    if "Connection" in headers:
        drop = drop | connection_tokens(headers)
    return [(k, v) for k, v in headers.items() if k.lower() not in drop]


def to_upstream(
    request: web.BaseRequest,
    trusted: Sequence[IPNetwork],
    host: str | None,
    websocket: bool = False,
) -> CIMultiDict[str]:
    """The request's headers for the upstream (Host kept unless `host` replaces it)."""
    return CIMultiDict(upstream_pairs(request, trusted, host, websocket))


def upstream_pairs(
    request: web.BaseRequest,
    trusted: Sequence[IPNetwork],
    host: str | None,
    websocket: bool = False,
) -> list[tuple[str, str]]:
    """`to_upstream` as a list of pairs, in order (what the pass-through's client takes)."""
    pairs = _kept(request.headers, _TO_UPSTREAM_WS if websocket else _TO_UPSTREAM)
    if host is not None:
        kept = [(k, v) for k, v in pairs if k.lower() != "host"]
        at = next((i for i, (k, _) in enumerate(pairs) if k.lower() == "host"), len(kept))
        pairs = [*kept[:at], ("Host", host), *kept[at:]]
    pairs.extend(forwarding(request, trusted))
    return pairs


def to_client(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The upstream's answer headers for the client."""
    return CIMultiDict(_kept(headers, HOP_BY_HOP))


def forwarding(request: web.BaseRequest, trusted: Sequence[IPNetwork]) -> list[tuple[str, str]]:
    """X-Forwarded-For/-Proto/-Host and Forwarded, extending a trusted proxy's."""
    peer = request.remote or "unknown"
    scheme, host = request.scheme, request.host
    if not trusted or not is_in(peer, trusted):
        return list(_replaced(peer, scheme, host))
    earlier = request.headers
    return [
        ("X-Forwarded-For", ", ".join([*earlier.getall("X-Forwarded-For", ()), peer])),
        ("X-Forwarded-Proto", earlier.get("X-Forwarded-Proto", scheme)),
        ("X-Forwarded-Host", earlier.get("X-Forwarded-Host", host)),
        ("Forwarded", ", ".join([*earlier.getall("Forwarded", ()), _element(peer, scheme, host)])),
    ]


# Every request on a client's connection has the same three inputs: built once, not per request.
@functools.lru_cache(maxsize=1024)
def _replaced(peer: str, scheme: str, host: str) -> tuple[tuple[str, str], ...]:
    return (
        ("X-Forwarded-For", peer),
        ("X-Forwarded-Proto", scheme),
        ("X-Forwarded-Host", host),
        ("Forwarded", _element(peer, scheme, host)),
    )


def _element(peer: str, scheme: str, host: str) -> str:
    """One RFC 7239 forwarded-element for this hop."""
    return f"for={_quoted(_node(peer))};proto={scheme};host={_quoted(host)}"


def _node(address: str) -> str:
    """RFC 7239 §6: an IPv6 address goes in brackets."""
    return f"[{address}]" if ":" in address else address


def _quoted(value: str) -> str:
    if _TOKEN.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
