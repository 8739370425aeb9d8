"""The pass-through floor: the least an aiohttp server + aiohttp client proxy can do.

Each request's body is read, sent to the upstream over a keep-alive pool, and the
upstream's answer is read and returned: no header rules, no timeouts, no streaming, no
logging. Its req/s, next to the upstream reached directly, is what aiohttp itself costs
as a proxy on this machine; hookgate's pass-through is measured against both.

Run: ``python bench/bare_proxy.py --upstream http://127.0.0.1:18081 --port 18082``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=100)
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, cookie_jar=jar
    ) as client:
        app[SESSION] = client
        yield


async def forward(request: web.Request) -> web.Response:
    body = await request.read()
    url = request.app[UPSTREAM] + request.rel_url.raw_path_qs
    client = request.app[SESSION]
    async with client.request(request.method, url, data=body, headers=request.headers) as up:
        return web.Response(status=up.status, body=await up.read())


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(session)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/{path:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18082)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        create_app(args.upstream), host=args.host, port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    main()
