"""Pass-through: whatever matches no source and no hookgate route goes to the upstream.

Any method, streamed both ways (the request body is sent to the upstream as it arrives,
the answer is written to the client as it arrives; nothing is buffered whole), over a
keep-alive pool of its own (gateway/contract/httpclient.py: no decompression, so bytes pass
unchanged). Websocket upgrades are proxied message by message over an aiohttp session
(gateway/ingress/websocket.py).

* ``upstream.timeout`` bounds the connection, each wait for the upstream to take more of
  the body, and the wait for the answer's first byte after the request's last byte went
  out: 504 (waiting for a slow client's next chunk does not count). A refused connection
  (or DNS, TLS failure) is 502. Both are JSON ``{"error": ...}`` and logged on the
  request's line. A body of up to 64 KiB with a Content-Length is read first and sent in
  one piece, and so is an answer like that: what makes small requests cheap.
* The whole body must arrive within ``server.body_timeout``, as at hookgate's own routes
  (streamed or not; a trickle as well as a stall): else 408 and the connection closed, the
  upstream's request aborted, ``upstream_error: body_timeout`` on the line. A client that
  hangs up mid-body is one ``client_disconnected`` line, as at ``/in/``.
* ``upstream.max_body`` is the pass-through's own limit (none by default), not the
  webhook one: 413, decided from Content-Length or while streaming.
* Nothing is stored or relayed. Each request is one ``request_handled`` line (method,
  path (a 404's as `gateway.middleware.logged_path` cuts it), status, duration,
  ``passthrough: true``; never query values or headers) and counted in `Counts`, for an
  exporter to read.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from yarl import URL

from gateway.contract import httpclient
from gateway.errors import IngressError, RequestTimeout
from gateway.ingress import forwarded, websocket
from gateway.ingress.request import bounded
from gateway.logging import crash_site
from gateway.middleware import identify, log_fields
from gateway.sources import IPNetwork
from gateway.upstream import UpstreamConfig

CHUNK = 64 * 1024
# A body up to this size with a Content-Length is read whole and sent in one write, not
# as a streamed payload: what makes small requests cheap.
SMALL = 64 * 1024


@dataclass
class Counts:
    """What went through, since the process started (an in-process count)."""

    requests: int = 0
    websockets: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # refused, timeout, too_large, ...


class _TooLarge(Exception):
    """The request body is over upstream.max_body."""


class PassThrough:
    """Forwards requests to the upstream over `pool` (gateway/contract/httpclient.py), and
    websockets over `session` (aiohttp's client speaks the websocket protocol)."""

    def __init__(
        self,
        config: UpstreamConfig,
        pool: httpclient.Pool,
        session: aiohttp.ClientSession,
        trusted: Sequence[IPNetwork],
        counts: Counts | None = None,
        body_timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.pool = pool
        self.session = session
        self.trusted = trusted
        self.counts = counts or Counts()
        self.body_timeout = body_timeout  # server.body_timeout: the whole body, as at /in/

    def url(self, request: web.BaseRequest) -> URL:
        """The upstream URL for `request`: the same raw path and query."""
        return URL(f"{self.config.url}{request.rel_url.raw_path_qs}", encoded=True)

    async def forward(self, request: web.Request) -> web.StreamResponse:
        self.counts.requests += 1
        log_fields(request)["passthrough"] = True
        if websocket.is_upgrade(request):
            self.counts.websockets += 1
            headers = forwarded.to_upstream(request, self.trusted, self.config.host, True)
            response = await websocket.proxy(
                request, self.session, self.url(request), headers, self.config.timeout
            )
        else:
            response = await self._http(request)
        self.counts.by_status[response.status] += 1
        return response

    async def _http(self, request: web.Request) -> web.StreamResponse:
        limit, length = self.config.max_body, request.content_length
        if limit is not None and (length or 0) > limit:
            return self._failed(request, 413, "too_large", f"Content-Length over {limit}")
        body: bytes | AsyncIterator[bytes] | None = None
        since = asyncio.get_running_loop().time()  # the body's deadline counts from here
        if length is not None and length <= SMALL:
            try:
                async with bounded(request, self.body_timeout):
                    body = await _read(request, length)
            except asyncio.IncompleteReadError:
                return web.json_response({"error": "the request body ended early"}, status=400)
            except RequestTimeout as exc:
                return self._late(request, exc)
        elif request.body_exists:
            body = self._body(request, since)
        headers = forwarded.upstream_pairs(request, self.trusted, self.config.host)
        started = time.perf_counter()
        try:
            upstream = await self.pool.request(
                request.method, request.rel_url.raw_path_qs, headers, body,
                length=length, timeout=self.config.timeout,
            )  # fmt: skip
        except httpclient.TimedOut:
            seconds = f"{self.config.timeout:g}s"
            return self._failed(request, 504, "timeout", f"no answer within {seconds}")
        except httpclient.HTTPClientError as exc:
            cause = exc.__cause__
            if isinstance(cause, _TooLarge):
                return self._failed(request, 413, "too_large", f"the body is over {limit} bytes")
            if isinstance(cause, RequestTimeout):
                return self._late(request, cause)
            if isinstance(cause, IngressError):
                raise cause from None  # the client's doing (it hung up, bad chunks): as at /in/
            kind = "refused" if isinstance(exc, httpclient.ConnectFailed) else "failed"
            return self._failed(request, 502, kind, exc)
        log_fields(request)["upstream_ms"] = round((time.perf_counter() - started) * 1000, 2)
        try:
            return await self._answer(request, upstream)
        finally:
            upstream.release()

    async def _body(self, request: web.Request, since: float) -> AsyncIterator[bytes]:
        size, limit = 0, self.config.max_body
        while True:
            async with bounded(request, self.body_timeout, since):  # not across the yield
                chunk = await request.content.read(CHUNK)
            if not chunk:
                return
            size += len(chunk)
            if limit is not None and size > limit:
                raise _TooLarge()
            yield chunk

    async def _answer(
        self, request: web.Request, upstream: httpclient.Response
    ) -> web.StreamResponse:
        """The upstream's answer, written to the client as it arrives (a small one with a
        Content-Length in one write, with its headers)."""
        if _whole(request, upstream):
            headers = forwarded.to_client(upstream.headers)
            headers.popall("Content-Length", None)  # aiohttp sets it from the body
            try:
                body = await upstream.read()
            except httpclient.HTTPClientError as exc:
                return self._failed(request, 502, "cut_short", exc)
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers, body=body
            )
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=forwarded.to_client(upstream.headers),
        )
        await identify(response).prepare(request)
        try:
            async for chunk in upstream.iter_chunks():
                await response.write(chunk)
        except (httpclient.HTTPClientError, OSError) as exc:
            # Cut short (by the upstream, or the client went away): abort rather than end
            # the answer as if it were whole.
            log_fields(request).update(upstream_error="cut_short", **_described(exc))
            self.counts.failures["cut_short"] += 1
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

    def _late(self, request: web.Request, exc: RequestTimeout) -> web.Response:
        """408: the body did not arrive within server.body_timeout (told as at /in/)."""
        return self._failed(request, 408, "body_timeout", exc.message, exc.message)

    def _failed(
        self,
        request: web.Request,
        status: int,
        kind: str,
        detail: str | BaseException,
        error: str = "",
    ) -> web.Response:
        """A JSON error for the client (`error`, else `failure_message`); the detail (it may
        name internal hosts) is logged."""
        self.counts.failures[kind] += 1
        described = {"upstream_detail": detail} if isinstance(detail, str) else _described(detail)
        log_fields(request).update(upstream_error=kind, **described)
        error = error or failure_message(status, self.config)
        response = web.json_response({"error": error}, status=status)
        if status in (408, 413):
            response.force_close()  # do not read the rest of what we refused
        return response


