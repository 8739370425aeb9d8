"""The delivery client against real aiohttp servers: what it sends, how it reads answers,
and when it keeps or drops a connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from gateway.contract.httpclient import AnswerTooLarge, HttpClient

Server = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient()
    yield http
    await http.close()


async def serve(aiohttp_server: Server, handler) -> tuple[URL, list[web.Request]]:
    """A server answering every path with `handler`; its base URL and the requests seen."""
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    return URL(str(server.make_url("/"))), seen


async def peer_port(request: web.Request) -> web.Response:
    """Answers with the client's port: the same port twice is one kept-alive connection."""
    return web.Response(text=str(request.transport.get_extra_info("peername")[1]))


async def test_it_sends_host_length_and_no_accept_encoding(aiohttp_server, client):
    received: dict[str, object] = {}

    async def handler(request: web.Request) -> web.Response:
        received.update(headers=dict(request.headers), body=await request.read())
        return web.Response(text="ok")

    base, _ = await serve(aiohttp_server, handler)
    answer = await client.request(
        "POST", base / "hook", [("Content-Type", "application/json"), ("X-A", "1")], b'{"a":1}'
    )
    assert (answer.status, answer.body) == (200, b"ok")
    headers = received["headers"]
    assert headers["Host"] == f"{base.host}:{base.port}"
    assert headers["Content-Length"] == "7"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-A"] == "1"
    assert "Accept-Encoding" not in headers
    assert received["body"] == b'{"a":1}'


async def test_a_caller_host_header_replaces_the_urls(aiohttp_server, client):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=request.headers["Host"])

    base, _ = await serve(aiohttp_server, handler)
    answer = await client.request("POST", base / "x", [("Host", "app.example")], b"")
    assert answer.body == b"app.example"


async def test_a_callers_framing_headers_are_replaced_by_the_bodys(aiohttp_server, client):
    async def handler(request: web.Request) -> web.Response:
        seen = (
            request.headers.getall(name, []) for name in ("Content-Length", "Transfer-Encoding")
        )
        return web.Response(text=repr([*seen, await request.read()]))

    base, _ = await serve(aiohttp_server, handler)
    framing = [("Content-Length", "999"), ("Transfer-Encoding", "chunked")]
    answer = await client.request("POST", base, framing, b"abc")
    assert answer.body.decode() == repr([["3"], [], b"abc"])


async def test_a_connection_is_kept_alive_between_requests(aiohttp_server, client):
    base, _ = await serve(aiohttp_server, peer_port)
    ports = {(await client.request("POST", base, [], b"x")).body for _ in range(5)}
    assert len(ports) == 1


async def test_a_chunked_answer_is_read_whole_and_the_connection_kept(aiohttp_server, client):
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one,", b"two,", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    base, seen = await serve(aiohttp_server, handler)
    for _ in range(2):
        answer = await client.request("POST", base, [], b"x")
        assert answer.body == b"one,two,three"
        assert ("Transfer-Encoding", "chunked") in answer.headers
    ports = {r.transport.get_extra_info("peername")[1] for r in seen}
    assert len(ports) == 1


async def test_only_the_kept_bytes_of_a_long_answer_are_returned(aiohttp_server, client):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 10_000)

    base, _ = await serve(aiohttp_server, handler)
    answer = await client.request("POST", base, [], b"x", keep=4096)
    assert answer.body == b"a" * 4096
    again = await client.request("POST", base, [], b"x", keep=4096)  # the stream is in step
    assert again.status == 200


async def test_an_answer_over_the_limit_is_refused(aiohttp_server, client):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 5000)

    base, _ = await serve(aiohttp_server, handler)
    with pytest.raises(AnswerTooLarge):
        await client.request("POST", base, [], b"x", limit=4999)
    whole = await client.request("POST", base, [], b"x", limit=5000)
    assert whole.body == b"a" * 5000


