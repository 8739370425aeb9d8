"""hookgate's one HTTP/1.1 client: a keep-alive pool per origin, bodies streamed both ways.

aiohttp's `ClientSession` is built for any site on the web (cookies, redirects,
decompression, auth, proxies, tracing); a reverse proxy or a relay talking to known
origins pays for all of it on every request. `Pool` is an `asyncio.Protocol` that writes
the request head by hand and parses the answer with aiohttp's C parser (llhttp), and
does nothing else. It is the pass-through's client to the upstream
(gateway/ingress/passthrough.py); `HttpClient` (below) is the delivery client the relay's
http targets send through (`Resources.client`), one `Pool` per origin:

    pool = Pool("http://app:8000", connections=100)
    response = await pool.request("POST", "/orders?x=1", [("Host", "app")], b"{}")
    async for chunk in response.iter_chunks():  # or: body = await response.read()
        ...
    await pool.close()

* The hop is the client's: the caller's Connection, Keep-Alive, TE, Upgrade,
  Transfer-Encoding and Content-Length headers are dropped and the framing set from the
  body: `bytes` go with a Content-Length, an async iterable with `length=` streams with
  that Content-Length (and fails if the iterable gives another number of bytes), one
  without it is sent chunked, None sends no body. Host is the origin's unless given.
  A line break in the request line or a header, or a colon in a header's name, is a
  `ValueError` before anything is sent.
* `request` returns once the answer's head is in; the caller reads the body. The
  connection goes back to the pool when the body was read to its end, the request body
  was all sent, and neither side said `Connection: close`; `release()` before that
  closes it instead. An idle connection is closed after `keepalive` seconds.
* Flow control both ways: a body's writer waits while the socket's buffer is full, and
  the socket stops being read while more than 2x `read_buffer` of the answer waits.
* `timeout=` bounds the origin's time, each wait on its own: getting a connection (a
  free one from the pool, or a new one), each wait for the origin to take more of a
  streamed body, and the wait for the answer's head after the request's last byte went
  out; waiting for the caller's body iterable to give its next chunk does not count.
  When one runs out: `TimedOut` (also a `TimeoutError`). Reading the body is bounded by
  the caller. A request cancelled before its answer closes its connection.
* An idempotent request without a streamed body is sent once more, on a new
  connection, when a kept-alive connection closed before any byte of the answer (the
  origin closed it as it was being reused).
* https origins are verified with `ssl.create_default_context()` (the system's trust
  store) unless an `ssl=` context is given.
* Every failure is an `HTTPClientError`: `TimedOut`, `ConnectFailed` (refused, DNS, TLS),
  `Disconnected` (closed before the answer's head), `BodyFailed` (the request body's
  own source raised; it is the cause), `CutShort` (the answer ended before its end),
  `BadAnswer` (the origin's bytes are not HTTP/1.1).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl as ssl_module
import sys
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import HttpResponseParser, RawResponseMessage
from aiohttp.http_parser import HttpParser
from aiohttp.streams import EMPTY_PAYLOAD
from multidict import CIMultiDictProxy
from yarl import URL

READ_BUFFER = 64 * 1024
# The hop's own headers: the client decides them (framing from the body, keep-alive).
_HOP = frozenset(
    {"connection", "keep-alive", "te", "upgrade", "transfer-encoding", "content-length"}
)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_CHUNK_END = b"\r\n"
_LAST_CHUNK = b"0\r\n\r\n"

Body = bytes | AsyncIterable[bytes] | None


class HTTPClientError(Exception):
    """The request to the origin failed."""


class TimedOut(HTTPClientError, TimeoutError):
    """The origin did not answer in time."""


class ConnectFailed(HTTPClientError):
    """Could not connect to the origin (refused, DNS, TLS)."""


class Disconnected(HTTPClientError):
    """The connection closed before the answer's head arrived."""


class BodyFailed(HTTPClientError):
    """The request body's source failed while it was being sent."""


class CutShort(HTTPClientError):
    """The answer's body ended before its end."""


class BadAnswer(HTTPClientError):
    """The origin's answer is not valid HTTP/1.1."""


