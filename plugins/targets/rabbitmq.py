"""The `rabbitmq` target: publish each event to an AMQP 0-9-1 exchange with publisher confirms.

A delivery counts as delivered (`ACKED`) only once the broker has confirmed the publish;
a message the broker cannot route (``mandatory``) comes back as `TARGET_ERROR`, so it is
retried instead of silently dropped, and so is a nack.

The published message:

- body: the provider's bytes, unchanged; ``content_type``: the original Content-Type;
- ``message_id``: the delivery id (== the ``Idempotency-Key``), the same on every retry
  and replay, so consumers deduplicate on it;
- ``correlation_id``: the event id, shared by the deliveries of one event to every target;
- ``type``: the event type (when known and at most 255 bytes); ``timestamp``: when
  hookgate received the event; ``app_id``: ``hookgate``; ``delivery_mode``: persistent;
- ``headers``: the outgoing headers (``X-Hookgate-*``, ``Idempotency-Key``, the forwarded
  provider headers; repeated names joined with ", ") and ``X-Hookgate-Target``.
"""

from __future__ import annotations

import asyncio
import contextlib
import string
from dataclasses import dataclass, field
from typing import Any, Literal

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
    import aio_pika
    from aio_pika import exceptions as amqp
    from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection
except ImportError:  # the rabbitmq extra is not installed: `parse` says so
    HAVE_AIO_PIKA = False
else:
    HAVE_AIO_PIKA = True

_PLACEHOLDERS = ("source", "target", "event_type")
_MAX_SHORT = 255  # bytes in an AMQP short string: routing keys, names, `type`
_RECONNECT_INTERVAL = 1.0  # the robust connection's pause between failed reconnects


@dataclass(frozen=True, slots=True)
class RabbitOptions:
    routing_key: str
    url: str = field(default="amqp://guest:guest@127.0.0.1:5672/", repr=False)  # has a password
    exchange: str = ""
    declare_queue: str | None = None
    connect_timeout: float = 5.0


class RabbitTarget:
    """One robust connection and one confirming channel per target, opened on first send."""

    def __init__(self, options: RabbitOptions) -> None:
        self.options = options
        self._lock = asyncio.Lock()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._closed = False

    async def __call__(self, message: Message) -> SendResult:
        try:
            exchange = await self._ready(message.target)
        except TimeoutError:
            return SendResult(
                Outcome.CONNECT_ERROR,
                error=f"no usable connection to the broker within {self.options.connect_timeout}s",
            )
        except (*amqp.CONNECTION_EXCEPTIONS, ValueError) as exc:
            return SendResult(_classify_connect(exc), error=_describe(exc))
        key = routing_key(self.options.routing_key, message)
        if len(key.encode()) > _MAX_SHORT:
            error = f"the routing key has more than {_MAX_SHORT} bytes: {key[:60]!r}..."
            return SendResult(Outcome.TARGET_ERROR, error=error, extra=self._to(key))
        try:
            await exchange.publish(amqp_message(message), key, mandatory=True)
        except amqp.PublishError as exc:
            return SendResult(Outcome.TARGET_ERROR, error=f"unroutable: {exc}", extra=self._to(key))
        except amqp.DeliveryError as exc:
            return SendResult(Outcome.TARGET_ERROR, error=f"refused: {exc}", extra=self._to(key))
        except (*amqp.CONNECTION_EXCEPTIONS, ValueError, TypeError) as exc:  # Type: unencodable
            return SendResult(_classify_publish(exc), error=_describe(exc), extra=self._to(key))
        return SendResult(Outcome.ACKED, extra=self._to(key))

    async def aclose(self) -> None:
        """Close the connection; a send after this reports CONNECT_ERROR."""
        async with self._lock:
            self._closed = True
            await self._drop()

    async def _ready(self, target: str) -> AbstractExchange:
        """The exchange on a usable channel, connecting first when there is no connection.

        The robust connection repairs itself: after a network drop it reconnects and
        reopens the channel, and after the broker closes the channel (a publish to a
        missing exchange) it reopens that; a send waits up to `connect_timeout` for it.
        A connection closed for good is replaced at once, and one that is up but cannot
        get its channel back in time is replaced on the next send.
        """
        async with self._lock:
            if self._closed:
                raise amqp.ChannelInvalidStateError("the target is closed")
            if self._connection is not None and self._connection.is_closed:
                await self._drop()
            if self._connection is None:
                await self._connect(target)
            connection, channel, exchange = self._connection, self._channel, self._exchange
        assert connection is not None and channel is not None and exchange is not None
        await self._usable(connection, channel)
        return exchange

    async def _usable(
        self, connection: AbstractRobustConnection, channel: AbstractRobustChannel
    ) -> None:
        """Wait, up to `connect_timeout`, for the robust connection to finish a repair."""
        was_up = connection.connected.is_set()
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                await channel.ready()
                # For a moment after a drop aio-pika still reports the channel ready although
                # it is closed; nothing signals when that ends, so look again shortly.
                while channel.is_closed:
                    await asyncio.sleep(0.01)
                    await channel.ready()
        except TimeoutError:
            if was_up and connection.connected.is_set():  # up all along: the channel is stuck
                async with self._lock:
                    await self._drop(connection)
            raise

    async def _connect(self, target: str) -> None:
        options = self.options
        connection = aio_pika.RobustConnection(
            URL(options.url),
            client_properties={"connection_name": f"hookgate:{target}"},
            reconnect_interval=_RECONNECT_INTERVAL,
        )
        try:
            await connection.connect(timeout=options.connect_timeout)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            if options.declare_queue is not None:
                queue = await channel.declare_queue(options.declare_queue, durable=True)
                if options.exchange:
                    await queue.bind(options.exchange, options.routing_key)
            if options.exchange:
                exchange = await channel.get_exchange(options.exchange, ensure=False)
            else:
                exchange = channel.default_exchange
        except BaseException:
            await connection.close()
            raise
        self._connection, self._channel, self._exchange = connection, channel, exchange

    async def _drop(self, only: AbstractRobustConnection | None = None) -> None:
        """Forget the connection (`only` that one, if another has not replaced it) and close it."""
        connection = self._connection
        if connection is None or (only is not None and only is not connection):
            return
        self._connection = self._channel = self._exchange = None
        if not connection.is_closed:
            with contextlib.suppress(*amqp.CONNECTION_EXCEPTIONS):  # it is gone either way
                await connection.close()

    def _to(self, key: str) -> dict[str, str]:
        return {"exchange": self.options.exchange, "routing_key": key}