async def test_a_refused_connection_is_a_connection_error(client):
    with pytest.raises(ConnectionError):
        await client.request("POST", URL(f"http://127.0.0.1:{free_port()}/"), [], b"x")


async def test_an_answer_cut_short_is_a_connection_error(aiohttp_server, client):
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"only part")
        assert request.transport is not None
        request.transport.close()
        return response

    base, _ = await serve(aiohttp_server, handler)
    with pytest.raises(ConnectionError):
        await client.request("POST", base, [], b"x")


async def test_a_request_cancelled_by_its_timeout_does_not_reuse_the_connection(
    aiohttp_server, client
):
    slow = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/slow":
            await slow.wait()
        return await peer_port(request)

    base, _ = await serve(aiohttp_server, handler)
    first = await client.request("POST", base / "fast", [], b"x")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.request("POST", base / "slow", [], b"x")
    slow.set()
    after = await client.request("POST", base / "fast", [], b"x")
    assert after.body != first.body  # a new connection: the cut one was not pooled


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    aiohttp_server, client
):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    base, seen = await serve(aiohttp_server, handler)
    with pytest.raises(ValueError, match="line break"):
        await client.request("POST", base, [("X-Bad", "a\r\nInjected: 1")], b"x")
    assert seen == []


async def test_a_get_without_a_body_sends_no_length_or_type(aiohttp_server, client):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=",".join(sorted(request.headers)))

    base, _ = await serve(aiohttp_server, handler)
    answer = await client.request("GET", base / "x", [], b"")
    assert answer.body.decode().split(",") == ["Accept", "Host"]
    head = await client.request("HEAD", base / "x", [], b"")
    assert (head.status, head.body) == (200, b"")


async def test_answer_headers_are_as_received(aiohttp_server, client):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"X-Mixed-Case": "a  b", "Retry-After": "7"})

    base, _ = await serve(aiohttp_server, handler)
    answer = await client.request("POST", base, [], b"x")
    assert ("X-Mixed-Case", "a  b") in answer.headers
    assert answer.header("retry-after") == "7"


async def test_a_long_answer_past_the_drain_closes_its_connection(aiohttp_server, client):
    async def handler(request: web.Request) -> web.Response:
        if request.path == "/big":
            return web.Response(body=b"a" * 1_000_000)
        return await peer_port(request)

    base, _ = await serve(aiohttp_server, handler)
    first = await client.request("POST", base / "port", [], b"x")
    big = await client.request("POST", base / "big", [], b"x", keep=4096)
    assert big.body == b"a" * 4096
    after = await client.request("POST", base / "port", [], b"x")
    assert after.body != first.body  # the big answer's connection was not pooled


async def test_a_closed_client_refuses_requests(aiohttp_server):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    base, _ = await serve(aiohttp_server, handler)
    http = HttpClient()
    assert (await http.request("POST", base, [], b"x")).status == 200
    await http.close()
    with pytest.raises(ConnectionError):
        await http.request("POST", base, [], b"x")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hookgate test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def serve_tls(aiohttp_server: Server, self_signed: tuple[Path, Path]) -> URL:
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(*self_signed)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", peer_port)
    server = await aiohttp_server(app, ssl=server_side)
    return URL(str(server.make_url("/")))


async def test_https_to_a_trusted_certificate_is_kept_alive(aiohttp_server, self_signed):
    base = await serve_tls(aiohttp_server, self_signed)
    assert base.scheme == "https"
    trust = ssl.create_default_context(cafile=str(self_signed[0]))
    http = HttpClient(trust)
    try:
        ports = {(await http.request("POST", base / "x", [], b"x")).body for _ in range(3)}
    finally:
        await http.close()
    assert len(ports) == 1


async def test_https_is_verified_with_the_default_context(aiohttp_server, self_signed, client):
    base = await serve_tls(aiohttp_server, self_signed)
    with pytest.raises(ssl.SSLCertVerificationError):
        await client.request("POST", base / "x", [], b"x")
