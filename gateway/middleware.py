"""The one error middleware, and the canonical log line per request.

Every error answer is JSON ``{"error": ...}``, the router's 404 and 405 included, and
says nothing about the server: `Server: hookgate`, no version, no traceback.
"""

from __future__ import annotations

import itertools
import math
import os
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import keys, logging
from gateway.errors import ClientDisconnected, IngressError, RateLimited, StorageError
from gateway.ingress.redact import REDACTED
from gateway.metrics import UNKNOWN_SOURCE
from gateway.server import SERVER

log = structlog.get_logger("hookgate.http")


def error_response(exc: Exception, retry_after: int) -> web.Response:
    """The client's answer for an error we expect; nothing internal leaks into it."""
    if isinstance(exc, IngressError):
        response = web.json_response({"error": exc.message}, status=exc.status)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if exc.status in (400, 408, 413):
            response.force_close()  # close after the answer instead of reading the rest
        return response
    if isinstance(exc, StorageError):
        return web.json_response(
            {"error": "temporarily unable to store the request; retry later"},
            status=503,
            headers={"Retry-After": str(retry_after)},
        )
    raise exc


def http_error(exc: web.HTTPException) -> web.StreamResponse:
    """aiohttp's HTTP exceptions (the router's 404 and 405, ...) as JSON; redirects as they are."""
    if exc.status < 400:
        return exc
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return web.json_response({"error": exc.reason.lower()}, status=exc.status, headers=headers)


def identify(response: web.StreamResponse) -> web.StreamResponse:
    """hookgate's name without a version in place of aiohttp's, before `response` is
    prepared: `handle_errors` does it for what a handler returns, a handler that prepares
    a response itself (a stream) before it does. (Not an `on_response_prepare` signal:
    awaiting one costs every answer a coroutine, for a header that every answer gets.)"""
    response.headers["Server"] = SERVER
    return response


# Request ids: this process's random prefix and a counter. Unique per process run and
# cheap (no system call per request, unlike uuid4); they only tie a 500 to its log line.
_PREFIX = os.urandom(6).hex()
_NEXT = itertools.count(1)


def request_id() -> str:
    return f"{_PREFIX}{next(_NEXT):08x}"


LOG_FIELDS = web.RequestKey("log_fields", dict[str, object])


def log_fields(request: web.Request) -> dict[str, object]:
    """Fields a handler adds to the request's one canonical log line."""
    return request[LOG_FIELDS]


@web.middleware
async def handle_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Known errors become their HTTP answer; anything else is logged once and becomes 500.

    Every request ends in exactly one `request_handled` line carrying what the handler
    added through `log_fields` (the event id for an ingest).
    """
    rid = request_id()
    fields: dict[str, object] = {"request_id": rid}
    request[LOG_FIELDS] = fields
    started = time.perf_counter()
    event = "request_handled"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = http_error(exc)
    except ClientDisconnected as exc:
        event = "client_disconnected"  # nobody is left to answer: one info line
        response = error_response(exc, 0)
    except (IngressError, StorageError) as exc:
        response = error_response(exc, request.app[keys.CONFIG].ingest.retry_after)
    except Exception as exc:
        site = logging.crash_site(exc)  # not the message: it may carry request data
        log.error("request_crashed", method=request.method, path=request.path, **site, **fields)
        response = web.json_response({"error": "internal error", "request_id": rid}, status=500)
    if not response.prepared:
        identify(response)
    seconds = time.perf_counter() - started
    _count(request, fields, response.status, seconds)
    line: dict[str, object] = {
        "method": request.method,
        "path": logged_path(request, response.status),
        "status": response.status,
        "duration_ms": round(seconds * 1000, 2),
        "peer": request.remote,
    }
    line.update(fields)
    logging.info(log, event, line)
    return response


def logged_path(request: web.Request, status: int) -> str:
    """The path as the request's line says it (never the query): a 404's only up to its
    first segment (``/in/[redacted]``), and a one-segment 404 whole only when that segment
    is one of the router's own (``/in``, ``/admin``), else ``/[redacted]``. Nothing answers
    to that path, so past the route family it is only what the client typed, perhaps a
    token pasted into a URL."""
    path = request.path
    if status != 404:
        return path
    first, _, rest = path[1:].partition("/")
    if rest:
        return f"/{first}/{REDACTED}"
    if not first or first in own_first_segments(request.app.router):
        return path
    return f"/{REDACTED}{path[1 + len(first) :]}"  # a trailing slash stays


def own_first_segments(router: web.UrlDispatcher) -> set[str]:
    """Each route's first path segment, up to a variable part (``in`` of ``/in/{source}``,
    ``healthz``, a source path's): the router's text, never a client's."""
    return {
        resource.canonical[1:].partition("/")[0].partition("{")[0]
        for resource in router.resources()
    }


def _count(request: web.Request, fields: dict[str, object], status: int, seconds: float) -> None:
    """A request to a source, in the ingest metrics (other paths are not counted)."""
    source = fields.get("source")
    if source is None:
        if status != 404 or not request.path.startswith("/in/"):
            return
        source = UNKNOWN_SOURCE
    metrics = request.app.get(keys.METRICS)
    if metrics is not None:
        result = "duplicate" if fields.get("duplicate") else str(status)
        metrics.request(str(source), result, seconds)
