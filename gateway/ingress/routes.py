"""The public routes: ``/in/<source>``, each source's own path, and the health probes.

With an ``upstream:``, requests that match none of them (outside hookgate's own paths)
pass through to it (gateway/ingress/passthrough.py), and so do methods a source does
not take at its own path: the app keeps answering what it answered before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from uuid import UUID

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import keys
from gateway.config import Config
from gateway.contract.verify import Inbound, Reply
from gateway.errors import (
    Forbidden,
    IngressError,
    MethodNotAllowed,
    UnknownSource,
    VerificationError,
)
from gateway.ingress import proxy, scrape
from gateway.ingress.encoding import inflate
from gateway.ingress.guard import Guard
from gateway.ingress.live import Snapshot
from gateway.ingress.network import client_address, is_in, public_url
from gateway.ingress.request import check_length, read_body, to_record, to_rejected
from gateway.middleware import error_response, identify, log_fields
from gateway.paths import reserved
from gateway.sources import IPNetwork, SourceConfig
from gateway.storage.migrate import latest_version
from gateway.storage.stats import schema_version
from gateway.tracing import NO_SPAN, Ingest


def source_for(request: web.Request, live: Snapshot, name: str | None = None) -> SourceConfig:
    """The source this request is for (by `name`, else ``/in/<source>``), if it takes the method."""
    source = live.config.sources.get(name or request.match_info["source"])
    if source is None:
        raise UnknownSource()
    if request.method not in source.methods:
        raise MethodNotAllowed(f"{request.method} is not accepted here")
    return source


async def expect_continue(
    request: web.Request, name: str | None = None
) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` with 404/405/413 before the client sends the body."""
    live = request.app[keys.LIVE].current
    config = live.config
    try:
        source_for(request, live, name)
        check_length(request, config.server.max_body)
    except IngressError as exc:  # answered past the middleware: named here
        return identify(error_response(exc, config.ingest.retry_after))
    if request.headers.get("Expect", "").lower() != "100-continue":
        return identify(web.json_response({"error": "unsupported Expect header"}, status=417))
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the 100 is not part of the real response
    return None


async def ingest(request: web.Request, name: str | None = None) -> web.Response:
    """Check, verify and store the request; 202 only once it is committed."""
    tracing = request.app.get(keys.TRACING)
    if tracing is None:
        return await _ingest(request, name, None)
    with tracing.ingest(request.headers) as traced:
        try:
            response = await _ingest(request, name, traced)
        except IngressError as exc:
            traced.set("http.response.status_code", exc.status)
            raise
        traced.set("http.response.status_code", response.status)
        return response


async def _ingest(request: web.Request, name: str | None, traced: Ingest | None) -> web.Response:
    app = request.app
    live = app[keys.LIVE].current  # this request's config to the end, whatever a reload does
    source = source_for(request, live, name)
    log_fields(request)["source"] = source.name
    if traced is not None:
        traced.set("hookgate.source", source.name)
    config = live.config
    now = app[keys.CLOCK].now()
    caller = client_address(request, config.server.trusted_proxies)
    guard = live.guards[source.name]
    body, reply = await _admitted(request, config, source, guard, now, caller, traced)
    if source.proxy is not None and reply is None:  # mode: proxy, see gateway/ingress/proxy.py
        return await proxy.answer(request, live, source, source.proxy, body, now, caller, traced)
    content = _routable(request, guard, body, config.server.max_body)
    relay = reply is None
    record = to_record(request, source, body, now, config, caller, relay, content, guard.redaction)
    if traced is not None and traced.started is not None:
        record = replace(record, traceparent=traced.started)
    fields = log_fields(request)
    fields.update(event_type=record.event_type, size=len(body))  # its source is there already
    with NO_SPAN if traced is None else traced.child("commit"):
        stored = await app[keys.INGEST].write(record)
    quoted = _quoted(stored.event_id)
    event_id = quoted[1:-1].decode()
    fields.update(event_id=event_id, deliveries=len(record.deliveries), duplicate=stored.duplicate)
    if traced is not None:
        traced.set("hookgate.event_id", event_id)
        traced.set("hookgate.duplicate", stored.duplicate)
    if reply is not None:
        return _reply(reply)
    if stored.duplicate:
        return web.json_response({"id": event_id, "duplicate": True}, status=200)
    return web.Response(status=202, body=b'{"id": %s}' % quoted, content_type="application/json")


