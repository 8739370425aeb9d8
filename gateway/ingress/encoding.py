"""Content-Encoding at ingest: the wire bytes are kept; a copy is inflated, bounded.

hookgate stores, verifies and relays a request body exactly as it arrived (aiohttp is
told not to inflate it). Only when routing needs the JSON (a `json:` event type,
dedupe or ordering key, or a filter with a `json:` query) is a copy inflated, here:
incrementally, never past `limit` bytes of output, so a small bomb costs at most
`limit` bytes of memory and is answered 413.

Codings: ``gzip`` (and ``x-gzip``), ``deflate`` (zlib-wrapped, or raw as some senders
do), ``br`` when the `brotli` package is installed (``pip install 'hookgate[br]'``),
``identity``; several, comma-separated, are undone last first. Any other coding is
415; a body that does not decode as its coding says is 400.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from gateway.errors import BadRequest, BodyTooLarge, UnsupportedEncoding


def _brotli_module() -> Any:
    try:
        import brotli
    except ImportError:  # optional: the `br` extra
        return None
    return brotli


brotli = _brotli_module()

CHUNK = 64 * 1024


def codings(content_encoding: str | None) -> list[str]:
    """The codings applied to a body, in the order they were applied."""
    if not content_encoding:
        return []
    found = [part.strip().lower() for part in content_encoding.split(",")]
    return [coding for coding in found if coding and coding != "identity"]


def inflate(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """`body` with its Content-Encoding undone; `BodyTooLarge` past `limit` bytes."""
    data = body
    for coding in reversed(codings(content_encoding)):
        decode = _DECODERS.get(coding)
        if decode is None:
            raise UnsupportedEncoding(_unsupported(coding))
        data = decode(data, limit)
    return data


def _unsupported(coding: str) -> str:
    if coding == "br":
        return "Content-Encoding br needs the brotli package on this hookgate"
    return "unsupported Content-Encoding (hookgate decodes gzip, deflate, br and identity)"


def _gzip(data: bytes, limit: int) -> bytes:
    return _zlib(data, 16 + zlib.MAX_WBITS, limit, "gzip", members=True)


def _deflate(data: bytes, limit: int) -> bytes:
    # RFC 9110 deflate is zlib-wrapped; some senders send a raw deflate stream instead.
    wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return _zlib(data, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, limit, "deflate")


def _zlib(data: bytes, wbits: int, limit: int, coding: str, members: bool = False) -> bytes:
    """Inflate with zlib, producing at most `limit` + 1 bytes whatever the input."""
    out: list[bytes] = []
    size = 0
    decoder = zlib.decompressobj(wbits)
    pending = data
    try:
        while True:
            chunk = decoder.decompress(pending, limit + 1 - size)
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            out.append(chunk)
            if decoder.eof:
                if not decoder.unused_data:
                    break
                if not members:
                    raise _broken(coding)
                pending, decoder = decoder.unused_data, zlib.decompressobj(wbits)  # next member
                continue
            pending = decoder.unconsumed_tail
            if not pending and not chunk:
                raise _broken(coding)  # the input ended before the stream did
    except zlib.error:
        raise _broken(coding) from None
    return b"".join(out)


def _brotli(data: bytes, limit: int) -> bytes:
    out: list[bytes] = []
    size = 0
    decoder = brotli.Decompressor()
    pending = data
    try:
        while True:
            chunk = decoder.process(pending, output_buffer_limit=limit + 1 - size)
            pending = b""
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            out.append(chunk)
            if decoder.is_finished():
                return b"".join(out)
            if decoder.can_accept_more_data():
                raise _broken("br")  # it wants more input than the body holds
    except brotli.error:
        raise _broken("br") from None


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"the body inflates to more than the limit of {limit} bytes")


def _broken(coding: str) -> BadRequest:
    return BadRequest(f"the body does not decode as its Content-Encoding {coding}")


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    **({"br": _brotli} if brotli is not None else {}),
}
