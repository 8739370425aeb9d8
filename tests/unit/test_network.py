"""Caller address and public URL: X-Forwarded-* believed only from trusted proxies."""

from __future__ import annotations

import ipaddress
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.ingress.network import client_address, is_in, public_url

PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


def request(peer: str, headers: dict[str, str], path: str = "/in/twilio?a=1") -> object:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default
    )
    return make_mocked_request(
        "POST", path, headers={"Host": "gw.internal:8080", **headers}, transport=transport
    )


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", "198.51.100.1", (), "203.0.113.5"),  # no proxies configured
        ("203.0.113.5", "198.51.100.1", PROXIES, "203.0.113.5"),  # peer is not a proxy
        ("10.0.0.2", "198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.7", PROXIES, "198.51.100.1"),  # two proxy hops
        ("10.0.0.2", "10.9.9.9, 198.51.100.1", PROXIES, "198.51.100.1"),  # forged left hop ignored
        ("10.0.0.2", "not-an-ip", PROXIES, "10.0.0.2"),
        ("10.0.0.2", "", PROXIES, "10.0.0.2"),
    ],
)
def test_client_address_walks_forwarded_for_past_trusted_proxies_only(
    peer, forwarded, trusted, expected
):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client_address(request(peer, headers), trusted) == expected


def test_public_url_uses_forwarded_proto_and_host_only_from_a_trusted_proxy():
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    assert (
        public_url(request("10.0.0.2", headers), PROXIES)
        == "https://hooks.example.com/in/twilio?a=1"
    )
    assert (
        public_url(request("203.0.113.5", headers), PROXIES)
        == "http://gw.internal:8080/in/twilio?a=1"
    )


def test_is_in_ignores_garbage():
    assert is_in("10.1.2.3", PROXIES)
    assert not is_in("garbage", PROXIES)
    assert not is_in(None, PROXIES)
