"""The baseline: a bare aiohttp + uvloop app that reads the body and answers 202.

It does what hookgate's ingest route does minus everything that makes it hookgate
(verification, the record, the database): same route shape (``POST /in/{source}``),
the body read in full, and the same answer, ``202 {"id": "<uuid>"}``. Its req/s is
the ceiling a single-process aiohttp service can reach on this machine.

Run: ``python bench/bare.py --port 18081``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"id": str(uuid.uuid4())}, status=202)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app.router.add_post("/in/{source}", accept)
    app.router.add_post("/app/{path:.*}", accept)  # an app path: the upstream in bench/proxy.py
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
