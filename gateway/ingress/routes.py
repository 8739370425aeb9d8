"""The public routes: ``/in/<source>`` and the health probes."""

from __future__ import annotations

from aiohttp import web

from gateway import keys
from gateway.config import SourceConfig
from gateway.errors import IngressError, MethodNotAllowed, UnknownSource
from gateway.ingress.request import check_length, read_body, to_record
from gateway.middleware import error_response, log_fields


def source_for(request: web.Request, app: web.Application) -> SourceConfig:
    source = app[keys.CONFIG].sources.get(request.match_info["source"])
    if source is None:
        raise UnknownSource()
    if request.method not in source.methods:
        raise MethodNotAllowed(f"{request.method} is not accepted here")
    return source


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` with 404/405/413 before the client sends the body."""
    config = request.app[keys.CONFIG]
    try:
        source_for(request, request.app)
        check_length(request, config.server.max_body)
    except IngressError as exc:
        return error_response(exc, config.ingest.retry_after)
    if request.headers.get("Expect", "").lower() != "100-continue":
        return web.json_response({"error": "unsupported Expect header"}, status=417)
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the 100 is not part of the real response
    return None


async def ingest(request: web.Request) -> web.Response:
    """Store the request and its deliveries; 202 only once they are committed."""
    app = request.app
    source = source_for(request, app)
    config = app[keys.CONFIG]
    body = await read_body(request, config.server.max_body)
    record = to_record(request, source, body, app[keys.CLOCK].now(), config)
    event_id = str(record.id)
    log_fields(request).update(
        event_id=event_id,
        source=source.name,
        event_type=record.event_type,
        size=len(body),
        deliveries=len(record.deliveries),
    )
    await app[keys.INGEST].write(record)
    return web.Response(
        status=202, body=b'{"id": "%s"}' % event_id.encode(), content_type="application/json"
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers; a StorageError becomes 503 in the error middleware."""
    await request.app[keys.STORE].ping()
    return web.json_response({"status": "ready"})


def setup(app: web.Application) -> None:
    app.router.add_route("*", "/in/{source}", ingest, expect_handler=expect_continue)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
