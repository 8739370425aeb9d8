"""``GET /metrics``: the app's Prometheus registry, with the queue gauges read at scrape time.

hookgate has one listener, so /metrics sits on it behind `admin.token` (a bearer token:
`authorization: {credentials: ...}` in a Prometheus scrape config); without a token
configured it answers 403 rather than expose the gateway's traffic to anyone.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway import keys
from gateway.storage.stats import queue_gauges

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="hookgate"'}


async def metrics(request: web.Request) -> web.Response:
    """The text exposition; 401/403 without the admin token, 503 if the database is down."""
    app = request.app
    token = app[keys.CONFIG].admin.token
    if token is None:
        return web.json_response({"error": "set admin.token to scrape /metrics"}, status=403)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return web.json_response(
            {"error": "the admin token is required"}, status=401, headers=UNAUTHORIZED
        )
    live = app.get(keys.LIVE)
    config = live.current.config if live is not None else app[keys.CONFIG]
    rows = await queue_gauges(app[keys.STORE], list(config.targets), app[keys.CLOCK].now())
    app[keys.METRICS].set_queue(rows)
    body = app[keys.METRICS].exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
