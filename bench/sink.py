"""A target for the benchmarks: counts the deliveries POSTed to it and answers 200 at once.

``POST /hooks`` reads the body, remembers the ``X-Hookgate-Delivery-Id`` and answers
200. ``GET /stats`` answers ``{"received", "unique", "duplicates", "first_at",
"last_at"}``: every POST, distinct delivery ids, their difference (at-least-once
may repeat a delivery), and the wall-clock times of the first and of the latest
new delivery, so the end-to-end time does not depend on how often it is polled.

It speaks HTTP/1.1 itself over an ``asyncio.Protocol`` on uvloop (keep-alive,
``Content-Length`` or chunked bodies, pipelining), like ``bench/loadgen.py`` does on the
client side: a target elsewhere costs the relay's machine nothing, and on a 2-core box
an aiohttp sink took 50 to 110 µs of CPU a request (this one ~30) from the relay and
Postgres it shares the cores with (``bench/relay.py`` prints it). ``--aiohttp`` serves
the same routes with an aiohttp app instead, for comparison. The bare client loop and
the relay post to the same sink, so their ratio is fair either way.

Run: ``python bench/sink.py --port 18090 [--aiohttp]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web

MAX_HEAD = 64 * 1024


@dataclass
class Tally:
    received: int = 0
    ids: set[bytes] = field(default_factory=set)
    first_at: float | None = None
    last_at: float | None = None

    def add(self, delivery_id: bytes) -> None:
        self.received += 1
        if delivery_id in self.ids:
            return
        self.ids.add(delivery_id)
        self.last_at = time.time()
        if self.first_at is None:
            self.first_at = self.last_at

    def stats(self) -> dict[str, object]:
        unique = len(self.ids)
        return {
            "received": self.received,
            "unique": unique,
            "duplicates": self.received - unique,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def answer(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class SinkProtocol(asyncio.Protocol):
    """One connection: requests parsed as they arrive, each answered in order."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = bytearray()
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while (request := self._next()) is not None:
            out.append(request)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _next(self) -> bytes | None:
        """The answer to the next whole request in the buffer (None: not all here yet)."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._fail(b"431 Request Header Fields Too Large")
            return None
        lines = bytes(buffer[:end]).split(b"\r\n")
        method, _, rest = lines[0].partition(b" ")
        path = rest.partition(b" ")[0]
        length, chunked, delivery = 0, False, b"missing"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"x-hookgate-delivery-id":
                delivery = value.strip()
        start = end + 4
        if chunked:
            body_end = _chunked_end(buffer, start)
            if body_end is None:
                return None
        else:
            body_end = start + length
            if len(buffer) < body_end:
                return None
        del buffer[:body_end]
        if method == b"POST" and path == b"/hooks":
            self.tally.add(delivery)
            return OK
        if method == b"GET" and path == b"/stats":
            return answer("200 OK", json.dumps(self.tally.stats()).encode())
        return answer("404 Not Found", b'{"error": "not found"}')

    def _fail(self, status: bytes) -> None:
        if self.transport is not None:
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()
        self.buffer.clear()


def _chunked_end(buffer: bytearray, at: int) -> int | None:
    """Where a chunked body that starts at `at` ends (None: not all of it is here)."""
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        at = line_end + 2 + size + 2
        if size == 0:  # no trailers are sent to the sink
            return at if len(buffer) >= at else None
        if len(buffer) < at:
            return None


async def serve(host: str, port: int) -> None:
    tally = Tally()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(tally), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


# -- the aiohttp sink (--aiohttp) -------------------------------------------------------

TALLY = web.AppKey("tally", Tally)


async def hooks(request: web.Request) -> web.Response:
    await request.read()
    request.app[TALLY].add(request.headers.get("X-Hookgate-Delivery-Id", "missing").encode())
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[TALLY].stats())


def create_app() -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app[TALLY] = Tally()
    app.router.add_post("/hooks", hooks)
    app.router.add_get("/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--aiohttp", action="store_true", help="an aiohttp app instead")
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.aiohttp:
        web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)
        return
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
