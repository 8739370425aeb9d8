"""The `nats` target against a real NATS server with JetStream.

Each test gets its own stream and subject prefix (uuid), deleted afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

import nats
import pytest
from conftest import make_config, relay_for
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from gateway.clock import FrozenClock
from gateway.errors import ConfigError
from gateway.ids import delivery_id, event_id
from gateway.plugin import Message
from gateway.section import Section
from gateway.storage.store import EventRecord
from plugins.targets import nats_jetstream
from plugins.targets.nats_jetstream import NatsTarget, plugin

NOT_UTF8 = b"\xff\xfe\x00binary\x80 payload \xc3\x28"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@dataclass
class Stream:
    name: str
    prefix: str  # the stream captures `<prefix>.>`
    js: JetStreamContext
    client: Client

    async def messages(self) -> list[Any]:
        info = await self.js.stream_info(self.name)
        return [await self.js.get_msg(self.name, seq) for seq in range(1, info.state.last_seq + 1)]


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[Stream]:
    tag = uuid.uuid4().hex[:12]
    client = await nats.connect(nats_url)
    js = client.jetstream()
    created = Stream(f"HG_{tag}", f"hg.{tag}", js, client)
    await js.add_stream(name=created.name, subjects=[f"{created.prefix}.>"])
    yield created
    await delete_stream(js, created.name)
    await client.close()


async def delete_stream(js: JetStreamContext, name: str) -> None:
    with suppress(NotFoundError):
        await js.delete_stream(name)


Make = Callable[..., NatsTarget]


@pytest.fixture
async def make_target(nats_url: str) -> AsyncIterator[Make]:
    """`make_target(subject=..., **options)`: a parsed and created target, closed after the test."""
    made: list[NatsTarget] = []

    def make(**options: Any) -> NatsTarget:
        options.setdefault("url", nats_url)
        problems: list[str] = []
        parsed = plugin.parse(Section(options, "targets.events", problems))
        assert problems == []
        target = plugin.create(parsed, None)  # type: ignore[arg-type]  # it needs no resources
        made.append(target)
        return target

    yield make
    for target in made:
        await target.aclose()


def a_message(**changes: Any) -> Message:
    """A message as the relay builds it; its headers follow the ids and attempt given."""
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "delivery_id": uuid.uuid4(),
        "attempt": 1,
        "source": "shop",
        "target": "events",
        "event_type": "order.paid",
        "received_at": NOW,
        "now": NOW,
        "body": NOT_UTF8,
    } | changes
    delivery = str(fields["delivery_id"])
    headers = [
        ("Content-Type", "application/octet-stream"),
        ("X-Shop-Topic", "orders/paid"),
        ("User-Agent", "hookgate/0.1"),
        ("X-Hookgate-Event-Id", str(fields["event_id"])),
        ("X-Hookgate-Delivery-Id", delivery),
        ("X-Hookgate-Attempt", str(fields["attempt"])),
        ("X-Hookgate-Source", fields["source"]),
        ("Idempotency-Key", delivery),
    ]
    if fields["event_type"]:
        headers.append(("X-Hookgate-Event-Type", fields["event_type"]))
    return Message(**fields, headers=tuple(headers))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_the_message_is_the_raw_body_with_the_identity_headers(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.{{source}}.{{event_type}}")
    message = a_message()

    result = await target(message)

    assert result.outcome == "ACKED"
    assert result.error is None
    assert result.extra == {
        "stream": stream.name,
        "seq": "1",
        "duplicate": "false",
        "subject": f"{stream.prefix}.shop.order.paid",
    }
    assert json.loads(result.body) == {
        "stream": stream.name,
        "seq": 1,
        "duplicate": False,
        "subject": f"{stream.prefix}.shop.order.paid",
    }
    (stored,) = await stream.messages()
    assert stored.subject == f"{stream.prefix}.shop.order.paid"
    assert stored.data == NOT_UTF8
    assert stored.headers["Nats-Msg-Id"] == str(message.delivery_id)
    assert stored.headers["X-Hookgate-Delivery-Id"] == str(message.delivery_id)
    assert stored.headers["Idempotency-Key"] == str(message.delivery_id)
    assert stored.headers["X-Hookgate-Event-Id"] == str(message.event_id)
    assert stored.headers["X-Hookgate-Source"] == "shop"
    assert stored.headers["X-Hookgate-Event-Type"] == "order.paid"
    assert stored.headers["X-Hookgate-Attempt"] == "1"
    assert stored.headers["Content-Type"] == "application/octet-stream"
    assert stored.headers["X-Shop-Topic"] == "orders/paid"


async def test_provider_headers_cannot_give_the_server_orders(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.x")
    message = a_message()
    forwarded = (
        ("Nats-Msg-Id", "provider-chosen"),
        ("nats-rollup", "all"),
        ("X-A", "1"),
        ("X-A", "2"),
    )
    message = replace(message, headers=message.headers + forwarded)

    assert (await target(message)).outcome == "ACKED"

    (stored,) = await stream.messages()
    assert stored.headers["Nats-Msg-Id"] == str(message.delivery_id)
    assert "nats-rollup" not in {name.lower() for name in stored.headers}
    assert stored.headers["X-A"] == "1, 2"


async def test_event_type_placeholders_keep_dots_and_lose_wildcards(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.{{target}}.{{event_type}}")

    results = [
        await target(a_message(event_type=None)),
        await target(a_message(event_type="")),
        await target(a_message(event_type="invoice.payment_failed")),
        await target(a_message(event_type="odd type.*.>..end")),
    ]

    assert [r.outcome for r in results] == ["ACKED"] * 4
    subjects = [stored.subject for stored in await stream.messages()]
    assert subjects == [
        f"{stream.prefix}.events.none",
        f"{stream.prefix}.events.none",
        f"{stream.prefix}.events.invoice.payment_failed",
        f"{stream.prefix}.events.odd_type._._._.end",
    ]


async def test_the_same_delivery_twice_is_stored_once_and_both_are_acked(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.orders")
    first = a_message()
    retry = a_message(event_id=first.event_id, delivery_id=first.delivery_id, attempt=2)

    one, two = await target(first), await target(retry)

    assert (one.outcome, one.extra["duplicate"], one.extra["seq"]) == ("ACKED", "false", "1")
    assert (two.outcome, two.extra["duplicate"], two.extra["seq"]) == ("ACKED", "true", "1")
    (stored,) = await stream.messages()
    assert stored.headers["Nats-Msg-Id"] == str(first.delivery_id)
    assert stored.headers["X-Hookgate-Attempt"] == "1"


async def test_another_delivery_of_the_same_event_is_a_new_message(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.orders")
    first = a_message()
    other_target = a_message(event_id=first.event_id)

    results = [await target(first), await target(other_target)]

    assert [r.extra["duplicate"] for r in results] == ["false", "false"]
    stored = await stream.messages()
    assert [m.headers["X-Hookgate-Event-Id"] for m in stored] == [str(first.event_id)] * 2
    assert [m.headers["Nats-Msg-Id"] for m in stored] == [
        str(first.delivery_id),
        str(other_target.delivery_id),
    ]


async def test_a_subject_no_stream_captures_is_a_target_error(stream, make_target):
    target = make_target(subject=f"nostream.{stream.prefix}.{{source}}")

    result = await target(a_message())

    assert result.outcome == "TARGET_ERROR"
    assert result.error == f"no stream for subject nostream.{stream.prefix}.shop"


async def test_the_expected_stream_refuses_a_subject_another_stream_captures(stream, make_target):
    other = f"HG_OTHER_{uuid.uuid4().hex[:8]}"
    await stream.js.add_stream(name=other, subjects=[f"other.{stream.prefix}"])
    try:
        target = make_target(subject=f"{stream.prefix}.x", stream=other)
        result = await target(a_message())
    finally:
        await delete_stream(stream.js, other)

    assert result.outcome == "TARGET_ERROR"
    assert "expected stream does not match" in (result.error or "")
    assert "10060" in (result.error or "")
    assert await stream.messages() == []


async def test_create_stream_creates_a_missing_stream_once(nats_url, make_target):
    tag = uuid.uuid4().hex[:12]
    name = f"HG_NEW_{tag}"
    options = {
        "subject": f"hgnew.{tag}.{{source}}.{{event_type}}",
        "create_stream": {"name": name, "duplicate_window": "10m"},
    }
    client = await nats.connect(nats_url)
    js = client.jetstream()
    try:
        first, second = make_target(**options), make_target(**options)
        assert (await first(a_message())).outcome == "ACKED"
        assert (await second(a_message())).outcome == "ACKED"  # the stream exists: reused

        info = await js.stream_info(name)
        assert info.config.subjects == [f"hgnew.{tag}.>"]
        assert info.config.duplicate_window == 600
        assert info.config.max_msgs in (None, -1)  # never trimmed by length
        assert info.state.messages == 2
    finally:
        await delete_stream(js, name)
        await client.close()


async def test_a_created_stream_deleted_under_the_target_is_created_again(nats_url, make_target):
    tag = uuid.uuid4().hex[:12]
    name = f"HG_NEW_{tag}"
    target = make_target(subject=f"hgnew.{tag}.x", create_stream={"name": name})
    client = await nats.connect(nats_url)
    js = client.jetstream()
    try:
        assert (await target(a_message())).outcome == "ACKED"
        await js.delete_stream(name)

        lost = await target(a_message())
        retried = await target(a_message())

        assert (lost.outcome, lost.error) == (
            "TARGET_ERROR",
            f"no stream for subject hgnew.{tag}.x",
        )
        assert retried.outcome == "ACKED"
        assert (await js.stream_info(name)).state.messages == 1
    finally:
        await delete_stream(js, name)
        await client.close()


async def test_the_connection_is_opened_once_and_shared(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.x")

    results = await asyncio.gather(*(target(a_message()) for _ in range(20)))

    assert {r.outcome for r in results} == {"ACKED"}
    opened = target._connection
    assert (await target(a_message())).outcome == "ACKED"
    assert target._connection is opened
    assert len(await stream.messages()) == 21


async def test_a_closed_connection_is_opened_again_on_the_next_send(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.x")
    assert (await target(a_message())).outcome == "ACKED"
    first = target._connection

    await first.client.close()
    result = await target(a_message())

    assert result.outcome == "ACKED"
    assert target._connection is not first
    assert len(await stream.messages()) == 2


async def test_a_dropped_socket_fails_one_send_at_most_then_reconnects(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.x")
    assert (await target(a_message())).outcome == "ACKED"
    first = target._connection
    first.client._transport._io_writer.transport.abort()  # the TCP connection dies under it

    async with asyncio.timeout(5):
        lost = await target(a_message())
        recovered = await target(a_message())

    # Sent before the client noticed: lost with the socket, reported at once, not after a timeout.
    assert (lost.outcome, lost.error) == (
        "CONNECT_ERROR",
        "connection lost before the broker answered",
    )
    assert recovered.outcome == "ACKED"
    assert target._connection is not first
    assert len(await stream.messages()) == 2


async def test_a_connection_lost_while_waiting_for_the_ack_is_a_connect_error(stream, make_target):
    # A plain subscriber that never answers: the publish waits for its PubAck.
    arrived = asyncio.Event()

    async def swallow(_msg: Any) -> None:
        arrived.set()

    await stream.client.subscribe(f"hold.{stream.prefix}", cb=swallow)
    await stream.client.flush()
    target = make_target(subject=f"hold.{stream.prefix}")
    sending = asyncio.create_task(target(a_message()))
    async with asyncio.timeout(5):
        await arrived.wait()
        await target._connection.client.close()
        result = await sending

    assert result.outcome == "CONNECT_ERROR"


async def test_cancellation_propagates_and_the_connection_stays_usable(stream, make_target):
    arrived = asyncio.Event()

    async def swallow(_msg: Any) -> None:
        arrived.set()

    await stream.client.subscribe(f"hold.{stream.prefix}", cb=swallow)
    await stream.client.flush()
    target = make_target(subject="{target}")  # the message's target picks the subject here
    sending = asyncio.create_task(target(a_message(target=f"hold.{stream.prefix}")))
    await asyncio.wait_for(arrived.wait(), 5)
    opened = target._connection
    sending.cancel()  # what the relay's timeout does
    with pytest.raises(asyncio.CancelledError):
        await sending

    result = await target(a_message(target=f"{stream.prefix}.after"))

    assert result.outcome == "ACKED"
    assert target._connection is opened
    (stored,) = await stream.messages()
    assert stored.subject == f"{stream.prefix}.after"


async def test_an_unreachable_broker_is_a_quick_connect_error(make_target):
    target = make_target(url=f"nats://127.0.0.1:{closed_port()}", subject="hg.x")
    started = time.perf_counter()

    async with asyncio.timeout(5):
        result = await target(a_message())
        again = await target(a_message())

    assert result.outcome == again.outcome == "CONNECT_ERROR"
    assert result.error is not None
    assert result.error.startswith("cannot connect:")
    assert time.perf_counter() - started < 2
    assert target._connection is None


async def test_aclose_closes_the_connection(stream, make_target):
    target = make_target(subject=f"{stream.prefix}.x")
    await target.aclose()  # nothing opened yet: nothing to do
    assert (await target(a_message())).outcome == "ACKED"
    client = target._connection.client

    await target.aclose()

    assert client.is_closed
    assert target._connection is None


# --- configuration -------------------------------------------------------------------


def config_problems(target_yaml: str) -> list[str]:
    text = f"""
