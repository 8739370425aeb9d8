"""The `nats` target: publish each event to NATS JetStream and wait for the stream's PubAck.

A delivery counts as ACKED only when a stream has stored the message. `Nats-Msg-Id` is the
delivery id, so a retry that reaches the server within the stream's duplicate window is
recognised (the PubAck says ``duplicate``) and stored once; outside the window consumers
dedupe on the same id in `X-Hookgate-Delivery-Id`. One connection per target, opened on
the first send and opened again after it is lost; nats-py's own reconnect loop is off, so
a lost connection fails the attempt at once and the relay's retry schedule takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
import string
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from yarl import URL

from gateway.plugin import (
    Message,
    Outcome,
    Resources,
    Section,
    SendResult,
    show,
)

try:
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.api import PubAck
except ImportError:  # the `nats` extra is not installed: `parse` reports it
    HAVE_NATS = False
else:
    HAVE_NATS = True

log = structlog.get_logger("hookgate.target.nats")

DEFAULT_URL = "nats://127.0.0.1:4222"
_SCHEMES = frozenset({"nats", "tls", "ws", "wss"})
_PLACEHOLDERS = ("source", "target", "event_type")
# Whitespace ends a subject and `*`/`>` are wildcards: never let an event type write them.
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f*>]")
_STREAM_NAME = re.compile(r"[^\s.*>/\\]+")
# The relay bounds every send with the target's `timeout`; this only stops nats-py from
# imposing its own 5 s on the PubAck or the stream creation.
_API_WAIT = 3600.0
_ERR_STREAM_NAME_IN_USE = 10058
_LIVENESS_CHECK = 0.2  # seconds between looks at the connection while a PubAck is awaited


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream hookgate creates when it is missing (it never changes an existing one)."""

    name: str
    subjects: tuple[str, ...]
    duplicate_window: float | None = None


@dataclass(frozen=True, slots=True)
class NatsOptions:
    subject: str
    servers: tuple[str, ...] = (DEFAULT_URL,)
    stream: str | None = None
    create_stream: StreamSpec | None = None
    connect_timeout: float = 2.0


