"""The `rabbitmq` target against a real RabbitMQ on loopback.

Each test declares its own durable queue (and exchange, where it needs one) under a unique
name, reads what the target published with a consumer on a separate connection, and
deletes what it declared. Network drops go through a small TCP proxy the test can cut.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from conftest import make_config, relay_for

from gateway.clock import FrozenClock
from gateway.errors import ConfigError
from gateway.ids import delivery_id, event_id
from gateway.plugin import Message, Outcome
from gateway.section import Section
from gateway.storage.store import EventRecord
from plugins.targets import rabbitmq
from plugins.targets.rabbitmq import RabbitOptions, RabbitTarget

BODY = b'{"id": "evt_1", "note": "caf\xe9 \xff\x00"}'  # not UTF-8 on purpose
RECEIVED = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def unique(prefix: str) -> str:
    return f"hookgate-test-{prefix}-{uuid.uuid4().hex[:10]}"


def a_message(event_type: str | None = "order.paid", attempt: int = 1, **changes) -> Message:
    return Message(
        event_id=uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        delivery_id=uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-ffffffffffff"),
        attempt=attempt,
        source="shop",
        target="queue",
        event_type=event_type,
        received_at=RECEIVED,
        now=RECEIVED,
        body=BODY,
        headers=(
            ("Content-Type", "application/json; charset=latin-1"),
            ("X-Shop-Topic", "orders/paid"),
            ("X-Trace", "a"),
            ("X-Trace", "b"),
            ("User-Agent", "hookgate/0.1"),
            ("X-Hookgate-Event-Id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            ("X-Hookgate-Delivery-Id", "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff"),
            ("X-Hookgate-Attempt", str(attempt)),
            ("X-Hookgate-Source", "shop"),
            ("Idempotency-Key", "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff"),
        ),
        **changes,
    )


@dataclass
class Broker:
    """The test's own connection: declares queues, reads them back, deletes them after."""

    connection: AbstractRobustConnection
    url: str
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def declared_queue(self) -> str:
        """A unique name for a queue the target declares; deleted after the test."""
        name = unique("declared")
        self.queues.append(name)
        return name

    async def queue(self, name: str | None = None, **arguments: object) -> AbstractQueue:
        name = name or unique("q")
        self.queues.append(name)
        channel = await self.connection.channel()
        return await channel.declare_queue(name, durable=True, arguments=arguments or None)

    async def exchange(self, name: str) -> None:
        channel = await self.connection.channel()
        await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        self.exchanges.append(name)

    async def take(self, queue: AbstractQueue, count: int = 1) -> list[AbstractIncomingMessage]:
        """`count` messages from `queue` through a consumer, acknowledged; fails after 5 s."""
        taken: list[AbstractIncomingMessage] = []
        async with asyncio.timeout(5), queue.iterator() as messages:
            async for incoming in messages:
                await incoming.ack()
                taken.append(incoming)
                if len(taken) == count:
                    break
        return taken

    async def count(self, queue: AbstractQueue) -> int:
        result = await queue.declare()
        assert result.message_count is not None
        return result.message_count


@pytest.fixture
async def broker(rabbitmq_url: str) -> AsyncIterator[Broker]:
    connection = await aio_pika.connect_robust(rabbitmq_url, timeout=5)
    broker = Broker(connection, rabbitmq_url)
    try:
        yield broker
    finally:
        channel = await connection.channel()
        for name in broker.queues:
            await channel.queue_delete(name)  # idempotent: a missing queue is fine
        for name in broker.exchanges:
            await channel.exchange_delete(name)
        await connection.close()


@asynccontextmanager
async def rabbit(url: str, routing_key: str, **options: object) -> AsyncIterator[RabbitTarget]:
    target = RabbitTarget(RabbitOptions(routing_key, url, **options))  # type: ignore[arg-type]
    try:
        yield target
    finally:
        await target.aclose()


