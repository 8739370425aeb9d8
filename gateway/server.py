"""The HTTP server under the app: aiohttp's connection handling, with hookgate's edges.

aiohttp's own request handler answers a request its parser refuses (bad method, a
header too long, too many headers, control bytes, bad chunks) with text/plain that
echoes up to 100 bytes of the request, logs those bytes with a traceback, waits for a
request head forever, keeps every connection it is offered, and names its and
Python's versions in `Server`. `GatewayProtocol` changes exactly that:

- a refused request is answered `{"error": ...}` (what kind of mistake, never its
  bytes) and logged as one `request_malformed` line;
- the head of each request must arrive within `server.header_timeout` of the
  connection opening (or, on a kept-alive connection, of its first byte): else 408;
- beyond `server.max_connections` open connections a new one is answered 503 with
  Retry-After and closed at once;
- `Server: hookgate` on every answer.

`GatewayRunner` is the `web.AppRunner` that serves through it: `hookgate serve`
(gateway/serving.py) and the tests run the app with it. The body timeout is the handlers' (see
`gateway.ingress.request.read_body`): only they know how much they read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson
import structlog
from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler

from gateway.config import ServerConfig
from gateway.logging import Sampled

log = structlog.get_logger("hookgate.http")

SERVER = "hookgate"
RETRY_AFTER = 1  # seconds, when refusing a connection over max_connections

# What kind of mistake the parser found, said without repeating any of the request.
_MALFORMED: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.BadHttpMethod, "malformed request method"),
    (http_exceptions.LineTooLong, "request line or header too long"),
    (http_exceptions.InvalidURLError, "malformed request target"),
    (http_exceptions.BadStatusLine, "malformed request line"),
    (http_exceptions.InvalidHeader, "malformed header"),
    (http_exceptions.TransferEncodingError, "malformed chunked body"),
    (http_exceptions.ContentLengthError, "malformed body length"),
    (http_exceptions.ContentEncodingError, "malformed content encoding"),
)


def malformed_reason(exc: BaseException | None) -> str:
    """What was wrong with a request the parser refused (too many headers, ...)."""
    if isinstance(exc, http_exceptions.BadHttpMessage) and "many headers" in exc.message:
        return "too many headers"
    for kind, reason in _MALFORMED:
        if isinstance(exc, kind):
            return reason
    return "malformed request"


def json_error(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error answer that closes the connection."""
    response = web.json_response({"error": error}, status=status, headers=headers)
    response.headers["Server"] = SERVER
    response.force_close()
    return response


def raw_error(status: int, error: str, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of a JSON error answer written straight to a connection (no request)."""
    body = orjson.dumps({"error": error})
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        f"Server: {SERVER}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class GatewayProtocol(RequestHandler):
    """One connection: aiohttp's handler with JSON errors, a head timeout and a cap."""

    def __init__(self, manager: GatewayServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._gateway = manager
        self._timeout = manager.config.header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        # When the head now awaited began to arrive (None: idle between requests, or busy).
        # One timer per connection checks it, so a request costs two assignments.
        self._head_since: float | None = None
        self._busy = False  # from a request's head until its answer is written
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._counted = True
        if self._gateway.opened() > self._gateway.config.max_connections:
            self._gateway.refusals.hit(self._loop.time(), reason="max_connections")
            self._abort(503, "too many connections; retry later", {"Retry-After": "1"})
            return
        self._head_since = self._loop.time()  # the first head: from the connection's start
        self._head_timer = self._loop.call_later(self._timeout, self._check_head)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._counted:
            self._counted = False
            self._gateway.closed()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if data and not self._busy and self._head_since is None:
            self._head_since = self._loop.time()  # the first byte of a kept-alive request

    def resume_reading(self, resume_parser: bool = True) -> None:
        # A handler's every body read calls this; unless flow control paused reading it
        # would only feed the parser nothing (a pipelined tail is start()'s to resume).
        if self._reading_paused:
            super().resume_reading(resume_parser)

    def head_received(self) -> None:
        """A request's head was parsed: it is being handled."""
        self._busy = True
        self._head_since = None

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse, time: Any) -> None:
        self._busy = False  # called once the answer is written, whatever happened
        super().log_access(request, response, time)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse or handle, as JSON.

        `message` (which can hold request bytes) is neither logged nor sent.
        """
        error = malformed_reason(exc) if status == 400 else HTTPStatus(status).phrase.lower()
        fields = {"status": status, "error": error, "peer": request.remote}
        if status >= 500:
            log.error("request_failed", error_type=type(exc).__name__, **fields)
        else:
            log.info("request_malformed", **fields)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent: cannot send the error")
        return json_error(status, error)

    def _check_head(self) -> None:
        """The connection's one timer: 408 for a head late by header_timeout, else later."""
        self._head_timer = None
        if self.transport is None:
            return
        since = self._head_since
        due = (since if since is not None else self._loop.time()) + self._timeout
        if since is not None and not self._busy and self._loop.time() >= due:
            log.info("request_timed_out", stage="head", peer=self._peer())
            self._abort(408, "the request head did not arrive in time")
            return
        self._head_timer = self._loop.call_at(due, self._check_head)

    def _abort(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        if self.transport is not None:
            self.transport.write(raw_error(status, error, headers))
        self.force_close()

    def _peer(self) -> str | None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else None


class GatewayServer(web.Server):
    """Makes a `GatewayProtocol` per connection, and counts the open ones."""

    def __init__(self, inner: web.Server, config: ServerConfig, kwargs: dict[str, Any]) -> None:
        super().__init__(
            inner.request_handler,
            request_factory=self._noticing(inner.request_factory),
            handler_cancellation=inner.handler_cancellation,
            **kwargs,
        )
        self.config = config
        self.refusals = Sampled(log, "connection_refused", level="warning")  # a flood: 2 lines
        self._open = 0
        self._protocol_kwargs = kwargs

    def __call__(self) -> RequestHandler:
        return GatewayProtocol(self, loop=asyncio.get_running_loop(), **self._protocol_kwargs)

    def opened(self) -> int:
        self._open += 1
        return self._open

    def closed(self) -> None:
        self._open -= 1

    @staticmethod
    def _noticing(factory: Callable[..., web.BaseRequest]) -> Callable[..., web.BaseRequest]:
        """The app's request factory, telling the connection that a head arrived."""

        def make(message: Any, payload: Any, protocol: Any, *args: Any) -> web.BaseRequest:
            if isinstance(protocol, GatewayProtocol):
                protocol.head_received()
            return factory(message, payload, protocol, *args)

        return make


class GatewayRunner(web.AppRunner):
    """An `AppRunner` serving through `GatewayServer`."""

    def __init__(self, app: web.Application, config: ServerConfig, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._config = config

    async def _make_server(self) -> web.Server:
        inner = await super()._make_server()  # starts the app; its handler_args included
        # aiohttp keeps the protocol's settings (handler_args merged in) only there.
        return GatewayServer(inner, self._config, dict(inner._kwargs))
