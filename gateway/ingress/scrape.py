"""``GET /metrics``: the app's Prometheus registry, with the queue gauges read at scrape time.

Where it is served (README "Operations"):

- on the admin listener (`admin.port`) when there is one, without a token (that
  listener is bound to a private host, 127.0.0.1 by default), and not on the public one;
- else on the public listener, behind any of the admin tokens (a bearer token:
  `authorization: {credentials: ...}` in a Prometheus scrape config); without a token
  configured it answers 403 rather than expose the gateway's traffic to anyone;
- by a `hookgate worker --metrics-port`, on its own listener, without the queue gauges.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway import keys
from gateway.config import Config
from gateway.storage.stats import queue_gauges

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="hookgate"'}


def on_admin_listener(config: Config) -> bool:
    """/metrics is on the admin surface's own listener (which exists with a token and a port)."""
    return config.admin.enabled and config.admin.port is not None


async def metrics(request: web.Request) -> web.Response:
    """The text exposition; 401 without one of the admin tokens, 403 with none configured,
    503 if the database is down."""
    app = request.app
    access = app.get(keys.ADMIN_ACCESS)  # there with any admin token (gateway/admin/setup.py)
    if access is None:
        return web.json_response({"error": "set admin.token to scrape /metrics"}, status=403)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if access.token_name(given) is None:  # every token compared, in constant time
        return web.json_response(
            {"error": "the admin token is required"}, status=401, headers=UNAUTHORIZED
        )
    return await _with_gauges(app)


def metrics_of(app: web.Application, gauges: bool = True) -> Handler:
    """/metrics of `app` (the gateway's) on a listener of its own, no token asked: the
    admin listener, or a worker's (`gauges` False: the servers' /metrics has the queue
    gauges already, and N workers would repeat them N times). Such a listener's app keeps
    no registry, so none of its own requests is counted."""

    async def handler(request: web.Request) -> web.Response:
        return await _with_gauges(app) if gauges else _exposition(app)

    return handler


async def _with_gauges(app: web.Application) -> web.Response:
    live = app.get(keys.LIVE)
    config = live.current.config if live is not None else app[keys.CONFIG]
    rows = await queue_gauges(app[keys.STORE], list(config.targets), app[keys.CLOCK].now())
    app[keys.METRICS].set_queue(rows)
    return _exposition(app)


def _exposition(app: web.Application) -> web.Response:
    response = web.Response(body=app[keys.METRICS].exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def setup(app: web.Application) -> None:
    """The public listener's /metrics, unless the admin listener serves it."""
    if not on_admin_listener(app[keys.CONFIG]):
        app.router.add_get("/metrics", metrics)
