"""hookgate inside an existing aiohttp app: the host keeps its routes, hookgate adds its own.

    python docs/embedding/host_app.py config/example.yaml   # serves on 127.0.0.1:8000

Webhooks then arrive at ``/hooks/in/<source>`` (and ``/hooks/healthz``, ``/hooks/readyz``).
hookgate's resources (database pool, ingest writers, HTTP client, relay) are cleanup
contexts of the sub-application: aiohttp starts them when the host app starts and stops
them, in reverse order, when it stops. Nothing else needs wiring.
"""

from __future__ import annotations

import sys

from aiohttp import web

import gateway

HOOKGATE = web.AppKey("hookgate", web.Application)  # the mounted sub-app, for the host's use


async def index(request: web.Request) -> web.Response:
    return web.Response(text="the host app's own page")


def host_app(config_path: str) -> web.Application:
    """The existing app, with hookgate mounted at /hooks."""
    app = web.Application()
    app.router.add_get("/", index)
    app[HOOKGATE] = gateway.create_app(gateway.load_config(config_path))
    app.add_subapp("/hooks", app[HOOKGATE])
    return app


if __name__ == "__main__":
    web.run_app(host_app(sys.argv[1] if len(sys.argv) > 1 else "hookgate.yaml"), port=8000)