class _Failure(Exception):
    """Opening the connection went wrong in a way one outcome describes."""

    def __init__(self, outcome: Outcome, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


@dataclass(frozen=True, slots=True)
class _Connection:
    client: Client
    js: JetStreamContext

    @property
    def usable(self) -> bool:
        return not self.client.is_closed


class NatsTarget:
    """Publishes one message per call on the target's one connection."""

    def __init__(self, options: NatsOptions) -> None:
        self.options = options
        self._lock = asyncio.Lock()
        self._connection: _Connection | None = None

    async def __call__(self, message: Message) -> SendResult:
        subject = render_subject(self.options.subject, message)
        try:
            connection = await self._connect(message.target)
            ack = await self._publish(connection, subject, message)
        except _Failure as failure:
            return SendResult(failure.outcome, error=failure.error)
        except (nats.errors.Error, OSError) as exc:
            if isinstance(exc, nats.js.errors.NoStreamResponseError):
                await self._recreate_stream(connection)
            return SendResult(classify_error(exc), error=describe(exc, subject))
        return acked(ack, subject)

    async def _recreate_stream(self, connection: _Connection) -> None:
        """A `create_stream` stream deleted under us exists again for the retry."""
        if self.options.create_stream is not None:
            with contextlib.suppress(_Failure):
                await _ensure_stream(connection.js, self.options.create_stream)

    async def aclose(self) -> None:
        async with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            await connection.client.close()

    async def _connect(self, target: str) -> _Connection:
        async with self._lock:
            if self._connection is None or not self._connection.usable:
                # A fresh context: nats-py's reader task must not log with this send's ids.
                opening = _open(self.options, target)
                self._connection = await asyncio.create_task(opening, context=contextvars.Context())
            return self._connection

    async def _publish(self, connection: _Connection, subject: str, message: Message) -> PubAck:
        headers = nats_headers(message)
        publish = asyncio.ensure_future(
            connection.js.publish(
                subject, message.body, stream=self.options.stream, headers=headers
            )
        )
        # nats-py leaves a request waiting when its connection closes (and its close can fail
        # before the closed callback runs), so look at the connection while waiting.
        try:
            while connection.usable and not publish.done():
                await asyncio.wait((publish,), timeout=_LIVENESS_CHECK)
        finally:
            publish.cancel()
        if publish.done() and not publish.cancelled():
            return publish.result()
        raise nats.errors.ConnectionClosedError


async def _open(options: NatsOptions, target: str) -> _Connection:
    async def on_error(exc: Exception) -> None:
        if not isinstance(exc, OSError):  # failures to connect come back as the send's result
            log.warning("nats_client_error", target=target, error=f"{type(exc).__name__}: {exc}")

    try:
        client = await nats.connect(
            list(options.servers),
            name=f"hookgate:{target}",
            allow_reconnect=False,
            max_reconnect_attempts=1,  # 0 would mean forever; 1 tries each server twice
            reconnect_time_wait=0,
            connect_timeout=options.connect_timeout,
            error_cb=on_error,
        )
    except (nats.errors.Error, OSError) as exc:
        raise _Failure(Outcome.CONNECT_ERROR, f"cannot connect: {describe(exc)}") from exc
    js = client.jetstream(timeout=_API_WAIT)
    try:
        if options.create_stream is not None:
            await _ensure_stream(js, options.create_stream)
    except BaseException:
        await client.close()
        raise
    return _Connection(client, js)


async def _ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create the stream unless a stream of that name exists (whatever its settings)."""
    extra: dict[str, Any] = {}
    if spec.duplicate_window is not None:
        extra["duplicate_window"] = spec.duplicate_window
    try:
        await js.add_stream(name=spec.name, subjects=list(spec.subjects), **extra)
    except nats.js.errors.APIError as exc:
        if exc.err_code != _ERR_STREAM_NAME_IN_USE:
            error = f"cannot create stream {spec.name}: {describe(exc)}"
            raise _Failure(Outcome.TARGET_ERROR, error) from exc
    except (nats.errors.Error, OSError) as exc:
        error = f"cannot create stream {spec.name}: {describe(exc)}"
        raise _Failure(classify_error(exc), error) from exc


def render_subject(template: str, message: Message) -> str:
    """The subject for `message`; each value keeps its dots and loses wildcards and spaces."""
    return template.format(
        source=_tokens(message.source),
        target=_tokens(message.target),
        event_type=_tokens(message.event_type or "none"),
    )


def _tokens(value: str) -> str:
    cleaned = _UNSAFE.sub("_", value)
    return ".".join(token or "_" for token in cleaned.split("."))


def nats_headers(message: Message) -> dict[str, str]:
    """The outgoing headers, hookgate's identity last, and the dedupe id for the server."""
    headers: dict[str, str] = {}
    for name, value in message.headers:
        # Nats-* headers are orders to the server (Nats-Rollup purges): never a provider's.
        if name.lower().startswith("nats-"):
            continue
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    headers["X-Hookgate-Event-Id"] = str(message.event_id)
    headers["X-Hookgate-Delivery-Id"] = message.idempotency_key
    headers["X-Hookgate-Source"] = message.source
    if message.event_type:
        headers["X-Hookgate-Event-Type"] = message.event_type
    headers["Nats-Msg-Id"] = message.idempotency_key
    return headers


def acked(ack: PubAck, subject: str) -> SendResult:
    """The PubAck as the attempt's recorded answer."""
    duplicate = bool(ack.duplicate)
    answer = {"stream": ack.stream, "seq": ack.seq, "duplicate": duplicate, "subject": subject}
    return SendResult(
        Outcome.ACKED,
        body=json.dumps(answer).encode(),
        extra={
            "stream": ack.stream,
            "seq": str(ack.seq),
            "duplicate": "true" if duplicate else "false",
            "subject": subject,
        },
    )


def classify_error(exc: BaseException) -> Outcome:
    """Which failure this was: the connection, the wait, or the server's refusal."""
    if isinstance(exc, nats.errors.TimeoutError | TimeoutError):
        return Outcome.TIMEOUT
    lost = (
        nats.errors.ConnectionClosedError,
        nats.errors.StaleConnectionError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.ConnectionDrainingError,
        nats.errors.NoServersError,
        OSError,
    )
    return Outcome.CONNECT_ERROR if isinstance(exc, lost) else Outcome.TARGET_ERROR


def describe(exc: BaseException, subject: str | None = None) -> str:
    if isinstance(exc, nats.js.errors.NoStreamResponseError) and subject is not None:
        return f"no stream for subject {subject}"
    if isinstance(exc, nats.errors.ConnectionClosedError):
        return "connection lost before the broker answered"
    if isinstance(exc, nats.js.errors.APIError):
        return f"JetStream refused: {exc.description} (err_code {exc.err_code})"
    if isinstance(exc, nats.errors.MaxPayloadError):
        return "the body is larger than the server's max_payload"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class NatsPlugin:
    kind: Literal["target"] = "target"
    name = "nats"

    def parse(self, section: Section) -> NatsOptions:
        if not HAVE_NATS:
            section.fail("needs the nats-py package: pip install 'hookgate[nats]'", "type")
        servers = _servers(section)
        subject = section.get("subject", _subject, fallback="")
        stream = section.get("stream", _stream_name, None)
        create = _create_stream(section, subject)
        if create is not None and stream is not None and stream != create.name:
            problem = f"must match create_stream.name ({create.name}), got {show(stream)}"
            section.fail(problem, "stream")
        connect_timeout = section.duration("connect_timeout", 2.0)
        return NatsOptions(
            subject=subject,
            servers=servers,
            stream=stream or (create.name if create else None),
            create_stream=create,
            connect_timeout=connect_timeout,
        )

    def create(self, options: Any, resources: Resources) -> NatsTarget:
        return NatsTarget(options)


def _servers(section: Section) -> tuple[str, ...]:
    url: str = section.get("url", _server, DEFAULT_URL)
    if "servers" not in section:
        return (url,)
    if "url" in section:
        section.fail("give url or servers, not both", "servers")
    servers: tuple[str, ...] = section.get("servers", _server_list, fallback=())
    return servers


def _server(value: object) -> str:
    text = str(value) if isinstance(value, str) else ""
    url = URL(text)
    if url.scheme not in _SCHEMES or not url.host:
        shown = show(str(url.with_user(None))) if text else show(value)  # no password in errors
        raise ValueError(f"expected a nats:// or tls:// URL, got {shown}")
    return text


def _server_list(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"expected a list of nats:// URLs, got {show(value)}")
    return tuple(_server(item) for item in items)


def _subject(value: object) -> str:
    example = "webhooks.{source}.{event_type}"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a subject like {example}, got {show(value)}")
    try:
        fields = [field for field in string.Formatter().parse(value) if field[1] is not None]
    except ValueError:
        raise ValueError(f"unbalanced braces in {show(value)}") from None
    for _, name, spec, conversion in fields:
        if name not in _PLACEHOLDERS or spec or conversion:
            known = ", ".join(f"{{{p}}}" for p in _PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}} in {show(value)}; use {known}")
    if not _is_subject(value.format(source="s", target="t", event_type="e"), wildcards=False):
        raise ValueError(
            f"expected a subject like {example} (no spaces, wildcards or empty tokens), "
            f"got {show(value)}"
        )
    return value


