"""A small HTTP/1.1 client for sending deliveries: keep-alive pools, one write per request.

Targets send through it instead of `aiohttp.ClientSession`: per request it builds the
head as one string, writes head and body together, and parses the answer in
`data_received` (status line, headers, a Content-Length or chunked body). That is a
fraction of the CPU of a ClientSession request (no request and response objects, no
multidicts, no tracing hooks, no payload registry, no timer per request), which is most
of what a relay spends per delivery.

What it keeps of a ClientSession's behaviour: a keep-alive pool per origin (scheme,
host, port), idle connections closed after `KEEP_ALIVE` seconds, TLS verified with the
system's trust store, no redirects followed, no cookies, no proxy (hookgate's session
never read proxy settings from the environment either), ``Host``, ``Accept: */*`` and
``Content-Length`` added, ``Content-Type: application/octet-stream`` when the caller
set none. It sends no ``Accept-Encoding`` unless the caller does, and never decodes a
body: the answer's bytes are the wire bytes, as the relay stores them.

Timeouts are the caller's (``asyncio.timeout`` around `HttpClient.request`): a request
cancelled mid-way closes its connection instead of returning it to the pool.

Errors are the standard library's: `socket.gaierror` (the name does not resolve),
`ssl.SSLError` (TLS), `ConnectionError` / `OSError` (refused, reset, closed before the
answer was complete), and `BadAnswer` (not HTTP/1.x) or `AnswerTooLarge` (over `limit`).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

from yarl import URL

KEEP_ALIVE = 15.0  # seconds an idle connection stays in the pool (aiohttp's default)
MAX_HEAD = 65536  # bytes of status line and headers
# An answer longer than what the caller keeps is still read to its end (to reuse the
# connection) when at most this much is left; past that the connection is closed.
DRAIN = 65536
_NO_BODY = frozenset({204, 304})
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "DELETE"})
_OWN = frozenset({"host", "content-length", "transfer-encoding"})  # set here, never passed on


class BadAnswer(Exception):
    """The target's answer is not HTTP/1.x."""


