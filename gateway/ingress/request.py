"""Turning an HTTP request into an `EventRecord`: bounded body read, event type, routing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from aiohttp import web

from gateway.config import Config, Extractor, SourceConfig
from gateway.errors import BodyTooLarge
from gateway.ids import delivery_id, event_id
from gateway.storage.store import EventRecord

CHUNK = 64 * 1024
MAX_EVENT_TYPE = 256


def check_length(request: web.BaseRequest, limit: int) -> None:
    """Refuse a declared oversize body before reading a byte of it."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is {request.content_length} bytes; the limit is {limit}")


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body, or `BodyTooLarge` as soon as more than `limit` bytes arrived."""
    check_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def event_type(extractor: Extractor | None, headers: Any, body: bytes) -> str | None:
    """The provider's event type, if the source says where it is and it is there."""
    if extractor is None:
        return None
    if extractor.kind == "header":
        value = headers.get(extractor.key)
    else:
        value = _json_field(body, extractor.key)
    # Postgres text cannot hold NUL: one such value must not make the event unstorable.
    return value.replace("\x00", "\ufffd")[:MAX_EVENT_TYPE] if value else None


def _json_field(body: bytes, path: str) -> str | None:
    try:
        value: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return (
        str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
    )


def to_record(
    request: web.BaseRequest, source: SourceConfig, body: bytes, now: dt.datetime, config: Config
) -> EventRecord:
    """The request as received, and one delivery per target its routes send it to."""
    kind = event_type(source.event_type, request.headers, body)
    new_id = event_id(now)
    targets = config.targets_for(source.name, kind)
    return EventRecord(
        id=new_id,
        source=source.name,
        event_type=kind,
        received_at=now,
        method=request.method,
        path=request.rel_url.raw_path,
        query=request.rel_url.raw_query_string,
        # latin-1 maps each byte to one code point, so the stored text gives back the bytes.
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
        body=body,
        peer=request.remote,
        deliveries=[(delivery_id(new_id, target), target) for target in targets],
    )