# Failures whose text is hookgate's own, around the OS's error for the connection to the
# configured upstream: no byte of the request or of the answer in it.
_OWN_TEXT = (httpclient.TimedOut, httpclient.ConnectFailed, httpclient.Disconnected, OSError)


def _described(exc: BaseException) -> dict[str, object]:
    """A failure for the request's line: a connection failure's class and message as
    ``upstream_detail``; else its type there and its places as ``upstream_frames``
    (`crash_site`), not its message: a malformed or cut answer's quotes the upstream's
    bytes (which may echo the request), a failed body's is whatever its reader raised."""
    if isinstance(exc, _OWN_TEXT):
        return {"upstream_detail": f"{type(exc).__name__}: {exc}"}
    site = crash_site(exc)  # under the line's own names: `error` is the handler's
    return {"upstream_detail": site["error"], "upstream_frames": site["frames"]}


async def _read(request: web.Request, length: int) -> bytes:
    """A small body of `length` bytes (all of it is usually in already)."""
    content = request.content
    if content.is_eof() and content.exception() is None:
        return content.read_nowait()
    return await content.readexactly(length) if length else b""


def _whole(request: web.Request, upstream: httpclient.Response) -> bool:
    """Whether the answer is small and has a body as long as its Content-Length says."""
    bodiless = request.method == "HEAD" or upstream.status in (204, 304)
    length = upstream.content_length
    return not bodiless and length is not None and length <= SMALL


def failure_message(status: int, config: UpstreamConfig) -> str:
    """What the client is told: no internal host names, no exception text."""
    if status == 413:
        return f"the request body is over the limit of {config.max_body} bytes"
    if status == 504:
        return f"the upstream did not answer within {config.timeout:g}s"
    return "the upstream is unreachable"
