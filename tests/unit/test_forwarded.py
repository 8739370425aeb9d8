"""Headers across the pass-through hop: hop-by-hop dropped, forwarding headers appended."""

from __future__ import annotations

import ipaddress
from unittest import mock

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.ingress.forwarded import forwarding, to_client, to_upstream

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


def request(peer: str, headers: list[tuple[str, str]]):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 4711) if name == "peername" else default
    )
    return make_mocked_request("GET", "/app?q=1", headers=CIMultiDict(headers), transport=transport)


def test_an_untrusted_peers_forwarding_headers_are_replaced():
    got = to_upstream(
        request("198.51.100.7", [("Host", "hooks.example.com"), ("X-Forwarded-For", "1.2.3.4"),
                                 ("Forwarded", "for=1.2.3.4"), ("X-Forwarded-Host", "evil")]),
        TRUSTED, None,
    )  # fmt: skip
    assert got.getall("X-Forwarded-For") == ["198.51.100.7"]
    assert got["X-Forwarded-Host"] == "hooks.example.com"
    assert got["X-Forwarded-Proto"] == "http"
    assert got.getall("Forwarded") == ["for=198.51.100.7;proto=http;host=hooks.example.com"]
    assert got["Host"] == "hooks.example.com"


def test_a_trusted_proxys_chain_is_extended():
    headers = [("Host", "app"), ("X-Forwarded-For", "203.0.113.1, 10.1.1.1"),
               ("X-Forwarded-Proto", "https"), ("Forwarded", 'for="[2001:db8::1]";proto=https')]  # fmt: skip
    got = dict(forwarding(request("10.0.0.2", headers), TRUSTED))
    assert got["X-Forwarded-For"] == "203.0.113.1, 10.1.1.1, 10.0.0.2"
    assert got["X-Forwarded-Proto"] == "https"
    assert got["Forwarded"] == 'for="[2001:db8::1]";proto=https, for=10.0.0.2;proto=http;host=app'


def test_an_ipv6_peer_is_bracketed_and_quoted():
    got = dict(forwarding(request("2001:db8::7", [("Host", "h:8080")]), ()))
    assert got["Forwarded"] == 'for="[2001:db8::7]";proto=http;host="h:8080"'


def test_hop_by_hop_headers_and_those_connection_names_are_dropped_both_ways():
    headers = [("Host", "h"), ("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "5"),
               ("Transfer-Encoding", "chunked"), ("TE", "trailers"), ("Upgrade", "h2c"),
               ("Proxy-Authorization", "Basic x"), ("Expect", "100-continue"),
               ("Cookie", "a=1"), ("Cookie", "b=2")]  # fmt: skip
    got = to_upstream(request("127.0.0.1", headers), (), "app.internal")
    assert got["Host"] == "app.internal"
    assert got.getall("Cookie") == ["a=1", "b=2"]
    for hop in ("Connection", "X-Hop", "Keep-Alive", "Transfer-Encoding", "TE", "Upgrade",
                "Proxy-Authorization", "Expect"):  # fmt: skip
        assert hop not in got
    answer = CIMultiDictProxy(CIMultiDict([("Connection", "X-Internal"), ("X-Internal", "1"),
                                           ("Set-Cookie", "s=1"), ("Set-Cookie", "t=2"),
                                           ("Content-Length", "10")]))  # fmt: skip
    back = to_client(answer)
    assert back.getall("Set-Cookie") == ["s=1", "t=2"]
    assert "X-Internal" not in back and "Connection" not in back
    assert back["Content-Length"] == "10"


def test_websocket_handshake_headers_are_left_to_the_client_library():
    headers = [("Host", "h"), ("Sec-WebSocket-Key", "k"), ("Sec-WebSocket-Version", "13"),
               ("Sec-WebSocket-Protocol", "chat"), ("Origin", "https://a")]  # fmt: skip
    got = to_upstream(request("127.0.0.1", headers), (), None, websocket=True)
    assert "Sec-WebSocket-Key" not in got and "Sec-WebSocket-Protocol" not in got
    assert got["Origin"] == "https://a"