def amqp_message(message: Message) -> aio_pika.Message:
    """The AMQP message for one attempt: raw body, stable ids, hookgate's headers."""
    headers: dict[str, Any] = {}  # an AMQP field table
    content_type = None
    for name, value in message.headers:
        if name.lower() == "content-type":
            content_type = content_type or value
        elif name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    headers["X-Hookgate-Target"] = message.target
    event_type = message.event_type
    if event_type is not None and len(event_type.encode()) > _MAX_SHORT:
        event_type = None  # too long for the property; X-Hookgate-Event-Type still has it
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.idempotency_key,
        correlation_id=str(message.event_id),
        type=event_type,
        timestamp=message.received_at,
        app_id="hookgate",
    )


def routing_key(template: str, message: Message) -> str:
    """`template` with ``{source}``, ``{target}`` and ``{event_type}`` filled in."""
    return template.format(
        source=message.source, target=message.target, event_type=message.event_type or ""
    )


def _classify_connect(exc: BaseException) -> Outcome:
    if isinstance(exc, amqp.AuthenticationError | amqp.ProbableAuthenticationError):
        return Outcome.TARGET_ERROR  # reached, but refused: a credentials problem
    if isinstance(exc, ConnectionError | OSError | amqp.ChannelInvalidStateError):
        return Outcome.CONNECT_ERROR
    return Outcome.TARGET_ERROR


def _classify_publish(exc: BaseException) -> Outcome:
    if isinstance(exc, amqp.ChannelClosed):
        return Outcome.TARGET_ERROR  # the broker refused something, e.g. no such exchange
    if isinstance(exc, ConnectionError | OSError | RuntimeError):
        return Outcome.CONNECT_ERROR  # includes ChannelInvalidStateError: the link went away
    return Outcome.TARGET_ERROR


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class RabbitPlugin:
    kind: Literal["target"] = "target"
    name = "rabbitmq"

    def parse(self, section: Section) -> RabbitOptions:
        if not HAVE_AIO_PIKA:
            section.fail("needs the aio-pika package: pip install 'hookgate[rabbitmq]'", "type")
        defaults = RabbitOptions(routing_key="")
        url = section.get("url", _amqp_url, defaults.url)
        exchange = section.text("exchange", "")
        key = section.get("routing_key", _routing_key_template, fallback="")
        queue = section.get("declare_queue", _queue_name, None)
        timeout = section.duration("connect_timeout", defaults.connect_timeout)
        if "connect_timeout" in section and timeout <= 0:
            section.fail(f"expected a duration above 0, got {show(timeout)}", "connect_timeout")
        if queue is not None:
            _check_declared_queue(section, queue, exchange, key)
        return RabbitOptions(key, url, exchange, queue, timeout)

    def create(self, options: Any, resources: Resources) -> RabbitTarget:
        return RabbitTarget(options)


def _check_declared_queue(section: Section, queue: str, exchange: str, key: str) -> None:
    if any(name is not None for _, name, _, _ in string.Formatter().parse(key)):
        section.fail("binds with routing_key, which then cannot have placeholders", "declare_queue")
    elif not exchange and key != queue:
        section.fail(
            f"the default exchange routes by queue name, so routing_key must be {show(queue)}",
            "declare_queue",
        )


def _amqp_url(value: object) -> str:
    text = str(value) if isinstance(value, str) else ""
    url = URL(text)
    if url.scheme not in {"amqp", "amqps"} or not url.host:
        shown = str(url.with_password("***")) if url.password else text or repr(value)
        raise ValueError(f"expected an amqp:// or amqps:// URL, got {show(shown)}")
    return text


def _routing_key_template(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a routing key like hooks.{{source}}, got {show(value)}")
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"{exc} in {show(value)}; write {{{{ and }}}} for braces") from None
    for _, name, spec, conversion in fields:
        if name is not None and (name not in _PLACEHOLDERS or spec or conversion):
            allowed = ", ".join(f"{{{p}}}" for p in _PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}} (use {allowed}), got {show(value)}")
    if len(value.encode()) > _MAX_SHORT:
        raise ValueError(f"a routing key has at most {_MAX_SHORT} bytes, got {show(value)}")
    return value


def _queue_name(value: object) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > _MAX_SHORT:
        raise ValueError(f"expected a queue name, got {show(value)}")
    return value


plugin = RabbitPlugin()

__all__ = ["RabbitOptions", "RabbitTarget", "amqp_message", "plugin", "routing_key"]