sources:
  shop: {{}}
targets:
  events: {{type: nats, {target_yaml}}}
routes:
  - {{source: shop, targets: [events]}}
"""
    with pytest.raises(ConfigError) as caught:
        make_config("postgresql://unused/db", text)
    return list(caught.value.problems)


def test_a_minimal_config_parses_with_the_default_url():
    config = make_config(
        "postgresql://unused/db",
        """
sources:
  shop: {}
targets:
  events: {type: nats, subject: "webhooks.{source}.{event_type}", timeout: 5s}
routes:
  - {source: shop, targets: [events]}
""",
    )
    options = config.targets["events"].options
    assert options.servers == ("nats://127.0.0.1:4222",)
    assert options.subject == "webhooks.{source}.{event_type}"
    assert (options.stream, options.create_stream) == (None, None)
    assert config.targets["events"].timeout == 5


def test_create_stream_names_the_expected_stream_and_defaults_its_subjects():
    config = make_config(
        "postgresql://unused/db",
        """
sources:
  shop: {}
targets:
  events:
    type: nats
    servers: ["nats://a:4222", "tls://b:4222"]
    subject: "webhooks.{source}.{event_type}"
    create_stream: {name: WEBHOOKS}
routes:
  - {source: shop, targets: [events]}
""",
    )
    options = config.targets["events"].options
    assert options.servers == ("nats://a:4222", "tls://b:4222")
    assert options.stream == "WEBHOOKS"
    assert options.create_stream.subjects == ("webhooks.>",)


@pytest.mark.parametrize(
    ("target_yaml", "problem"),
    [
        ("url: nats://x:4222", "targets.events.subject: is required"),
        ('subject: "a.{kind}"', "targets.events.subject: unknown placeholder {kind}"),
        ('subject: "a.{source:>9}"', "targets.events.subject: unknown placeholder {source}"),
        ('subject: "a.{source"', "targets.events.subject: unbalanced braces"),
        ('subject: "a b.c"', "targets.events.subject: expected a subject like"),
        ('subject: "a.*"', "targets.events.subject: expected a subject like"),
        ('subject: "a..b"', "targets.events.subject: expected a subject like"),
        ('subject: a, url: "http://x"', "targets.events.url: expected a nats:// or tls:// URL"),
        (
            'subject: a, url: "http://user:secret@x"',
            'targets.events.url: expected a nats:// or tls:// URL, got "http://x"',
        ),
        ('subject: a, url: "nats://x", servers: ["nats://y"]', "targets.events.servers: give"),
        ("subject: a, servers: []", "targets.events.servers: expected a list of nats:// URLs"),
        ("subject: a, stream: my.stream", "targets.events.stream: expected a stream name"),
        ("subject: a, create_stream: {subjects: [a]}", "targets.events.create_stream.name: is"),
        (
            "subject: a, create_stream: {name: S, subjects: [a.>.b]}",
            "targets.events.create_stream.subjects: expected a subject like webhooks.>",
        ),
        (
            "subject: a, create_stream: {name: S, max_msgs: 5}",
            "targets.events.create_stream.max_msgs: unknown key",
        ),
        (
            "subject: a, stream: A, create_stream: {name: B}",
            "targets.events.stream: must match create_stream.name (B)",
        ),
        ("subject: a, connect_timeout: soon", "targets.events.connect_timeout: expected a"),
        ("subject: a, sujbect: b", "targets.events.sujbect: unknown key"),
    ],
)
def test_config_mistakes_are_reported_with_their_key_path(target_yaml, problem):
    problems = config_problems(target_yaml)
    assert any(p.startswith(problem) for p in problems), problems


def test_a_missing_client_library_is_a_config_problem(monkeypatch):
    monkeypatch.setattr(nats_jetstream, "HAVE_NATS", False)
    problems = config_problems('subject: "a"')
    assert problems == [
        "targets.events.type: needs the nats-py package: pip install 'hookgate[nats]'"
    ]


# --- through the relay ---------------------------------------------------------------


def shop_event(clock: FrozenClock, body: bytes) -> EventRecord:
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
        body=body,
        peer="203.0.113.7",
        deliveries=[(delivery_id(new_id, "events"), "events")],
    )


async def test_the_relay_delivers_to_jetstream_and_records_the_ack(
    database_url, store, clock, stream, nats_url
):
    config = make_config(
        database_url,
        f"""