class Proxy:
    """A TCP relay to the broker that the test can cut, as a network failure would."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers += [writer, up_writer]
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )

    def cut(self) -> int:
        """Abort every open link at once; the number of links cut."""
        cut = [writer for writer in self.writers if not writer.transport.is_closing()]
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        return len(cut)

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


@pytest.fixture
async def proxied(rabbitmq_url: str) -> AsyncIterator[tuple[Proxy, str]]:
    """A proxy in front of the broker and the broker URL through it."""
    parts = urlsplit(rabbitmq_url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    port = await proxy.start()
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    try:
        yield proxy, urlunsplit(parts._replace(netloc=netloc))
    finally:
        await proxy.stop()


def on_drop(connection: AbstractRobustConnection) -> asyncio.Event:
    """An event set once `connection` has noticed that its link is gone."""
    dropped = asyncio.Event()
    connection.close_callbacks.add(lambda *_: dropped.set())
    return dropped


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- what is published -------------------------------------------------------------------


async def test_a_confirmed_publish_is_acked_and_carries_the_event_unchanged(broker):
    queue = await broker.queue()

    async with rabbit(broker.url, queue.name) as target:
        result = await target(a_message())

    assert result.outcome is Outcome.ACKED
    assert result.error is None
    assert result.extra == {"exchange": "", "routing_key": queue.name}
    (got,) = await broker.take(queue)
    assert got.body == BODY
    assert got.content_type == "application/json; charset=latin-1"
    assert got.message_id == "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff"  # the delivery id
    assert got.correlation_id == "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"  # the event id
    assert got.type == "order.paid"
    assert got.app_id == "hookgate"
    assert got.delivery_mode is aio_pika.DeliveryMode.PERSISTENT
    assert got.timestamp == RECEIVED
    assert got.headers == {
        "X-Shop-Topic": "orders/paid",
        "X-Trace": "a, b",
        "User-Agent": "hookgate/0.1",
        "X-Hookgate-Event-Id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "X-Hookgate-Delivery-Id": "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff",
        "X-Hookgate-Attempt": "1",
        "X-Hookgate-Source": "shop",
        "X-Hookgate-Target": "queue",
        "Idempotency-Key": "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff",
    }


async def test_the_routing_key_fills_in_source_target_and_event_type(broker):
    exchange = unique("x")
    await broker.exchange(exchange)
    queue = await broker.queue()
    await queue.bind(exchange, "hooks.shop.queue.order.paid")

    async with rabbit(broker.url, "hooks.{source}.{target}.{event_type}", exchange=exchange) as t:
        result = await t(a_message())

    assert result.outcome is Outcome.ACKED
    assert result.extra == {"exchange": exchange, "routing_key": "hooks.shop.queue.order.paid"}
    (got,) = await broker.take(queue)
    assert (got.routing_key, got.exchange, got.body) == (
        "hooks.shop.queue.order.paid",
        exchange,
        BODY,
    )


async def test_a_message_without_type_or_content_type_leaves_those_properties_empty(broker):
    queue = await broker.queue()
    bare = a_message(event_type=None)
    bare = replace(bare, headers=tuple(h for h in bare.headers if h[0] != "Content-Type"))

    async with rabbit(broker.url, queue.name + "{event_type}") as target:
        assert (await target(bare)).outcome is Outcome.ACKED

    (got,) = await broker.take(queue)
    assert (got.type, got.content_type, got.body) == (None, None, BODY)


async def test_an_event_type_too_long_for_amqp_is_kept_in_the_headers_only(broker):
    queue = await broker.queue()
    long_type = "order." + "é" * 200  # 406 bytes: more than an AMQP short string holds
    message = a_message(event_type=long_type)
    message = replace(message, headers=(*message.headers, ("X-Hookgate-Event-Type", long_type)))

    async with rabbit(broker.url, queue.name) as target:
        result = await target(message)

    assert result.outcome is Outcome.ACKED
    (got,) = await broker.take(queue)
    assert (got.type, got.headers["X-Hookgate-Event-Type"]) == (None, long_type)


async def test_a_routing_key_too_long_for_amqp_is_a_target_error(broker):
    async with rabbit(broker.url, "hooks.{event_type}") as target:
        result = await target(a_message(event_type="é" * 200))

    assert result.outcome is Outcome.TARGET_ERROR
    assert result.error is not None
    assert result.error.startswith("the routing key has more than 255 bytes")


async def test_the_same_delivery_sent_twice_carries_the_same_ids_for_consumers_to_dedupe(broker):
    queue = await broker.queue()

    async with rabbit(broker.url, queue.name) as target:
        first = await target(a_message(attempt=1))
        retry = await target(a_message(attempt=2))

    # RabbitMQ has no publish-side dedup: both are held, and the ids say they are one delivery.
    assert (first.outcome, retry.outcome) == (Outcome.ACKED, Outcome.ACKED)
    one, two = await broker.take(queue, 2)
    assert one.message_id == two.message_id == "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff"
    assert one.correlation_id == two.correlation_id
    assert one.headers["Idempotency-Key"] == two.headers["Idempotency-Key"] == one.message_id
    assert (one.headers["X-Hookgate-Attempt"], two.headers["X-Hookgate-Attempt"]) == ("1", "2")


async def test_one_connection_serves_every_send_even_concurrent_ones(broker):
    queue = await broker.queue()

    async with rabbit(broker.url, queue.name) as target:
        await target(a_message())
        connection = target._connection
        results = await asyncio.gather(*(target(a_message(attempt=n)) for n in range(2, 22)))
        assert target._connection is connection

    assert {r.outcome for r in results} == {Outcome.ACKED}
    assert len(await broker.take(queue, 21)) == 21


async def test_declare_queue_creates_a_durable_queue_bound_to_the_exchange(broker):
    exchange, name = unique("x"), broker.declared_queue()
    await broker.exchange(exchange)

    async with rabbit(broker.url, "hooks.orders", exchange=exchange, declare_queue=name) as t:
        assert (await t(a_message())).outcome is Outcome.ACKED

    queue = await broker.queue(name)  # declaring it again with the same arguments succeeds
    assert queue.durable
    (got,) = await broker.take(queue)
    assert got.body == BODY


# -- refusals ---------------------------------------------------------------------------------


async def test_an_unroutable_message_is_a_target_error_not_silently_dropped(broker):
    queue = await broker.queue()

    async with rabbit(broker.url, "{event_type}") as target:
        lost = await target(a_message(event_type=unique("nowhere")))
        routed = await target(a_message(event_type=queue.name))  # the channel survives a return

    assert lost.outcome is Outcome.TARGET_ERROR
    assert lost.error is not None
    assert lost.error.startswith("unroutable:")
    assert "NO_ROUTE" in lost.error
    assert routed.outcome is Outcome.ACKED
    assert len(await broker.take(queue)) == 1


async def test_a_nack_from_a_full_queue_is_a_target_error(broker):
    queue = await broker.queue(**{"x-max-length": 1, "x-overflow": "reject-publish"})

    async with rabbit(broker.url, queue.name) as target:
        kept = await target(a_message())
        refused = await target(a_message(attempt=2))

    assert kept.outcome is Outcome.ACKED
    assert refused.outcome is Outcome.TARGET_ERROR
    assert refused.error is not None
    assert refused.error.startswith("refused:")
    assert "Nack" in refused.error
    assert await broker.count(queue) == 1


async def test_a_missing_exchange_is_a_target_error_and_the_target_recovers(broker):
    exchange = unique("x")
    queue = await broker.queue()

    async with rabbit(broker.url, "hooks.orders", exchange=exchange) as target:
        missing = await target(a_message())
        connection = target._connection
        await broker.exchange(exchange)
        await queue.bind(exchange, "hooks.orders")
        again = await target(a_message(attempt=2))
        assert target._connection is connection  # the broker closed only the channel: reopened

    assert missing.outcome is Outcome.TARGET_ERROR
    assert missing.error is not None
    assert "NOT_FOUND" in missing.error
    assert again.outcome is Outcome.ACKED
    (got,) = await broker.take(queue)
    assert got.headers["X-Hookgate-Attempt"] == "2"


async def test_a_channel_that_cannot_be_restored_is_replaced_with_a_fresh_connection(broker):
    exchange, name = unique("x"), broker.declared_queue()
    await broker.exchange(exchange)
    options = {"exchange": exchange, "declare_queue": name, "connect_timeout": 0.5}

    async with rabbit(broker.url, "hooks.orders", **options) as target:
        assert (await target(a_message())).outcome is Outcome.ACKED
        connection = target._connection
        channel = await broker.connection.channel()
        await channel.exchange_delete(exchange)
        # The 404 closes the channel; reopening it fails too, as it re-binds the declared queue.
        outcomes = [await target(a_message(attempt=n)) for n in (2, 3, 4)]
        replaced = target._connection is not connection
        await broker.exchange(exchange)
        back = await target(a_message(attempt=5))

    assert [(r.outcome, (r.error or "").split(":")[0]) for r in outcomes] == [
        (Outcome.TARGET_ERROR, "ChannelNotFoundEntity"),  # the publish to the deleted exchange
        (Outcome.CONNECT_ERROR, "no usable connection to the broker within 0.5s"),
        (Outcome.TARGET_ERROR, "ChannelNotFoundEntity"),  # a fresh connect: the bind fails
    ]
    assert replaced
    assert back.outcome is Outcome.ACKED
    queue = await broker.queue(name)
    assert [m.headers["X-Hookgate-Attempt"] for m in await broker.take(queue, 2)] == ["1", "5"]


async def test_wrong_credentials_are_a_target_error(broker):
    parts = urlsplit(broker.url)
    wrong = urlunsplit(parts._replace(netloc=f"nobody:wrong@{parts.hostname}:{parts.port}"))

    async with rabbit(wrong, "anything") as target:
        result = await target(a_message())

    assert result.outcome is Outcome.TARGET_ERROR
    assert result.error is not None
    assert "ACCESS_REFUSED" in result.error
    assert "wrong" not in result.error


# -- connections ------------------------------------------------------------------------------


async def test_an_unreachable_broker_is_a_connect_error_at_once():
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    started = time.monotonic()

    async with rabbit(url, "q", connect_timeout=1.0) as target:
        first = await target(a_message())
        second = await target(a_message(attempt=2))

    assert (first.outcome, second.outcome) == (Outcome.CONNECT_ERROR, Outcome.CONNECT_ERROR)
    assert first.error is not None
    assert "Connect call failed" in first.error
    assert time.monotonic() - started < 1.0


async def test_a_broker_that_never_answers_is_a_connect_error_after_connect_timeout():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        async with rabbit(f"amqp://guest:guest@127.0.0.1:{port}/", "q", connect_timeout=0.3) as t:
            result = await t(a_message())
    finally:
        server.close()
        await server.wait_closed()

    assert result.outcome is Outcome.CONNECT_ERROR
    assert 0.3 <= time.monotonic() - started < 3


async def test_a_closed_connection_object_is_replaced_on_the_next_send(broker):
    queue = await broker.queue()

    async with rabbit(broker.url, queue.name) as target:
        assert (await target(a_message())).outcome is Outcome.ACKED
        old = target._connection
        assert old is not None
        await old.close()
        after = await target(a_message(attempt=2))
        assert target._connection is not old

    assert after.outcome is Outcome.ACKED  # observed: no failed attempt in between
    assert len(await broker.take(queue, 2)) == 2


async def test_a_dropped_network_connection_recovers_within_two_sends(broker, proxied):
    proxy, url = proxied
    queue = await broker.queue()

    async with rabbit(url, queue.name) as target:
        assert (await target(a_message())).outcome is Outcome.ACKED
        connection = target._connection
        assert proxy.cut() == 2
        outcomes = [(await target(a_message(attempt=2))).outcome]
        if outcomes[0] is not Outcome.ACKED:
            outcomes.append((await target(a_message(attempt=3))).outcome)
        assert target._connection is connection  # the robust connection reconnected itself

    # Observed: the send right after the cut is lost with the link (CONNECT_ERROR, so the relay
    # retries it); the next one waits for the reconnect (~1 s here) and is confirmed.
    assert outcomes in ([Outcome.CONNECT_ERROR, Outcome.ACKED], [Outcome.ACKED])
    assert len(await broker.take(queue, 2)) == 2


async def test_a_send_while_the_broker_stays_away_is_a_connect_error_then_recovers(broker, proxied):
    proxy, url = proxied
    queue = await broker.queue()
    assert proxy.server is not None

    async with rabbit(url, queue.name, connect_timeout=0.5) as target:
        assert (await target(a_message())).outcome is Outcome.ACKED
        connection = target._connection
        assert connection is not None
        dropped = on_drop(connection)
        proxy.server.close()  # new connections are refused from now on
        await proxy.server.wait_closed()
        proxy.cut()
        async with asyncio.timeout(5):
            await dropped.wait()
        started = time.monotonic()
        down = await target(a_message(attempt=2))
        waited = time.monotonic() - started
        proxy.server = await asyncio.start_server(proxy._link, "127.0.0.1", urlsplit(url).port)
        back: list[Outcome] = []
        async with asyncio.timeout(10):  # the robust connection retries once a second
            while not back or back[-1] is not Outcome.ACKED:
                back.append((await target(a_message(attempt=3))).outcome)
        assert target._connection is connection  # the robust connection reconnected itself

    assert down.outcome is Outcome.CONNECT_ERROR
    assert down.error == "no usable connection to the broker within 0.5s"
    assert 0.5 <= waited < 2
    assert set(back[:-1]) <= {Outcome.CONNECT_ERROR}
    assert len(await broker.take(queue, 2)) == 2


async def test_aclose_closes_the_connection_and_later_sends_fail_cleanly(broker):
    queue = await broker.queue()
    target = RabbitTarget(RabbitOptions(queue.name, broker.url))
    assert (await target(a_message())).outcome is Outcome.ACKED
    connection = target._connection
    assert connection is not None

    await target.aclose()

    assert connection.is_closed
    late = await target(a_message(attempt=2))
    assert late.outcome is Outcome.CONNECT_ERROR
    assert await broker.count(queue) == 1
    await target.aclose()  # twice is harmless


# -- config -------------------------------------------------------------------------------


def config_problems(options: str) -> Sequence[str]:
    yaml = f"""