async def _admitted(
    request: web.Request,
    config: Config,
    source: SourceConfig,
    guard: Guard,
    now: dt.datetime,
    caller: str | None,
    traced: Ingest | None = None,
) -> tuple[bytes, Reply | None]:
    """The body, once the request passed the source's checks and verifier (with the
    handshake reply, if it is one); a refused request is recorded, then re-raised."""
    body = b""
    try:
        if source.ip_allowlist and not is_in(caller, source.ip_allowlist):
            raise Forbidden(f"{caller} is not allowed for this source")
        if guard.limiter.limited:
            guard.limiter.check(caller, now.timestamp())
        body = await read_body(request, config.server.max_body, config.server.body_timeout)
        if guard.verifier is None:
            return body, None
        inbound = _inbound(request, body, now, config.server.trusted_proxies)
        with NO_SPAN if traced is None else traced.child("verify"):
            return body, await guard.verifier.verify(inbound)
    except IngressError as exc:
        if isinstance(exc, VerificationError):
            request.app[keys.METRICS].verification_failed(source.name, exc.message)
        if exc.status in (401, 403, 429):
            reason, redaction = exc.message, guard.redaction
            row = to_rejected(
                request, source.name, now, exc.status, reason, body, caller, redaction
            )
            request.app[keys.REJECTIONS].record(row, exc)
        raise


def _routable(request: web.Request, guard: Guard, body: bytes, limit: int) -> bytes:
    """What routing reads: the body with its Content-Encoding undone, when routing
    reads it at all (the wire bytes are what is verified, stored and relayed)."""
    if not guard.reads_body or not body:
        return body
    return inflate(body, request.headers.get("Content-Encoding"), limit)


def _inbound(
    request: web.Request, body: bytes, now: dt.datetime, trusted: Sequence[IPNetwork]
) -> Inbound:
    return Inbound(
        method=request.method,
        url=public_url(request, trusted),
        headers=request.headers,
        query=request.query,
        body=body,
        now=now,
    )


def _quoted(event_id: UUID) -> bytes:
    """``b'"<id>"'``: orjson writes a `uuid.UUID` faster than `str()` does; asyncpg's own
    UUID type (a duplicate's original id comes from the database) it does not take."""
    if type(event_id) is UUID:
        return orjson.dumps(event_id)
    return b'"%s"' % str(event_id).encode()


def _reply(reply: Reply) -> web.Response:
    return web.Response(
        status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers at the schema this hookgate knows and, where this
    process relays, its relay loop runs; a StorageError becomes 503 in the error middleware."""
    schema = await schema_version(request.app[keys.STORE])
    if schema != latest_version():
        return _unready(f"the database is at schema {schema}, not {latest_version()}")
    relay = request.app.get(keys.RELAY)
    if relay is not None and not relay.alive():
        return _unready("the relay loop has stopped")
    return web.json_response({"status": "ready"})


def _unready(error: str) -> web.Response:
    return web.json_response({"status": "unready", "error": error}, status=503)


ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def captured(source: SourceConfig) -> tuple[Handler, ExpectHandler]:
    """The handler and Expect handler for `source` at its own path."""

    async def at_path(request: web.Request) -> web.StreamResponse:
        if request.method not in source.methods and keys.UPSTREAM in request.app:
            return await request.app[keys.UPSTREAM].forward(request)
        return await ingest(request, source.name)

    async def expect_at_path(request: web.Request) -> web.StreamResponse | None:
        if request.method not in source.methods and keys.UPSTREAM in request.app:
            return None  # the pass-through's own Expect handling: 100 Continue
        return await expect_continue(request, source.name)

    return at_path, expect_at_path


async def pass_through(request: web.Request) -> web.StreamResponse:
    """Requests no other route matched, outside hookgate's own paths, go to the upstream."""
    if reserved(request.path):  # hookgate's own, even where no route of ours matched
        return web.json_response({"error": "not found"}, status=404)
    return await request.app[keys.UPSTREAM].forward(request)


def add_pass_through(app: web.Application) -> None:
    """The catch-all route to the upstream. It must be the router's last route (routes are
    tried in order): `create_app` adds it after every other, and a test checks that."""
    app.router.add_route("*", "/{tail:.*}", pass_through, name="pass_through")


def setup(app: web.Application) -> None:
    app.router.add_route("*", "/in/{source}", ingest, expect_handler=expect_continue)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    scrape.setup(app)
    for source in app[keys.CONFIG].sources.values():
        if source.path is not None:
            handler, expect = captured(source)
            app.router.add_route("*", source.path.route(), handler, expect_handler=expect)
