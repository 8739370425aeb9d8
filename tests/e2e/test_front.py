"""The reverse-proxy front: hookgate in front of a real app, capturing its webhook path."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import socket
import uuid

import aiohttp
import asyncpg
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer
from conftest import GatewayTestServer, make_config
from front_app import ExistingApp, block
from structlog.testing import capture_logs

from gateway import keys
from gateway.app import create_app
from gateway.ids import delivery_id

WEBHOOK = b'{"type": "order.created", "id": "ord_1", "note": "caf\xc3\xa9 \\u00e9"}\r\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


RETRIES = ", ".join(["250ms"] * 60)  # ~15 s of retries: enough for a busy machine


def front_config(database_url: str, port: int, extra: str = "", upstream: str = ""):
    return make_config(
        database_url,
        f"""
upstream: {{url: "http://127.0.0.1:{port}", timeout: 2s, {upstream}}}
relay: {{poll_interval: 100ms}}
sources:
  shop: {{path: /webhooks/shop, event_type: "json:type"}}
routes:
  - {{source: shop, targets: [upstream]}}
targets:
  upstream:
    breaker: false
    retry: {{schedule: [{RETRIES}]}}
{extra}
""",
    )


async def start_app(existing: ExistingApp, port: int) -> TestServer:
    server = TestServer(existing.app(), host="127.0.0.1", port=port)
    await server.start_server()
    return server


@pytest.fixture
async def front(database_url, aiohttp_client):
    """The existing app on a fixed port and hookgate in front of it (real clock, relay on)."""
    servers: list[TestServer] = []

    async def start(extra: str = "", upstream: str = ""):
        existing, port = ExistingApp(), free_port()
        servers.append(await start_app(existing, port))
        config = front_config(database_url, port, extra, upstream)
        client = await aiohttp_client(GatewayTestServer(create_app(config)))
        return existing, port, client, servers

    yield start
    for server in servers:
        await server.close()


async def events(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT id, path, query FROM hookgate.events")
    finally:
        await conn.close()


async def chunks(data: bytes, size: int = 64 * 1024):
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def test_the_app_goes_down_and_the_webhook_still_arrives_at_its_own_path(front, database_url):
    existing, port, client, servers = await front()
    # Up: normal routes, a streamed upload and a websocket pass through.
    hello = await client.get("/hello")
    assert (hello.status, await hello.text()) == (200, "hello from the app")
    assert hello.headers["Server"] == "hookgate"  # not the app's
    upload = os.urandom(3 * 1024 * 1024 + 17)
    answer = await client.post("/upload", data=chunks(upload))
    assert await answer.json() == {
        "sha256": hashlib.sha256(upload).hexdigest(),
        "size": len(upload),
    }
    async with client.ws_connect("/ws", protocols=["chat.v2"]) as ws:
        assert ws.protocol == "chat.v2"
        assert ws._response.headers["Server"] == "hookgate"  # the 101's (no public accessor)
        await ws.send_str("hi")
        assert (await ws.receive()).data == "HI"
        await ws.send_bytes(b"\x00\x01\x02")
        reply = await ws.receive()
        assert (reply.type, reply.data) == (WSMsgType.BINARY, b"\x02\x01\x00")
    # Down: pass-through is a 502, the webhook is still acknowledged.
    await servers.pop().close()
    down = await client.get("/hello")
    assert down.status == 502
    assert (await down.json())["error"] == "the upstream is unreachable"
    sent = await client.post(
        "/webhooks/shop?account=a%26b&x=1",
        data=WEBHOOK,
        headers={"Content-Type": "application/json", "X-Shop-Signature": "sig-123"},
    )
    assert sent.status == 202
    event_id = (await sent.json())["id"]
    # Back: the relay's retry reaches the app at the webhook's own path, byte for byte.
    servers.append(await start_app(existing, port))
    await existing.wait_for_hooks(1)
    (hook,) = existing.hooks
    assert (hook.method, hook.path_qs, hook.body) == (
        "POST",
        "/webhooks/shop?account=a%26b&x=1",
        WEBHOOK,
    )
    headers = dict(hook.headers)
    assert headers["Idempotency-Key"] == str(delivery_id(uuid.UUID(event_id), "upstream"))
    assert headers["X-Hookgate-Event-Id"] == event_id
    assert headers["Host"] == f"127.0.0.1:{client.port}"  # host: keep, as the provider sent it
    assert headers["X-Shop-Signature"] == "sig-123"  # the app can still check the provider's
    assert headers["Content-Type"] == "application/json"


async def test_a_websocket_close_code_passes_both_ways(front):
    _, _, client, _ = await front()
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("close:4001")  # the app closes with 4001
        message = await ws.receive()
        assert message.type == WSMsgType.CLOSE
        assert message.data == 4001


async def test_a_client_close_code_reaches_the_app(front):
    existing, _, client, _ = await front()
    ws = await client.ws_connect("/ws")
    await ws.send_str("ping")
    assert (await ws.receive()).data == "PING"
    await ws.close(code=4002)
    assert existing.close_codes == [4002]


async def test_a_large_download_arrives_whole_and_in_order(front):
    _, _, client, _ = await front()
    size = 8 * 1024 * 1024 + 5
    response = await client.get("/download", params={"size": str(size)})
    assert response.headers["Content-Length"] == str(size)
    received, offset = hashlib.sha256(), 0
    async for chunk in response.content.iter_chunked(256 * 1024):
        received.update(chunk)
        offset += len(chunk)
    expected = hashlib.sha256()
    for start in range(0, size, 256 * 1024):
        expected.update(block(start, min(256 * 1024, size - start)))
    assert (offset, received.hexdigest()) == (size, expected.hexdigest())


async def test_an_answer_cut_short_upstream_is_cut_short_for_the_client(front):
    _, _, client, _ = await front()
    response = await client.get("/broken")
    assert response.status == 200  # the status was already on its way
    assert response.headers["Server"] == "hookgate"  # streamed: named before it was sent
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()  # never a clean end: the client knows it is incomplete
    assert client.app[keys.UPSTREAM].counts.failures["cut_short"] == 1


async def test_any_method_and_raw_query_pass_through_unstored(front, database_url):
    existing, _, client, _ = await front()
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS", "POST"):
        response = await client.request(method, "/echo?q=a%20b&q=2", data=b"payload")
        assert (response.status, response.headers["X-Method"]) == (201, method)
        assert await response.read() == b"payload"
    assert [s.method for s in existing.seen] == ["PUT", "PATCH", "DELETE", "OPTIONS", "POST"]
    assert {s.path_qs for s in existing.seen} == {"/echo?q=a%20b&q=2"}
    assert await events(database_url) == []
    counts = client.app[keys.UPSTREAM].counts
    assert (counts.requests, counts.by_status[201]) == (5, 5)


async def test_head_keeps_the_upstreams_content_length_without_a_body(front):
    _, _, client, _ = await front()
    response = await client.head("/hello")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len("hello from the app"))
    assert await response.read() == b""


async def test_connections_to_the_app_are_kept_alive_and_reused(front):
    _, _, client, _ = await front()
    for _ in range(5):
        assert (await client.get("/hello")).status == 200
        assert (await client.post("/echo", data=b"x" * 100_000)).status == 201
    assert client.app[keys.UPSTREAM].pool.opened == 1


async def test_204_and_304_pass_with_no_body_and_the_connection_is_reused(front):
    _, _, client, _ = await front()
    empty = await client.get("/nocontent")
    assert (empty.status, empty.headers["X-App"], await empty.read()) == (204, "1", b"")
    cached = await client.get("/notmodified", headers={"If-None-Match": '"v1"'})
    assert (cached.status, cached.headers["ETag"], await cached.read()) == (304, '"v1"', b"")
    assert (await client.get("/hello")).status == 200
    assert client.app[keys.UPSTREAM].pool.opened == 1


async def test_a_chunked_download_passes_through_whole(front):
    _, _, client, _ = await front()
    response = await client.get("/chunked")
    assert "Content-Length" not in response.headers
    expected = b"".join(block(offset, 1000) for offset in range(0, 100 * 1000, 1000))
    assert await response.read() == expected


async def test_connection_close_from_the_app_ends_only_the_apps_connection(front):
    _, _, client, _ = await front()
    response = await client.get("/close")
    assert (response.status, await response.text()) == (200, "bye")
    assert response.headers.get("Connection", "").lower() != "close"  # hop-by-hop: dropped
    assert (await client.get("/hello")).status == 200
    assert client.app[keys.UPSTREAM].pool.opened == 2  # a new connection after the close


async def test_compressed_bodies_pass_unchanged_both_ways(front):
    existing, _, client, _ = await front()
    packed = gzip.compress(b'{"big": "' + b"a" * 5000 + b'"}')
    response = await client.post(
        "/echo",
        data=packed,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        auto_decompress=False,
    )
    assert existing.seen[0].body == packed  # the app got the bytes on the wire
    assert await response.read() == packed  # and the answer came back as the app sent it


async def test_a_method_the_source_does_not_take_at_its_path_goes_to_the_app(front, database_url):
    existing, _, client, _ = await front()
    response = await client.get("/webhooks/shop")
    assert (response.status, await response.text()) == (200, "thanks")
    assert existing.hooks[0].method == "GET"
    assert await events(database_url) == []


async def test_hookgates_own_paths_are_never_passed_through(front):
    existing, _, client, _ = await front()
    for path in ("/in/nope", "/admin", "/admin/x", "/metrics/x", "/healthz/x"):
        response = await client.get(path)
        assert response.status == 404, path
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/metrics")).status == 403  # ours: no admin.token in this config
    assert existing.seen == [] and existing.hooks == []


async def test_hop_by_hop_headers_are_dropped_and_forwarding_headers_set(front):
    existing, _, client, _ = await front()
    response = await client.get(
        "/hello",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "X-Forwarded-For": "6.6.6.6",  # we are not a trusted proxy: replaced
            "Forwarded": "for=6.6.6.6",
            "Cookie": "a=1",
        },
    )
    assert response.status == 200
    assert "X-Hop" not in response.headers  # named by the app's Connection header
    assert response.headers["X-App"] == "1"
    got = {k.lower(): v for k, v in existing.seen[0].headers}
    for hop in ("x-secret-hop", "keep-alive", "te"):
        assert hop not in got
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert got["forwarded"] == f'for=127.0.0.1;proto=http;host="127.0.0.1:{client.port}"'
    assert got["x-forwarded-proto"] == "http"
    assert got["x-forwarded-host"] == f"127.0.0.1:{client.port}"
    assert got["host"] == f"127.0.0.1:{client.port}"  # host: keep
    assert got["cookie"] == "a=1"


async def test_no_header_is_added_that_the_client_did_not_send(front):
    existing, _, client, _ = await front()
    bare = ["Accept", "Accept-Encoding", "User-Agent", "Content-Type"]
    response = await client.post("/echo", data=b"raw", skip_auto_headers=bare)
    assert response.status == 201
    sent = {k.lower() for k, _ in existing.seen[0].headers}
    assert not sent & {"accept", "accept-encoding", "user-agent", "content-type"}


async def test_a_trusted_proxys_forwarding_headers_are_extended(front):
    existing, _, client, _ = await front(extra="server: {trusted_proxies: [127.0.0.0/8]}")
    await client.get(
        "/hello",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hooks.example.com",
            "Forwarded": "for=203.0.113.9;proto=https",
        },
    )
    got = {k.lower(): v for k, v in existing.seen[0].headers}
    assert got["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert (got["x-forwarded-proto"], got["x-forwarded-host"]) == ("https", "hooks.example.com")
    assert got["forwarded"].startswith("for=203.0.113.9;proto=https, for=127.0.0.1;")


async def test_host_can_be_set(front):
    existing, _, client, _ = await front(upstream="host: app.internal")
    await client.get("/hello")
    assert dict(existing.seen[0].headers)["Host"] == "app.internal"


async def test_no_answer_within_the_timeout_is_a_504_json_and_logged(front):
    _, _, client, _ = await front(upstream="timeout: 300ms")
    with capture_logs() as logs:
        response = await client.get("/slow?token=do-not-log")
    assert response.status == 504
    assert await response.json() == {"error": "the upstream did not answer within 0.3s"}
    (line,) = [entry for entry in logs if entry["event"] == "request_handled"]
    assert line["status"] == 504 and line["passthrough"] is True
    assert line["upstream_error"] == "timeout" and line["path"] == "/slow"
    assert "do-not-log" not in repr(logs)
    assert client.app[keys.UPSTREAM].counts.failures["timeout"] == 1


async def test_a_malformed_answer_is_logged_by_type_and_place_never_by_its_bytes(
    database_url, aiohttp_client
):
    async def echo_badly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")  # an upstream echoing what it was sent
        writer.write(
            b"HTTP/1.1 200 OK\r\nX-Echo: " + head.split(b" ")[1] + b"\r\nBad Header\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo_badly, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    refused = free_port()
    try:
        client = await aiohttp_client(
            GatewayTestServer(create_app(front_config(database_url, port)))
        )
        down = await aiohttp_client(
            GatewayTestServer(create_app(front_config(database_url, refused)))
        )
        with capture_logs() as logs:
            assert (await client.get("/hello?token=Sekr1tMarker")).status == 502
            assert (await down.get("/hello?token=Sekr1tMarker")).status == 502
    finally:
        server.close()
        await server.wait_closed()
    bad, gone = [entry for entry in logs if entry["event"] == "request_handled"]
    assert bad["upstream_error"] == "failed"
    assert bad["upstream_detail"] == "gateway.contract.httpclient.BadAnswer"  # its type only
    assert any("passthrough.py:" in frame for frame in bad["upstream_frames"])
    assert "Sekr1tMarker" not in repr(logs)  # the upstream's bytes quoted the request
    assert gone["upstream_error"] == "refused"  # a connection's own text is kept: the OS's
    assert gone["upstream_detail"].startswith("ConnectFailed: ")
    assert str(refused) in gone["upstream_detail"] and "upstream_frames" not in gone


async def test_a_slow_client_is_not_the_upstreams_timeout(front):
    _, _, client, _ = await front(upstream="timeout: 300ms")

    async def slowly():
        yield b"x" * 100_000
        await asyncio.sleep(0.6)  # the client's own pause, longer than the upstream timeout
        yield b"y"

    response = await client.post("/echo", data=slowly())
    assert response.status == 201
    assert len(await response.read()) == 100_001


async def stalled(client, head: bytes, sent: list[bytes], pause: float = 0.0) -> bytes:
    """Sends `head` and then `sent` (`pause` seconds apart) and stalls; what came back."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)

    async def answer() -> bytes:
        data = b""
        with contextlib.suppress(ConnectionError):  # a write after the server closed
            while chunk := await reader.read(65536):
                data += chunk
        return data

    answered = asyncio.ensure_future(answer())
    try:
        writer.write(head)
        for part in sent:
            await asyncio.sleep(pause)
            if answered.done():
                break  # answered and closed: the rest is not wanted
            writer.write(part)
        async with asyncio.timeout(10):  # a bound for a server that never answers
            return await answered
    finally:
        answered.cancel()
        writer.close()