class Response:
    """An answer's head, and its body as a stream to read once."""

    __slots__ = ("_conn", "_payload", "headers", "reason", "status")

    def __init__(
        self, message: RawResponseMessage, payload: StreamReader, conn: _Connection
    ) -> None:
        self.status: int = message.code
        self.reason: str = message.reason
        self.headers: CIMultiDictProxy[str] = message.headers
        self._payload = payload
        self._conn: _Connection | None = conn

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    async def read(self) -> bytes:
        """The whole body (for answers known to be small)."""
        try:
            body = self._buffered()
            return body if body is not None else await self._payload.read()
        finally:
            self.release()

    def _buffered(self) -> bytes | None:
        """The whole body when all of it is in already (no wait, no loop), else None."""
        payload = self._payload
        if payload.is_eof() and payload.exception() is None:
            return payload.read_nowait()
        return None

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces as they arrive (at most 2x `read_buffer` held at once)."""
        try:
            while chunk := await self._payload.readany():
                yield chunk
        finally:
            self.release()

    def release(self) -> None:
        """Done with the answer: its connection goes back to the pool if the body was
        read to its end, else it is closed. Idempotent."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finish(reusable=self._payload.is_eof() and self._payload.exception() is None)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class _Connection(BaseProtocol):
    """One connection to the origin, carrying one exchange at a time."""

    def __init__(self, pool: Pool) -> None:
        super().__init__(asyncio.get_running_loop())
        self.pool = pool
        self.head: asyncio.Future[Response] | None = None
        self.payload: StreamReader | None = None
        self.writer: asyncio.Task[None] | None = None
        self.keep = True  # neither side said Connection: close
        self.answered = False  # a byte of the current answer arrived
        self.reused = False
        self.idle_since = 0.0
        self.lost = False
        self.timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._spare: HttpParser[Any] | None = None  # llhttp takes message after message
        self.head_only = False  # the exchange is a HEAD: its parser expects no body
        self.counted = False  # in the pool's count (a connect cancelled half-way is not)

    # -- asyncio.Protocol

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        parser, self._parser = self._parser, None
        payload, self.payload = self.payload, None
        if parser is not None:
            if exc is not None and payload is not None and not payload.is_eof():
                payload.set_exception(CutShort(_lost(exc)))  # a reset is never a clean end
            try:
                parser.feed_eof()  # an answer read until the connection's end ends here
            except Exception as error:
                if payload is not None:
                    payload.set_exception(CutShort(str(error)))
        if payload is not None and not payload.is_eof():
            payload.set_exception(CutShort(_lost(exc)))
        if self.head is not None and not self.head.done():
            self.head.set_exception(Disconnected(_lost(exc)))
        if self.writer is not None:
            self.writer.cancel()
        self.disarm()
        super().connection_lost(exc)
        self.pool._lost(self)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            if data and self.transport is not None:
                self.transport.abort()  # bytes nobody asked for: this connection is unsafe
            return
        self.answered = self.answered or bool(data)
        try:
            messages, _, _ = parser.feed_data(data)
        except Exception as exc:
            self._fail(BadAnswer(f"{type(exc).__name__}: {exc}"))
            return
        for message, payload in messages:
            if 100 <= message.code < 200 and message.code != 101:
                continue  # 103 Early Hints and the like: the answer is still to come
            self._answer(message, payload)

    def resume_reading(self, resume_parser: bool = True) -> None:
        if self._reading_paused:  # the stream calls this after every read
            super().resume_reading(resume_parser)

    # -- one exchange

    def begin(self, head_only: bool) -> asyncio.Future[Response]:
        spare, self._spare = self._spare, None
        self.head_only = head_only
        self._parser = (
            spare
            if spare is not None and not head_only
            else HttpResponseParser(
                self,
                self._loop,
                self.pool.read_buffer,
                payload_exception=CutShort,
                response_with_body=not head_only,
                read_until_eof=True,
                auto_decompress=False,
            )
        )
        self.answered = False
        self.head = self._loop.create_future()
        return self.head

    def _answer(self, message: RawResponseMessage, payload: StreamReader) -> None:
        if self.head is None or self.head.done():
            self._fail(BadAnswer("an answer nobody asked for"))
            return
        self.disarm()
        self.keep = self.keep and not message.should_close and message.code != 101
        if message.code in (204, 304) or payload is EMPTY_PAYLOAD:
            payload = EMPTY_PAYLOAD
        else:
            self.payload = payload
        self.head.set_result(Response(message, payload, self))

    def arm(self) -> None:
        """Start (or restart) the clock on the origin, until the answer's head is in."""
        if self.timeout is not None and self.head is not None and not self.head.done():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(self.timeout, self._timed_out)

    def disarm(self) -> None:
        """Stop the clock: waiting for someone other than the origin."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(TimedOut(f"no answer within {self.timeout:g}s"))

    def _fail(self, exc: HTTPClientError) -> None:
        self.disarm()
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
        if self.payload is not None and not self.payload.is_eof():
            self.payload.set_exception(exc)
        self.abort()

    def send(self, head: bytes, body: Body, length: int | None) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise Disconnected("the connection closed before the request was sent")
        self.arm()
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
            return
        transport.write(head)
        self.writer = asyncio.create_task(self._stream(body, length))

    async def _stream(self, body: AsyncIterable[bytes], length: int | None) -> None:
        sent = 0
        try:
            self.disarm()
            async for chunk in body:
                if not chunk:
                    continue
                self.arm()
                sent += len(chunk)
                if length is not None and sent > length:
                    raise ValueError(f"the body is longer than its length, {length}")
                await self._write(chunk, length is None)
                self.disarm()
            self.arm()  # the whole request is out: the wait for the answer starts now
            if length is not None and sent != length:
                raise ValueError(f"the body ended after {sent} of {length} bytes")
            if length is None:
                await self._write(b"", True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc if isinstance(exc, HTTPClientError) else BodyFailed(str(exc))
            if error is not exc:
                error.__cause__ = exc
            self._fail(error)

    async def _write(self, chunk: bytes, chunked: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise Disconnected("the connection closed while the body was being sent")
        if not chunked:
            transport.write(chunk)
        elif chunk:
            transport.writelines([b"%x\r\n" % len(chunk), chunk, _CHUNK_END])
        else:
            transport.write(_LAST_CHUNK)
        await self._drain_helper()

    def finish(self, reusable: bool) -> None:
        """The caller is done with the answer."""
        self.disarm()
        parser, self._parser = self._parser, None
        self.payload = None
        self.head = None
        writer, self.writer = self.writer, None
        if writer is not None and not writer.done():
            writer.cancel()  # the origin answered before taking the whole body
            reusable = False
        if reusable and self.keep and not self.lost and not self._reading_paused:
            if not self.head_only:
                self._spare = parser
            self.pool._idle_again(self)
        elif reusable and self.transport is not None:
            self.transport.close()  # a whole exchange, then Connection: close
        else:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def usable(self, now: float) -> bool:
        transport = self.transport
        return (
            not self.lost
            and transport is not None
            and not transport.is_closing()
            and now - self.idle_since < self.pool.keepalive
        )


class Pool:
    """Keep-alive connections to one origin (``http://host:port`` or ``https://...``)."""

    def __init__(
        self,
        url: str,
        *,
        connections: int = 100,
        read_buffer: int = READ_BUFFER,
        keepalive: float = 15.0,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        origin = URL(url)
        if origin.scheme not in ("http", "https") or not origin.raw_host:
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        self.host = origin.raw_host
        self.port = origin.port or (443 if origin.scheme == "https" else 80)
        self.authority = origin.raw_authority
        self.ssl: ssl_module.SSLContext | None = None
        if origin.scheme == "https":
            self.ssl = ssl or _default_context()
        self.limit = connections
        self.read_buffer = read_buffer
        self.keepalive = keepalive
        self.opened = 0  # connections made since the pool started (reuse shows as few)
        self._idle: list[_Connection] = []  # most recently used last
        self._count = 0  # open or opening
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: Body = None,
        *,
        length: int | None = None,
        # Not asyncio.timeout: this bounds each wait on the origin, not the whole call.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Response:
        """Send one request (`target`: the raw path and query) and return its answer's
        head; the body is then read from the response, which must be released."""
        head = _head(method, target, headers, self.authority, body, length)
        retry = method in _IDEMPOTENT and (body is None or isinstance(body, bytes))
        while True:
            conn = self._reuse() or await self._get(timeout)
            conn.timeout = timeout
            try:
                answer = conn.begin(head_only=method == "HEAD")
                conn.send(head, body, length)
                return await answer
            except Disconnected:
                conn.abort()
                if not (retry and conn.reused and not conn.answered):
                    raise
                retry = False
            except BaseException:
                conn.abort()
                raise

    async def close(self) -> None:
        """Close every idle connection now and each busy one when its caller is done."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.abort()
        await asyncio.sleep(0)  # let the transports finish closing

    @property
    def idle(self) -> int:
        return len(self._idle)

    def _reuse(self) -> _Connection | None:
        """The most recently used idle connection that is still good (no await); those
        found gone or idle too long on the way are closed."""
        while self._idle and not self._closed:
            conn = self._idle.pop()
            if conn.usable(conn._loop.time()):
                conn.reused = True
                return conn
            conn.abort()
        return None

    async def _get(self, timeout: float | None) -> _Connection:  # noqa: ASYNC109 (as request's)
        """A connection (a new one, or one freed meanwhile) within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                return await self._acquire()
        except TimeoutError:
            raise TimedOut(f"no connection within {timeout:g}s") from None

    async def _acquire(self) -> _Connection:
        if self._closed:
            raise HTTPClientError("the pool is closed")
        if conn := self._reuse():
            return conn
        if self._count < self.limit:
            return await self._connect()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken, then cancelled: the next waiter gets the turn
            else:
                self._waiters.remove(waiter)
            raise
        return await self._acquire()

    async def _connect(self) -> _Connection:
        self._count += 1
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(self), self.host, self.port, ssl=self.ssl
            )
        except OSError as exc:
            self._count -= 1
            self._wake()
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._count -= 1
            self._wake()
            raise
        conn.counted = True
        self.opened += 1
        return conn

    def _idle_again(self, conn: _Connection) -> None:
        if self._closed:
            conn.abort()
            return
        conn.idle_since = conn._loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = conn._loop.call_later(self.keepalive, self._sweep)
        self._wake()

    def _sweep(self) -> None:
        """Close connections idle for `keepalive` seconds; look again while any are left."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle and not self._idle[0].usable(now):  # the least recently used first
            self._idle.pop(0).abort()
        if self._idle:
            wait = self.keepalive - (now - self._idle[0].idle_since)
            self._sweeper = loop.call_later(wait, self._sweep)

    def _lost(self, conn: _Connection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)
        if conn.counted:
            conn.counted = False
            self._count -= 1
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _head(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    authority: str,
    body: Body,
    length: int | None,
) -> bytes:
    """The request line and headers, framing included, as bytes."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    host = False
    for name, value in headers:
        lower = name.lower()
        if lower in _HOP:
            continue
        host = host or lower == "host"
        if ":" in name:
            raise ValueError(f"header {name!r} has a colon in its name")
        lines.append(f"{name}: {value}\r\n")
    if not host:
        lines.append(f"Host: {authority}\r\n")
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif body is not None:
        lines.append(
            "Transfer-Encoding: chunked\r\n" if length is None else f"Content-Length: {length}\r\n"
        )
    lines.append("\r\n")
    text = "".join(lines)
    # One line per item: a CR or LF inside a name, value or target would start another.
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("a line break (CR or LF) in the request line or a header")
    return text.encode("utf-8", "surrogateescape")


@functools.cache
def _default_context() -> ssl_module.SSLContext:
    """The system's trust store, loaded once for every pool (loading it is not cheap)."""
    return ssl_module.create_default_context()


def _lost(exc: BaseException | None) -> str:
    if exc is None:
        return "the origin closed the connection"
    return f"the connection was lost: {type(exc).__name__}: {exc}"


# -- deliveries: HttpClient, a Pool per origin --------------------------------------------

KEEP_ALIVE = 15.0  # seconds an idle delivery connection stays in its pool
# An answer longer than what the caller keeps is still read to its end (to reuse the
# connection) when at most this much is left; past that the connection is closed.
DRAIN = 65536
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "DELETE"})