relay: {{enabled: false}}
sources:
  shop: {{}}
targets:
  q: {{type: rabbitmq, {options}}}
routes:
  - {{source: shop, targets: [q]}}
"""
    with pytest.raises(ConfigError) as caught:
        make_config("postgresql://unused/db", yaml)
    return caught.value.problems


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ('exchange: "hooks"', "targets.q.routing_key: is required"),
        (
            'routing_key: "hooks.{customer}"',
            "targets.q.routing_key: unknown placeholder {customer}",
        ),
        ('routing_key: "hooks.{source!r}"', "targets.q.routing_key: unknown placeholder {source}"),
        (
            'routing_key: "hooks.{source"',
            "targets.q.routing_key: expected '}' before end of string",
        ),
        ("routing_key: [a]", "targets.q.routing_key: expected a routing key"),
        (
            'routing_key: q, url: "http://rabbit:5672/"',
            "targets.q.url: expected an amqp:// or amqps:// URL",
        ),
        ("routing_key: q, exchange: [x]", "targets.q.exchange: expected a string"),
        (
            'routing_key: "hooks.{source}", exchange: x, declare_queue: q',
            "targets.q.declare_queue: binds with routing_key, which then cannot have placeholders",
        ),
        (
            "routing_key: orders, declare_queue: hooks",
            'targets.q.declare_queue: the default exchange routes by queue name, so routing_key must be "hooks"',
        ),
        ('routing_key: q, declare_queue: ""', "targets.q.declare_queue: expected a queue name"),
        (
            "routing_key: q, connect_timeout: 0s",
            "targets.q.connect_timeout: expected a duration above 0",
        ),
        (
            "routing_key: q, connect_timeout: soon",
            "targets.q.connect_timeout: expected a duration like 10s",
        ),
        ("routing_key: q, queue: q", "targets.q.queue: unknown key"),
    ],
)
def test_config_mistakes_are_reported_with_their_key_path(options, problem):
    problems = config_problems(options)
    assert any(p.startswith(problem) for p in problems), problems


def test_a_bad_url_is_reported_without_its_password():
    (problem,) = config_problems('routing_key: q, url: "http://user:s3cret@rabbit/"')
    assert problem.startswith("targets.q.url: expected an amqp:// or amqps:// URL")
    assert "s3cret" not in problem


def test_the_options_never_show_the_password():
    options = RabbitOptions("q", "amqp://user:s3cret@rabbit:5672/")
    assert "s3cret" not in repr(options)


def test_a_full_config_parses_with_defaults():
    config = make_config(
        "postgresql://unused/db",
        """