@pytest.mark.parametrize(
    ("framing", "sent", "pause"),
    [
        ("Content-Length: 500", [b"x" * 10], 0.0),  # a small body, read whole before sending
        ("Content-Length: 200000", [b"x" * 70_000], 0.0),  # a large one, streamed
        ("Transfer-Encoding: chunked", [b"1\r\nx\r\n"] * 40, 0.05),  # trickled, never stalled
    ],
)
async def test_a_pass_through_body_must_arrive_within_the_body_timeout(front, framing, sent, pause):
    existing, _, client, _ = await front(extra="server: {body_timeout: 400ms}")
    head = f"POST /echo?token=do-not-log HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n"
    with capture_logs() as logs:
        answer = await stalled(client, head.encode(), sent, pause)
    head_, _, body = answer.partition(b"\r\n\r\n")
    assert head_.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout"
    assert json.loads(body) == {"error": "the body did not arrive within 0.4s"}
    (line,) = [entry for entry in logs if entry["event"] == "request_handled"]
    assert (line["status"], line["passthrough"], line["upstream_error"]) == (
        408,
        True,
        "body_timeout",
    )
    assert client.app[keys.UPSTREAM].counts.failures["body_timeout"] == 1
    assert client.app[keys.UPSTREAM].counts.by_status[408] == 1
    assert existing.seen == []  # the app never got a whole request
    assert "do-not-log" not in repr(logs)