class AnswerTooLarge(Exception):
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
    """Keep-alive connections to targets, pooled per origin; `close` when done."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], collections.deque[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
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
        head = _head(method, url, headers, body)
        conn = await self._connection(url)
        try:
            answer = await conn.exchange(head, body, method == "HEAD", keep, limit)
        except BaseException:
            conn.close()  # a cancelled or failed exchange leaves the stream in no known state
            raise
        if conn.reusable and not self._closed:
            self._release(conn)
        else:
            conn.close()
        return answer

    async def close(self) -> None:
        """Close every idle connection; connections in use close when their request ends."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool in self._idle.values():
            while pool:
                pool.pop().close()
        self._idle.clear()

    async def _connection(self, url: URL) -> _Connection:
        if self._closed:
            raise ConnectionError("the client is closed")
        key = (url.scheme, url.raw_host or "", url.port or 0)
        pool = self._idle.get(key)
        while pool:
            conn = pool.pop()  # the most recently used: the least likely to be stale
            if conn.open:
                return conn
        return await self._connect(url, key)

    async def _connect(self, url: URL, key: tuple[str, str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        secure = url.scheme == "https"
        context = (self._ssl or _default_context()) if secure else None
        host = url.raw_host or ""
        _, conn = await loop.create_connection(
            lambda: _Connection(loop, key),
            host.strip("[]"),
            url.port or (443 if secure else 80),
            ssl=context,
            server_hostname=host.strip("[]") if secure else None,
        )
        return conn

    def _release(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, collections.deque()).append(conn)
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(KEEP_ALIVE / 3, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for `KEEP_ALIVE` seconds; look again while any are left."""
        self._sweeper = None
        cutoff = time.monotonic() - KEEP_ALIVE
        for pool in self._idle.values():
            while pool and (not pool[0].open or pool[0].idle_since < cutoff):
                pool.popleft().close()
        if any(self._idle.values()):
            self._sweeper = asyncio.get_running_loop().call_later(KEEP_ALIVE / 3, self._sweep)


_CONTEXT: list[ssl.SSLContext] = []


def _default_context() -> ssl.SSLContext:
    if not _CONTEXT:
        _CONTEXT.append(ssl.create_default_context())
    return _CONTEXT[0]


def _head(method: str, url: URL, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    """The request line and headers, as they go on the wire."""
    lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1\r\n"]
    seen: set[str] = set()
    host: str | None = None
    for name, value in headers:
        lower = name.lower()
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} has a line break or a colon in its name")
        if lower in _OWN:
            if lower == "host" and host is None:
                host = value
            continue
        seen.add(lower)
        lines.append(f"{name}: {value}\r\n")
    lines.insert(1, f"Host: {host if host is not None else _host(url)}\r\n")
    if "accept" not in seen:
        lines.append("Accept: */*\r\n")
    if body or method not in _BODYLESS_METHODS:
        if "content-type" not in seen:
            lines.append("Content-Type: application/octet-stream\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def _host(url: URL) -> str:
    host = url.raw_host or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if url.is_default_port() else f"{host}:{url.port}"


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._reader: _Reader | None = None
        self.open = False
        self.reusable = False
        self.idle_since = 0.0
        self.key = key  # the pool it goes back to

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.open = True

    def exchange(
        self, head: bytes, body: bytes, head_only: bool, keep: int, limit: int | None
    ) -> asyncio.Future[Answer]:
        """Write the request; a future for the answer."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("the target closed the connection")
        self.reusable = False
        self._buffer.clear()
        self._reader = _Reader(head_only, keep, limit)
        self._waiter = self._loop.create_future()
        if len(body) < DRAIN:
            self._transport.write(head + body)
        else:
            self._transport.writelines([head, body])
        return self._waiter

    def data_received(self, data: bytes) -> None:
        reader, waiter = self._reader, self._waiter
        if reader is None or waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: the stream is out of step
            return
        self._buffer += data
        try:
            answer = reader.feed(self._buffer)
        except (BadAnswer, AnswerTooLarge) as exc:
            self._finish(exc)
            return
        if answer is not None:
            self.reusable = reader.reusable and not self._buffer
            self._reader = None
            self._waiter = None
            waiter.set_result(answer)

    def eof_received(self) -> bool | None:
        self._end()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._end(exc)

    def _end(self, exc: Exception | None = None) -> None:
        """The other side closed: an answer read until close is complete, others are cut."""
        reader, self.reusable = self._reader, False
        if reader is not None and self._waiter is not None and not self._waiter.done():
            answer = reader.at_eof(self._buffer)
            if answer is not None:
                self._waiter.set_result(answer)
            else:
                self._finish(
                    ConnectionResetError(
                        "the target closed the connection before its answer was complete"
                    )
                    if exc is None
                    else exc
                )

    def _finish(self, exc: BaseException) -> None:
        waiter, self._waiter, self._reader = self._waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.open = False
        self.reusable = False
        if self._transport is not None:
            self._transport.close()


class _Reader:
    """Parses one answer from the front of a buffer, consuming what it has parsed."""

    def __init__(self, head_only: bool, keep: int, limit: int | None) -> None:
        self._head_only = head_only
        self._keep = keep if limit is None else limit
        self._limit = limit
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._body = bytearray()
        self._left = -1  # body bytes to come; -1: until close; -2: chunks; -3: trailers
        self._chunk = 0  # chunked: bytes left of the current chunk
        self._crlf = False  # chunked: the line break after a chunk is next
        self._started = False
        self.reusable = False

    def feed(self, buffer: bytearray) -> Answer | None:
        if not self._started and not self._head(buffer):
            return None
        if self._left == -2:
            return self._chunked(buffer)
        self._take(buffer, len(buffer) if self._left < 0 else min(self._left, len(buffer)))
        if self._left == 0:
            return self._answer()
        if self._left > 0 and len(self._body) >= self._keep and self._limit is None:
            if self._left <= DRAIN:
                return None  # read the rest, so the connection can be reused
            self.reusable = False
            return self._answer()
        return None

    def at_eof(self, buffer: bytearray) -> Answer | None:
        if self._started and self._left == -1:
            self._take(buffer, len(buffer))
            self.reusable = False
            return self._answer()
        return None

    def _head(self, buffer: bytearray) -> bool:
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise BadAnswer(f"no end of the answer's headers in {MAX_HEAD} bytes")
                return False
            lines = bytes(buffer[:end]).decode("utf-8", "surrogateescape").split("\r\n")
            del buffer[: end + 4]
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit() or len(code) != 3:
                raise BadAnswer(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
            status = int(code)
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue): the final one follows
            headers = []
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon or not name or name != name.strip():
                    raise BadAnswer(f"not a header line: {line[:80]!r}")
                headers.append((name, value.strip(" \t")))
            self._start(version, status, tuple(headers))
            return True

    def _start(self, version: str, status: int, headers: tuple[tuple[str, str], ...]) -> None:
        self._started, self._status, self._headers = True, status, headers
        connection = length = encoding = ""
        for name, value in headers:
            lower = name.lower()
            if lower == "connection":
                connection = value.lower()
            elif lower == "content-length":
                length = value
            elif lower == "transfer-encoding":
                encoding = value.lower()
        keep_alive = (
            "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
        )
        if self._head_only or status in _NO_BODY or status < 200:
            self._left = 0
        elif encoding:
            if not encoding.endswith("chunked"):
                self._left = -1  # read until close (RFC 9112 6.3)
                keep_alive = False
            else:
                self._left = -2
        elif length:
            if not length.isdigit():
                raise BadAnswer(f"Content-Length is not a number: {length[:40]!r}")
            self._left = int(length)
            if self._limit is not None and self._left > self._limit:
                raise AnswerTooLarge(f"the answer is over {self._limit} bytes")
        else:
            self._left = -1
            keep_alive = False
        self.reusable = keep_alive

    def _take(self, buffer: bytearray, count: int) -> None:
        room = self._keep - len(self._body)
        if self._limit is not None and count > room:
            raise AnswerTooLarge(f"the answer is over {self._limit} bytes")
        if room > 0:
            self._body += buffer[: min(count, room)]
        del buffer[:count]
        if self._left > 0:
            self._left -= count

    def _chunked(self, buffer: bytearray) -> Answer | None:
        while True:
            if self._chunk > 0:
                count = min(self._chunk, len(buffer))
                self._take(buffer, count)
                self._chunk -= count
                if self._chunk:
                    return None
                self._crlf = True
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise BadAnswer(f"a chunk size or trailer line over {MAX_HEAD} bytes")
                return None
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._crlf:  # the line break that ends a chunk's data
                self._crlf = False
                if line:
                    raise BadAnswer("a chunk longer than its size")
            elif self._left == -3:  # trailers after the last chunk, up to an empty line
                if not line:
                    self._left = 0
                    return self._answer()
            else:
                try:
                    self._chunk = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadAnswer(f"not a chunk size: {line[:40]!r}") from None
                if self._chunk == 0:
                    self._left = -3

    def _answer(self) -> Answer:
        return Answer(self._status, self._headers, bytes(self._body))
