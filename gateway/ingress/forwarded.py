"""Headers across the pass-through hop: hop-by-hop ones dropped, forwarding ones appended.

To the upstream: the client's headers in order, every value kept, minus those that
describe our hop (RFC 9110 §7.6.1: Connection, the headers it names, Keep-Alive, TE,
Trailer, Transfer-Encoding, Upgrade, Proxy-*), with ``X-Forwarded-For/-Proto/-Host``
and ``Forwarded`` (RFC 7239) describing the hop we received. A trusted proxy's own
forwarding headers are extended; anyone else's are replaced, so a client cannot forge
the address the app sees. Back to the client: the upstream's headers minus hop-by-hop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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


def _kept(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: Iterable[str]
) -> CIMultiDict[str]:
    dropped = HOP_BY_HOP | connection_tokens(headers) | set(drop)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped)


def to_upstream(
    request: web.BaseRequest,
    trusted: Sequence[IPNetwork],
    host: str | None,
    websocket: bool = False,
) -> CIMultiDict[str]:
    """The request's headers for the upstream (Host kept unless `host` replaces it)."""
    drop = FORWARDING | {"expect"} | (WEBSOCKET_HANDSHAKE if websocket else set())
    headers = _kept(request.headers, drop)
    if host is not None:
        headers["Host"] = host
    for name, value in forwarding(request, trusted):
        headers.add(name, value)
    return headers


def to_client(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The upstream's answer headers for the client."""
    return _kept(headers, ())


def forwarding(request: web.BaseRequest, trusted: Sequence[IPNetwork]) -> list[tuple[str, str]]:
    """X-Forwarded-For/-Proto/-Host and Forwarded, extending a trusted proxy's."""
    peer = request.remote or "unknown"
    believed = bool(trusted) and is_in(request.remote, trusted)
    earlier = request.headers if believed else CIMultiDict[str]()
    chain = [*earlier.getall("X-Forwarded-For", ()), peer]
    proto = earlier.get("X-Forwarded-Proto", request.scheme)
    host = earlier.get("X-Forwarded-Host", request.host)
    element = ";".join(
        f"{key}={_quoted(value)}"
        for key, value in (("for", _node(peer)), ("proto", request.scheme), ("host", request.host))
    )
    return [
        ("X-Forwarded-For", ", ".join(chain)),
        ("X-Forwarded-Proto", proto),
        ("X-Forwarded-Host", host),
        ("Forwarded", ", ".join([*earlier.getall("Forwarded", ()), element])),
    ]


def _node(address: str) -> str:
    """RFC 7239 §6: an IPv6 address goes in brackets."""
    return f"[{address}]" if ":" in address else address


def _quoted(value: str) -> str:
    if _TOKEN.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