@pytest.mark.parametrize("framing", ["Content-Length: 500", "Content-Length: 200000"])
async def test_a_client_hanging_up_mid_pass_through_body_is_one_info_line(front, framing):
    _, _, client, _ = await front()
    _, writer = await asyncio.open_connection(client.server.host, client.server.port)
    with capture_logs() as logs:
        writer.write(f"POST /echo HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
        writer.write(b"x" * 70_000 if "200000" in framing else b"x" * 10)
        await writer.drain()
        writer.close()
        for _ in range(500):  # its line is written once the server notices
            if any(e["event"] == "client_disconnected" for e in logs):
                break
            await asyncio.sleep(0.02)
    ours = {"client_disconnected", "request_crashed", "request_handled"}
    assert [e["event"] for e in logs if e["event"] in ours] == ["client_disconnected"]


async def test_the_pass_through_body_limit_is_its_own(front):
    _, _, client, _ = await front(upstream="max_body: 1KiB")
    declared = await client.post("/echo", data=b"x" * 2048)
    assert declared.status == 413
    streamed = await client.post("/echo", data=chunks(b"x" * 4096, 512))
    assert streamed.status == 413
    fits = await client.post("/echo", data=b"x" * 1000)
    assert fits.status == 201


async def test_the_webhook_limit_does_not_apply_to_pass_through(front):
    _, _, client, _ = await front(extra="server: {max_body: 1KiB}")
    body = b"y" * 64 * 1024
    response = await client.post("/echo", data=body)
    assert (response.status, await response.read()) == (201, body)
    refused = await client.post("/webhooks/shop", data=body)
    assert refused.status == 413


async def test_an_unreachable_upstream_websocket_is_a_502(database_url, aiohttp_client):
    config = front_config(database_url, free_port())
    client = await aiohttp_client(GatewayTestServer(create_app(config)))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws")
    assert refused.value.status == 502


async def test_without_an_upstream_a_source_path_still_captures_and_nothing_passes(
    database_url, aiohttp_client
):
    config = make_config(database_url, "sources: {shop: {path: /webhooks/shop}}")
    client = await aiohttp_client(GatewayTestServer(create_app(config)))
    assert (await client.post("/webhooks/shop", data=b"{}")).status == 202
    assert keys.UPSTREAM not in client.app
    assert "pass_through" not in client.app.router.named_resources()


def test_the_pass_through_is_the_last_route(database_url):
    app = create_app(front_config(database_url, free_port()))
    *_, last = app.router.resources()
    assert last.name == "pass_through"


async def test_a_prefix_path_captures_its_whole_subtree(database_url, aiohttp_client):
    config = make_config(
        database_url, 'sources: {gh: {path: "/webhooks/github/*", event_type: "header:X-E"}}'
    )
    client = await aiohttp_client(GatewayTestServer(create_app(config)))
    for path in ("/webhooks/github", "/webhooks/github/org/repo?ref=main"):
        assert (await client.post(path, data=b"{}", headers={"X-E": "push"})).status == 202
    assert (await client.post("/in/gh", data=b"{}")).status == 202
    stored = {(r["path"], r["query"]) for r in await events(database_url)}
    assert stored == {("/webhooks/github", ""), ("/webhooks/github/org/repo", "ref=main"),
                      ("/in/gh", "")}  # fmt: skip