relay: {{enabled: false}}
sources:
  shop: {{}}
targets:
  events:
    type: nats
    url: "{nats_url}"
    subject: "{stream.prefix}.{{source}}.{{event_type}}"
    stream: {stream.name}
    forward_headers: ["X-Shop-*"]
routes:
  - {{source: shop, targets: [events]}}
""",
    )
    body = b'{"id": "evt_1", "type": "order.paid"}'
    event = shop_event(clock, body)
    await store.insert_events([event])

    async with relay_for(store, config, clock) as relay:
        assert await relay.run_once() == 1
        await relay.drain()

    (delivery,) = await store.deliveries(event.id)
    assert (delivery["status"], delivery["last_outcome"]) == ("delivered", "ACKED")
    (attempt,) = await store.attempts(delivery["id"])
    assert (attempt["outcome"], attempt["status_code"], attempt["error"]) == ("ACKED", None, None)
    assert json.loads(attempt["response_body"])["stream"] == stream.name
    (stored,) = await stream.messages()
    assert stored.subject == f"{stream.prefix}.shop.order.paid"
    assert stored.data == body
    assert stored.headers["Nats-Msg-Id"] == str(delivery["id"])
    assert stored.headers["X-Hookgate-Event-Id"] == str(event.id)
    assert stored.headers["X-Shop-Topic"] == "orders/paid"
    assert stored.headers["Content-Type"] == "application/json"


async def test_the_relay_retries_an_unreachable_broker(database_url, store, clock):
    config = make_config(
        database_url,
        f"""
relay: {{enabled: false}}
sources:
  shop: {{}}
targets:
  events: {{type: nats, url: "nats://127.0.0.1:{closed_port()}", subject: hg.x}}
routes:
  - {{source: shop, targets: [events]}}
""",
    )
    event = shop_event(clock, b"{}")
    await store.insert_events([event])

    async with relay_for(store, config, clock) as relay:
        assert await relay.run_once() == 1
        await relay.drain()

    (delivery,) = await store.deliveries(event.id)
    assert (delivery["status"], delivery["last_outcome"]) == ("pending", "CONNECT_ERROR")
    assert delivery["due_at"] == clock.now() + dt.timedelta(seconds=5)