class AnswerTooLarge(HTTPClientError):
    """The target's answer is over the limit the caller gave."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the target answered: its status, headers as received, and body bytes (the
    first `keep` bytes, or the whole body when the request gave a `limit`)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


class HttpClient:
    """The delivery client: one `Pool` per origin (scheme, host, port), made on first use;
    `close` when done.

    Per request: ``Host`` (the caller's first, else the URL's), ``Accept: */*`` and,
    with a body or a method that takes one, ``Content-Type: application/octet-stream``
    when the caller set none and a ``Content-Length``. No ``Accept-Encoding`` unless the
    caller sends one, and a body is never decoded: the answer's bytes are the wire
    bytes, as the relay stores them. No redirects, cookies or proxies; https is verified
    with the system's trust store (or `ssl_context`). The pools set no connection limit
    (each target's concurrency is the limit) and close a connection idle `KEEP_ALIVE`
    seconds.

    Timeouts are the caller's (``asyncio.timeout`` around `request`): a request
    cancelled mid-way closes its connection instead of returning it to the pool.

    Errors are the standard library's: `socket.gaierror` (the name does not resolve),
    `ssl.SSLError` (TLS), `ConnectionError` / `OSError` (refused, reset, closed before
    the answer was complete), and `BadAnswer` (not HTTP/1.x) or `AnswerTooLarge` (over
    `limit`).
    """

    def __init__(self, ssl_context: ssl_module.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int | None], Pool] = {}
        self._closed = False

    async def request(
        self,
        method: str,
        url: URL,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        keep: int = 4096,
        limit: int | None = None,
    ) -> Answer:
        """Send one request and read the answer: its first `keep` bytes, or with `limit`
        the whole body (`AnswerTooLarge` past it)."""
        if self._closed:
            raise ConnectionError("the client is closed")
        key = (url.scheme, url.raw_host or "", url.port)
        pool = self._pools.get(key) or self._pool(url, key)
        sends = bool(body) or method not in _BODYLESS_METHODS
        try:
            response = await pool.request(
                method,
                url.raw_path_qs or "/",
                _headers(headers, pool.authority, sends),
                body if sends else None,
            )
            try:
                data = _ready(response, keep, limit)
                if data is None:
                    data = await _body(response, keep, limit)
                return Answer(response.status, tuple(response.headers.items()), data)
            finally:
                response.release()
        except ConnectFailed as exc:
            cause = exc.__cause__
            raise (cause if isinstance(cause, OSError) else ConnectionError(str(exc))) from None
        except (Disconnected, CutShort) as exc:
            raise ConnectionResetError(str(exc)) from exc
        except (BadAnswer, AnswerTooLarge):
            raise
        except HTTPClientError as exc:  # the pool is closed
            raise ConnectionError(str(exc)) from exc

    async def close(self) -> None:
        """Close every idle connection; connections in use close when their request ends."""
        self._closed = True
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.close()

    def _pool(self, url: URL, key: tuple[str, str, int | None]) -> Pool:
        pool = Pool(str(url.origin()), connections=sys.maxsize, keepalive=KEEP_ALIVE, ssl=self._ssl)
        self._pools[key] = pool
        return pool


def _headers(headers: Sequence[tuple[str, str]], host: str, sends: bool) -> list[tuple[str, str]]:
    """A delivery's headers: Host first (the caller's first one, else the URL's), Accept
    and Content-Type filled in. The caller's framing headers go on to the Pool, which
    drops them and sets its own."""
    out = [("Host", host)]
    given = accept = content_type = False
    for name, value in headers:
        lower = name.lower()
        if lower == "host":
            if not given:
                out[0], given = (name, value), True
            continue
        accept = accept or lower == "accept"
        content_type = content_type or lower == "content-type"
        out.append((name, value))
    if not accept:
        out.append(("Accept", "*/*"))
    if sends and not content_type:
        out.append(("Content-Type", "application/octet-stream"))
    return out


def _ready(response: Response, keep: int, limit: int | None) -> bytes | None:
    """What `_body` answers, when the whole body came with the head (the usual small
    answer: no await); None otherwise."""
    data = response._buffered()
    if data is None:
        return None
    if limit is None:
        return data[:keep] if len(data) > keep else data
    if len(data) > limit:
        raise AnswerTooLarge(f"the answer is over {limit} bytes")
    return data


async def _body(response: Response, keep: int, limit: int | None) -> bytes:
    """The answer's first `keep` bytes (the rest read if at most `DRAIN` is left, so the
    connection is reused), or with `limit` the whole body."""
    payload = response._payload
    cap = keep if limit is None else limit
    length = response.content_length
    if limit is not None and length is not None and length > limit:
        raise AnswerTooLarge(f"the answer is over {limit} bytes")
    body = bytearray()
    total = 0
    while chunk := await payload.readany():
        total += len(chunk)
        if total > cap and limit is not None:
            raise AnswerTooLarge(f"the answer is over {limit} bytes")
        if len(body) < cap:
            body += chunk[: cap - len(body)]
        if total >= cap and (length - total if length is not None else total - cap) > DRAIN:
            break  # too much left to read through: release() closes the connection
    return bytes(body)