def _is_subject(text: str, wildcards: bool) -> bool:
    tokens = text.split(".")
    for index, token in enumerate(tokens):
        if not token or re.search(r"[\s\x00-\x1f\x7f]", token):
            return False
        if token in {"*", ">"} and not wildcards:
            return False
        if token == ">" and index != len(tokens) - 1:
            return False
    return True


def _stream_name(value: object) -> str:
    if not isinstance(value, str) or not _STREAM_NAME.fullmatch(value):
        raise ValueError(f"expected a stream name without spaces, dots, * or >, got {show(value)}")
    return value


def _subject_filters(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"expected a list of subjects like webhooks.>, got {show(value)}")
    for item in items:
        if not isinstance(item, str) or not _is_subject(item, wildcards=True):
            raise ValueError(f"expected a subject like webhooks.>, got {show(item)}")
    return tuple(items)


def _create_stream(section: Section, subject: str) -> StreamSpec | None:
    if "create_stream" not in section:
        return None
    spec = section.section("create_stream")
    name = spec.get("name", _stream_name, fallback="")
    default: tuple[str, ...] = (_capture(subject),)
    subjects = spec.get("subjects", _subject_filters, default)
    window = spec.duration("duplicate_window", None)
    spec.done()
    return StreamSpec(name=name, subjects=subjects, duplicate_window=window)


def _capture(template: str) -> str:
    """The subject filter that captures every expansion of `template` (`a.{source}.x` → `a.>`)."""
    kept: list[str] = []
    for token in template.split("."):
        if "{" in token:
            return ".".join([*kept, ">"])
        kept.append(token)
    return template


plugin = NatsPlugin()

__all__ = ["NatsOptions", "NatsTarget", "StreamSpec", "plugin"]
