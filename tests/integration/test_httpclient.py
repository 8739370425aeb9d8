"""gateway.contract.httpclient's Pool against real servers: aiohttp apps, and raw sockets
where an edge case needs bytes no aiohttp server would send."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import free_port

from gateway.contract import httpclient
from gateway.contract.httpclient import Pool

MIB = 1024 * 1024


class Origin:
    """An aiohttp app that records each request's method, headers, body and peer port."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes, int]] = []
        self.written = 0  # bytes of /big written so far

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/big", self.big)
        app.router.add_get("/close", self.close)
        app.router.add_get("/cut", self.cut)
        app.router.add_get("/never", self.never)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername")[1] if request.transport else 0
        self.seen.append((request.method, dict(request.headers), body, peer))
        return web.Response(body=body, headers={"X-Method": request.method})

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for n in range(50):
            await response.write(b"%d," % n)
        await response.write_eof()
        return response

    async def big(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        response = web.StreamResponse(headers={"Content-Length": str(size)})
        await response.prepare(request)
        block = os.urandom(256 * 1024)
        while self.written < size:
            piece = block[: size - self.written]
            await response.write(piece)  # waits while the client is not reading
            self.written += len(piece)
        await response.write_eof()
        return response

    async def close(self, request: web.Request) -> web.Response:
        response = web.Response(text="bye")
        response.force_close()  # Connection: close
        return response

    async def cut(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000000"})
        await response.prepare(request)
        await response.write(b"x" * 1000)
        await response.drain()
        assert request.transport is not None
        request.transport.abort()
        return response

    async def never(self, request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.fixture
async def origin() -> AsyncIterator[tuple[Origin, Pool]]:
    recorder = Origin()
    server = TestServer(recorder.app(), host="127.0.0.1", port=free_port())
    await server.start_server()
    pool = Pool(f"http://127.0.0.1:{server.port}", connections=4)
    yield recorder, pool
    await pool.close()
    await server.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_origin() -> AsyncIterator[Callable[[Handler], Awaitable[Pool]]]:
    """A raw TCP server running the given connection handler; its pool."""
    servers: list[asyncio.Server] = []
    pools: list[Pool] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(handler: Handler) -> Pool:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await handler(reader, writer)

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        pools.append(Pool(f"http://127.0.0.1:{port}"))
        return pools[-1]

    yield start
    for pool in pools:
        await pool.close()
    for writer in writers:  # Server.close() leaves accepted connections open
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_keep_alive_reuses_one_connection(origin):
    recorder, pool = origin
    for n in range(3):
        response = await pool.request("POST", "/echo", [], b"body %d" % n)
        assert (response.status, await response.read()) == (200, b"body %d" % n)
    assert pool.opened == 1
    assert len({peer for *_, peer in recorder.seen}) == 1  # the origin saw one connection
    assert pool.idle == 1


async def test_a_chunked_upload_arrives_whole(origin):
    recorder, pool = origin
    parts = [os.urandom(100_000) for _ in range(5)]

    async def body():
        for part in parts:
            yield part

    response = await pool.request("PUT", "/echo", [("X-A", "1")], body())
    assert await response.read() == b"".join(parts)
    method, headers, received, _ = recorder.seen[0]
    assert (method, received) == ("PUT", b"".join(parts))
    assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    assert headers["X-A"] == "1" and headers["Host"] == pool.authority


async def test_a_streamed_upload_with_a_length_keeps_its_content_length(origin):
    recorder, pool = origin

    async def body():
        yield b"a" * 70_000
        yield b"b" * 30_000

    response = await pool.request("POST", "/echo", [], body(), length=100_000)
    assert len(await response.read()) == 100_000
    _, headers, received, _ = recorder.seen[0]
    assert headers["Content-Length"] == "100000" and "Transfer-Encoding" not in headers
    assert received == b"a" * 70_000 + b"b" * 30_000


async def test_a_body_shorter_than_its_length_fails_and_is_not_sent_as_whole(origin):
    recorder, pool = origin

    async def body():
        yield b"a" * 10

    with pytest.raises(httpclient.BodyFailed):
        await pool.request("POST", "/echo", [], body(), length=100)
    assert recorder.seen == []


async def test_the_callers_framing_headers_are_replaced(origin):
    recorder, pool = origin
    sent = [("Content-Length", "999"), ("Transfer-Encoding", "gzip"), ("Connection", "close")]
    response = await pool.request("POST", "/echo", sent, b"abc")
    assert await response.read() == b"abc"
    _, headers, _, _ = recorder.seen[0]
    assert headers["Content-Length"] == "3" and "Transfer-Encoding" not in headers
    assert "Connection" not in headers


async def test_a_chunked_download_streams_and_the_connection_is_reused(origin):
    _, pool = origin
    response = await pool.request("GET", "/chunked", [])
    assert "Content-Length" not in response.headers
    received = b"".join([chunk async for chunk in response.iter_chunks()])
    assert received == b"".join(b"%d," % n for n in range(50))
    again = await pool.request("GET", "/chunked", [])
    assert len(await again.read()) == len(received)
    assert pool.opened == 1


async def test_a_download_larger_than_what_is_read_waits_for_the_reader(origin):
    recorder, pool = origin
    size = 256 * MIB
    response = await pool.request("GET", f"/big?size={size}", [])
    chunks = response.iter_chunks()
    total = len(await anext(chunks))
    await asyncio.sleep(0.5)  # the reader stalls: the origin must stall too
    # Flow control: what is in flight is socket buffers and 2x read_buffer, not the body.
    assert recorder.written < 32 * MIB
    async for chunk in chunks:
        total += len(chunk)
    assert total == size == recorder.written


async def test_connection_close_from_the_origin_is_not_reused(origin):
    _, pool = origin
    response = await pool.request("GET", "/close", [])
    assert response.headers["Connection"] == "close"
    assert await response.read() == b"bye"
    second = await pool.request("POST", "/echo", [], b"x")
    assert await second.read() == b"x"
    assert pool.opened == 2


async def test_an_answer_cut_short_raises_cut_short(origin):
    _, pool = origin
    response = await pool.request("GET", "/cut", [])
    assert response.status == 200
    with pytest.raises(httpclient.CutShort):
        async for _ in response.iter_chunks():
            pass
    assert pool.idle == 0


async def test_no_answer_within_the_timeout_is_timed_out_and_the_connection_dropped(origin):
    _, pool = origin
    with pytest.raises(httpclient.TimedOut) as timed_out:
        await pool.request("GET", "/never", [], timeout=0.2)
    assert isinstance(timed_out.value, TimeoutError)
    response = await pool.request("POST", "/echo", [], b"after", timeout=5)
    assert await response.read() == b"after"
    assert pool.opened == 2  # the timed-out connection was not given back


async def test_a_refused_connection_is_connect_failed():
    pool = Pool(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(httpclient.ConnectFailed):
        await pool.request("GET", "/", [])
    await pool.close()


async def test_head_204_and_304_have_no_body_and_keep_the_connection(raw_origin):
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",  # to a HEAD: no body follows
        b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\n',
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for answer in answers:
            await read_head(reader)
            writer.write(answer)
        await reader.read()
        writer.close()

    pool = await raw_origin(handler)
    for method, status in (("HEAD", 200), ("GET", 204), ("GET", 304)):
        response = await pool.request(method, "/", [])
        assert (response.status, await response.read()) == (status, b"")
    last = await pool.request("GET", "/", [])
    assert (last.status, await last.read()) == (200, b"ok")  # parsed right after all three
    assert connections == 1


async def test_a_kept_alive_connection_the_origin_dropped_is_retried_for_a_get(raw_origin):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
        await read_head(reader)  # the second request on this connection: dropped unanswered
        writer.close()

    pool = await raw_origin(handler)
    assert await (await pool.request("GET", "/", [])).read() == b"first"
    assert await (await pool.request("GET", "/", [])).read() == b"first"  # on a new one
    assert pool.opened == 2
    await (await pool.request("GET", "/", [])).read()
    with pytest.raises(httpclient.Disconnected):
        await pool.request("POST", "/", [], b"not idempotent: never sent twice")


async def test_a_connection_closed_before_the_answer_is_disconnected(raw_origin):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.close()

    pool = await raw_origin(handler)
    with pytest.raises(httpclient.Disconnected):
        await pool.request("GET", "/", [])


async def test_an_answer_that_is_not_http_is_a_bad_answer(raw_origin):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await reader.read()

    pool = await raw_origin(handler)
    with pytest.raises(httpclient.BadAnswer):
        await pool.request("GET", "/", [])


async def test_the_pool_never_opens_more_than_its_limit(origin):
    recorder, pool = origin  # connections=4

    async def one(n: int) -> bytes:
        response = await pool.request("POST", "/echo", [], b"%d" % n)
        return await response.read()

    answers = await asyncio.gather(*(one(n) for n in range(20)))
    assert sorted(answers) == sorted(b"%d" % n for n in range(20))
    assert pool.opened <= 4
    assert len({peer for *_, peer in recorder.seen}) <= 4


def test_a_header_with_a_line_break_is_refused():
    with pytest.raises(ValueError, match="CR or LF"):
        httpclient._head("GET", "/", [("X-A", "1\r\nX-Injected: 2")], "h", None, None)


async def test_an_answer_without_length_is_read_until_the_origin_closes(raw_origin):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    pool = await raw_origin(handler)
    response = await pool.request("GET", "/", [])
    assert await response.read() == b"until the end"
    assert pool.idle == 0


async def test_an_idle_connection_the_origin_closed_is_not_used_again(raw_origin):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive, then
        await writer.drain()
        writer.close()  # the origin's idle timeout: closed without a word

    pool = await raw_origin(handler)
    assert await (await pool.request("GET", "/", [])).read() == b"ok"
    async with asyncio.timeout(5):
        # The pool has no event for an idle connection lost: polled, bounded by the timeout.
        while pool.idle:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    response = await pool.request("POST", "/", [], b"not retried: it never needs to be")
    assert await response.read() == b"ok"
    assert pool.opened == 2


async def test_a_connection_idle_for_keepalive_seconds_is_closed(origin):
    _, other = origin
    pool = Pool(f"http://{other.authority}", keepalive=0.2)  # the same origin, a short keepalive
    try:
        assert (await (await pool.request("POST", "/echo", [], b"x")).read()) == b"x"
        assert pool.idle == 1
        async with asyncio.timeout(5):
            # The sweep closes it on its own: polled, bounded by the timeout.
            while pool.idle:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert (await (await pool.request("POST", "/echo", [], b"y")).read()) == b"y"
        assert pool.opened == 2
    finally:
        await pool.close()
