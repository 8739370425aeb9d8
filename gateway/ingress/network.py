"""Who is calling and at which URL, believing X-Forwarded-* only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from gateway.sources import IPNetwork


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def is_in(text: str | None, networks: Sequence[IPNetwork]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in networks)


def client_address(request: web.BaseRequest, trusted: Sequence[IPNetwork]) -> str | None:
    """The caller: the socket peer, or, walking X-Forwarded-For from the right past
    trusted proxies, the first address that is not one (a client cannot forge its way
    past the last proxy, which appends what it saw)."""
    peer = request.remote
    if not trusted or not is_in(peer, trusted):
        return peer
    hops = [
        h.strip()
        for value in request.headers.getall("X-Forwarded-For", ())
        for h in value.split(",")
    ]
    for hop in reversed(hops):
        if not is_in(hop, trusted):
            return hop if _address(hop) else peer
    return hops[0] if hops else peer


def public_url(request: web.BaseRequest, trusted: Sequence[IPNetwork]) -> str:
    """The URL the provider called: scheme and host from X-Forwarded-Proto/-Host when the
    peer is a trusted proxy, else what this server saw."""
    scheme, host = request.scheme, request.host
    if trusted and is_in(request.remote, trusted):
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
    return f"{scheme}://{host}{request.rel_url.raw_path_qs}"