sources:
  shop: {}
targets:
  q: {type: rabbitmq, routing_key: "hooks.{event_type}", exchange: events}
routes:
  - {source: shop, targets: [q]}
""",
    )
    assert config.targets["q"].options == RabbitOptions(
        routing_key="hooks.{event_type}",
        url="amqp://guest:guest@127.0.0.1:5672/",
        exchange="events",
    )


def test_without_aio_pika_the_config_says_which_extra_to_install(monkeypatch):
    monkeypatch.setattr(rabbitmq, "HAVE_AIO_PIKA", False)
    problems: list[str] = []
    rabbitmq.plugin.parse(Section({"routing_key": "q"}, "targets.q", problems))
    assert problems == [
        "targets.q.type: needs the aio-pika package: pip install 'hookgate[rabbitmq]'"
    ]


# -- through the relay ---------------------------------------------------------------------


def shop_event(clock: FrozenClock, targets: Sequence[str] = ("q",)) -> EventRecord:
    new_id = event_id(clock.now())
    return EventRecord(
        id=new_id,
        source="shop",
        event_type="order.paid",
        received_at=clock.now(),
        method="POST",
        path="/in/shop",
        query="",
        headers=[("Content-Type", "application/json"), ("X-Shop-Topic", "orders/paid")],
        body=BODY,
        peer="203.0.113.7",
        deliveries=[(delivery_id(new_id, name), name) for name in targets],
    )


async def test_the_relay_delivers_through_rabbitmq_and_records_acked(
    database_url, store, clock, broker
):
    name = broker.declared_queue()
    config = make_config(
        database_url,
        f"""
relay: {{enabled: false}}
sources:
  shop: {{}}
targets:
  q: {{type: rabbitmq, url: "{broker.url}", routing_key: "{name}", declare_queue: "{name}"}}
routes:
  - {{source: shop, targets: [q]}}
""",
    )
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, config, clock) as relay:
        assert await relay.run_once() == 1
        await relay.drain()

    (delivery,) = await store.deliveries(event.id)
    assert (delivery["status"], delivery["last_outcome"]) == ("delivered", "ACKED")
    (attempt,) = await store.attempts(delivery["id"])
    assert (attempt["outcome"], attempt["status_code"], attempt["error"]) == ("ACKED", None, None)
    queue = await broker.queue(name)
    (got,) = await broker.take(queue)
    assert got.body == BODY
    assert got.message_id == str(delivery["id"]) == str(delivery_id(event.id, "q"))
    assert got.correlation_id == str(event.id)
    assert got.content_type == "application/json"
    assert got.headers["X-Hookgate-Event-Id"] == str(event.id)
    assert got.headers["X-Hookgate-Source"] == "shop"
    assert got.headers["X-Hookgate-Target"] == "q"
    assert "X-Shop-Topic" not in got.headers  # forward_headers is not set: not forwarded
