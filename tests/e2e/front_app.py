"""An existing aiohttp app to put hookgate in front of: normal routes, a streamed upload
and download, a websocket, a webhook path, and a route that never answers.

It records what reached it, so tests can see what hookgate passed through or relayed.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

CHUNK = 256 * 1024


@dataclass
class Seen:
    """One request as the app received it."""

    method: str
    path_qs: str  # raw
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class ExistingApp:
    seen: list[Seen] = field(default_factory=list)
    hooks: list[Seen] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    never: asyncio.Event = field(default_factory=asyncio.Event)
    close_codes: list[int | None] = field(default_factory=list)  # as each websocket ended

    def app(self) -> web.Application:
        # What arrives on the wire, compressed or not, is what the handlers see.
        app = web.Application(handler_args={"auto_decompress": False})
        app.router.add_get("/hello", self.hello)
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_post("/upload", self.upload)
        app.router.add_get("/download", self.download)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/broken", self.broken)
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/nocontent", self.nocontent)
        app.router.add_get("/notmodified", self.notmodified)
        app.router.add_get("/close", self.close)
        app.router.add_route("*", "/webhooks/{tail:.*}", self.hook)
        return app

    async def hello(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.rel_url.raw_path_qs, _raw(request), b""))
        return web.Response(
            text="hello from the app",
            headers={"X-App": "1", "Connection": "keep-alive, X-Hop", "X-Hop": "secret-hop"},
        )

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(Seen(request.method, request.rel_url.raw_path_qs, _raw(request), body))
        return web.Response(body=body, status=201, headers={"X-Method": request.method})

    async def upload(self, request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"sha256": digest.hexdigest(), "size": size})

    async def download(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        response = web.StreamResponse(headers={"Content-Length": str(size)})
        await response.prepare(request)
        for offset in range(0, size, CHUNK):
            await response.write(block(offset, min(CHUNK, size - offset)))
        await response.write_eof()
        return response

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=["chat.v2"])
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT and message.data.startswith("close:"):
                await ws.close(code=int(message.data.split(":")[1]))
            elif message.type == WSMsgType.TEXT:
                await ws.send_str(message.data.upper())
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        self.close_codes.append(ws.close_code)
        return ws

    async def slow(self, request: web.Request) -> web.Response:
        await self.never.wait()  # set by no one: the answer never comes
        return web.Response(text="late")

    async def broken(self, request: web.Request) -> web.StreamResponse:
        """A chunked answer that dies half-way (the app crashed mid-answer)."""
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"z" * CHUNK)
        await response.drain()
        assert request.transport is not None
        request.transport.abort()
        return response

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        """A download of unknown length (chunked) in many small pieces."""
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for offset in range(0, 100 * 1000, 1000):
            await response.write(block(offset, 1000))
        await response.write_eof()
        return response

    async def nocontent(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-App": "1"})

    async def notmodified(self, request: web.Request) -> web.Response:
        return web.Response(status=304, headers={"ETag": '"v1"'})

    async def close(self, request: web.Request) -> web.Response:
        response = web.Response(text="bye")
        response.force_close()  # Connection: close, then the app closes the connection
        return response

    async def hook(self, request: web.Request) -> web.Response:
        seen = Seen(
            request.method, request.rel_url.raw_path_qs, _raw(request), await request.read()
        )
        async with self._arrived:
            self.hooks.append(seen)
            self._arrived.notify_all()
        return web.Response(text="thanks")

    async def wait_for_hooks(self, count: int, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.hooks) >= count)


def block(offset: int, size: int) -> bytes:
    """Deterministic bytes for a download at `offset` (so the client can check them)."""
    pattern = hashlib.sha256(str(offset).encode()).digest()
    return (pattern * (size // len(pattern) + 1))[:size]


def _raw(request: web.Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
