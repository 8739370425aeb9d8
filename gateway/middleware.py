"""The one error middleware, and the canonical log line per request."""

from __future__ import annotations

import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import keys
from gateway.errors import IngressError, StorageError

log = structlog.get_logger("hookgate.http")


def error_response(exc: Exception, retry_after: int) -> web.Response:
    """The client's answer for an error we expect; nothing internal leaks into it."""
    if isinstance(exc, IngressError):
        response = web.json_response({"error": exc.message}, status=exc.status)
        if exc.status == 413:
            response.force_close()  # do not read (or buffer) the rest of the body
        return response
    if isinstance(exc, StorageError):
        return web.json_response(
            {"error": "temporarily unable to store the request; retry later"},
            status=503,
            headers={"Retry-After": str(retry_after)},
        )
    raise exc


@web.middleware
async def handle_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Known errors become their HTTP answer; anything else is logged once and becomes 500."""
    request_id = uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    except (IngressError, StorageError) as exc:
        response = error_response(exc, request.app[keys.CONFIG].ingest.retry_after)
    except Exception:
        log.exception("request_crashed", method=request.method, path=request.path)
        response = web.json_response(
            {"error": "internal error", "request_id": request_id}, status=500
        )
    log.info(
        "request_handled",
        method=request.method,
        path=request.path,
        status=response.status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        peer=request.remote,
    )
    return response
