"""Turning an HTTP request into an `EventRecord`: bounded body read, extraction, routing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from gateway.body import parsed
from gateway.config import Config, Routing
from gateway.errors import BadRequest, BodyTooLarge, ClientDisconnected, RequestTimeout
from gateway.ids import delivery_id, event_id
from gateway.ingress.redact import Redaction
from gateway.sources import Extractor, SourceConfig
from gateway.storage.store import EventRecord, RejectedRecord

CHUNK = 64 * 1024
MAX_VALUE = 256  # event types and dedupe keys
SNIPPET = 4096


def check_length(request: web.BaseRequest, limit: int) -> None:
    """Refuse a declared oversize body before reading a byte of it."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is {request.content_length} bytes; the limit is {limit}")


async def read_body(request: web.BaseRequest, limit: int, within: float = 30.0) -> bytes:
    """The whole body as received (still compressed if it was), or `BodyTooLarge` as soon
    as more than `limit` bytes arrived, `RequestTimeout` when it took over `within`
    seconds in all, `ClientDisconnected` when the client hung up before its end, and
    `BadRequest` for a body its framing (chunks, length) does not hold."""
    check_length(request, limit)
    if request.content.is_eof():  # all of it came with the head: no waiting to bound
        return _buffered(request, limit)
    async with bounded(request, within):
        body = await _read(request, limit)
    return body


async def preread(request: web.BaseRequest, within: float = 30.0) -> None:
    """Read the body a handler will take with `request.read()`, `.post()` or `.json()`
    (aiohttp keeps it for them; a multipart form as parsed by `.post()`) within `within`
    seconds, with `read_body`'s errors; its size is aiohttp's `client_max_size` (413
    beyond it)."""
    if request.content.is_eof():
        return  # nothing left to wait for
    async with bounded(request, within):
        if request.content_type == "multipart/form-data":
            await request.post()  # parsed from the stream (read() would leave it empty)
        else:
            await request.read()


@contextlib.asynccontextmanager
async def bounded(
    request: web.BaseRequest, within: float, since: float | None = None
) -> AsyncIterator[None]:
    """A body read within `within` seconds (of `since`, a loop time, when the body is read
    piece by piece; else of now), its failures said as ingress errors."""
    start = asyncio.get_running_loop().time() if since is None else since
    try:
        async with asyncio.timeout_at(start + within):
            yield
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {within:g}s") from None
    except (RequestPayloadError, ConnectionError) as exc:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ClientDisconnected() from exc
        raise BadRequest("malformed request body") from exc


def _buffered(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body, already received: taken from the buffer without awaiting a read."""
    body = request.content.read_nowait()
    if len(body) > limit:
        raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
    return body


async def _read(request: web.BaseRequest, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def extract(extractor: Extractor | None, headers: Mapping[str, str], body: bytes) -> str | None:
    """A value the source says where to find (event type, dedupe key), if it is there."""
    if extractor is None:
        return None
    if extractor.kind == "header":
        value = headers.get(extractor.key)
    else:
        value = _json_field(body, extractor.key)
    # Postgres text cannot hold NUL: one such value must not make the event unstorable.
    return value.replace("\x00", "\ufffd")[:MAX_VALUE] if value else None


event_type = extract  # the name the tests and plugins know it by


def _json_field(body: bytes, path: str) -> str | None:
    value: Any = parsed(body)
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def raw_headers(request: web.BaseRequest) -> list[tuple[str, str]]:
    # latin-1 maps each byte to one code point, so the stored text gives back the bytes.
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]


def to_record(
    request: web.BaseRequest,
    source: SourceConfig,
    body: bytes,
    now: dt.datetime,
    config: Config,
    peer: str | None,
    relay: bool = True,
    content: bytes | None = None,
    redaction: Redaction | None = None,
) -> EventRecord:
    """The request as received, and one delivery per target its routes send it to
    (none when `relay` is False: a handshake is recorded, never relayed).

    `body` is stored as it came over the wire; `content` (the body with its
    Content-Encoding undone, when routing needs it) is what extraction and filters see.
    With `redaction`, credentials are redacted in the stored headers and query.
    """
    seen = body if content is None else content
    kind = extract(source.event_type, request.headers, seen)
    new_id = event_id(now)
    routing = config.route(source.name, kind, request.headers, seen) if relay else None
    targets = list(routing.targets) if routing else []
    dedupe = source.dedupe
    key = extract(dedupe.key, request.headers, seen) if dedupe and relay else None
    decided = _decisions(source, routing)
    return EventRecord(
        id=new_id,
        source=source.name,
        event_type=kind,
        received_at=now,
        method=request.method,
        path=request.rel_url.raw_path,
        query=_query(request, redaction),
        headers=_headers(request, redaction),
        body=body,
        peer=peer,
        deliveries=[(delivery_id(new_id, target), target) for target in targets],
        dedupe_key=key,
        dedupe_until=now + dt.timedelta(seconds=dedupe.window) if key and dedupe else None,
        routes=decided or None,
        ordering=_ordering_keys(config, targets, request.headers, seen),
        delivery_routes=dict(routing.targets) if routing else None,
    )


def _decisions(source: SourceConfig, routing: Routing | None) -> dict[str, object]:
    """What ingest decided, kept with the event (`hookgate.events.routes`): which routes
    matched and which did not, and which verifier let the request in (None: the source
    verifies nothing). The inspector shows these, not what a later config would decide."""
    verified_by = source.verify.type if source.verify is not None else None
    if routing is None:  # a handshake or a proxy source's request: nothing was routed
        return {"verified_by": verified_by} if verified_by else {}
    return {"matched": routing.matched, "unmatched": routing.unmatched, "verified_by": verified_by}


def _headers(request: web.BaseRequest, redaction: Redaction | None) -> Sequence[tuple[str, str]]:
    headers = raw_headers(request)
    return redaction.redact_headers(headers) if redaction else headers


def _query(request: web.BaseRequest, redaction: Redaction | None) -> str:
    query = request.rel_url.raw_query_string
    return redaction.redact_query(query) if redaction else query


def _ordering_keys(
    config: Config, targets: list[str], headers: Mapping[str, str], body: bytes
) -> dict[str, str]:
    """Each FIFO target's key for this event (an event without the key is not ordered)."""
    keys = {}
    for name in targets:
        ordering = config.targets[name].ordering
        key = extract(ordering.key, headers, body) if ordering else None
        if key is not None:
            keys[name] = key
    return keys


def to_rejected(
    request: web.BaseRequest,
    source: str,
    now: dt.datetime,
    status: int,
    reason: str,
    body: bytes,
    peer: str | None,
    redaction: Redaction | None = None,
) -> RejectedRecord:
    return RejectedRecord(
        source=source,
        received_at=now,
        status=status,
        reason=reason,
        method=request.method,
        path=request.rel_url.raw_path,
        query=_query(request, redaction),
        headers=_headers(request, redaction),
        body=body[:SNIPPET],
        peer=peer,
    )
