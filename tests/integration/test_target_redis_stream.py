"""The `redis-stream` target against a real Redis on loopback.

Every test writes to its own stream names (uuid) and deletes them afterwards; the
target's connections carry a unique client name, so a test kills only its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis
from conftest import make_config, relay_for

from gateway.clock import FrozenClock
from gateway.errors import ConfigError
from gateway.ids import delivery_id, event_id
from gateway.plugin import Message, Outcome
from gateway.section import Section
from gateway.storage.store import EventRecord
from plugins.targets import redis_stream
from plugins.targets.redis_stream import RedisStreamOptions, RedisStreamTarget, plugin

BODY = b'{"type": "order.paid", "id": "evt_1"}'
NOT_UTF8 = b"\xff\xfe\x00binary\x80payload\xc3\x28"
RECEIVED = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)


def parse(data: Any) -> tuple[RedisStreamOptions, list[str]]:
    problems: list[str] = []
    options = plugin.parse(Section(data, "targets.t", problems))
    return options, problems


def message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "delivery_id": uuid.uuid4(),
        "attempt": 1,
        "source": "shop",
        "target": "t",
        "event_type": "order.paid",
        "received_at": RECEIVED,
        "now": RECEIVED,
        "body": BODY,
        "headers": (
            ("Content-Type", "application/json"),
            ("X-Shop-Topic", "orders/paid"),
            ("X-Hookgate-Source", "shop"),
        ),
    }
    return Message(**(fields | changes))


def with_client_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}client_name={name}"


class Harness:
    """Targets named `self.name` on the Redis under test, plus an admin client."""

    def __init__(self, redis_url: str, admin: redis.Redis) -> None:
        self.redis_url = redis_url
        self.admin = admin
        self.name = f"hookgate-test-{uuid.uuid4().hex[:12]}"
        self.prefix = f"hookgate-test:{uuid.uuid4().hex[:12]}"
        self.targets: list[RedisStreamTarget] = []

    @property
    def url(self) -> str:
        return with_client_name(self.redis_url, self.name)

    def target(self, stream: str = "{source}", url: str | None = None) -> RedisStreamTarget:
        options, problems = parse({"url": url or self.url, "stream": f"{self.prefix}:{stream}"})
        assert problems == []
        created = plugin.create(options, None)  # type: ignore[arg-type]
        self.targets.append(created)
        return created

    async def entries(self, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        return await self.admin.xrange(f"{self.prefix}:{stream}")

    async def connections(self) -> list[dict[str, Any]]:
        return [c for c in await self.admin.client_list() if c["name"] == self.name]

    async def wait_disconnected(self) -> None:
        """Until the server has dropped every connection of ours (2 s at most)."""
        async with asyncio.timeout(2):
            # Polling is the only way to watch another process's state; bounded above.
            while await self.connections():  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def kill_connections(self) -> int:
        """Close the target's connections server-side, as a Redis restart would."""
        killed = 0
        for client in await self.connections():
            killed += await self.admin.client_kill_filter(_id=client["id"])
        return killed


@pytest.fixture
async def harness(redis_url: str) -> AsyncIterator[Harness]:
    admin = redis.Redis.from_url(redis_url)
    setup = Harness(redis_url, admin)
    try:
        yield setup
    finally:
        for target in setup.targets:
            await target.aclose()
        keys = [key async for key in admin.scan_iter(match=f"{setup.prefix}:*")]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- message content ----------------------------------------------------------------


async def test_redis_stream_entry_carries_the_message_exactly(harness):
    target = harness.target()
    sent = message(body=NOT_UTF8)

    result = await target(sent)

    assert result.outcome is Outcome.ACKED
    ((entry_id, fields),) = await harness.entries("shop")
    assert result.body == entry_id
    assert result.extra == {"stream": f"{harness.prefix}:shop", "entry_id": entry_id.decode()}
    assert list(fields) == [
        b"event_id", b"delivery_id", b"attempt", b"source", b"target",
        b"type", b"received_at", b"headers", b"body",
    ]  # fmt: skip
    assert fields[b"body"] == NOT_UTF8
    assert fields[b"event_id"] == str(sent.event_id).encode()
    assert fields[b"delivery_id"] == sent.idempotency_key.encode()
    assert fields[b"attempt"] == b"1"
    assert fields[b"source"] == b"shop"
    assert fields[b"target"] == b"t"
    assert fields[b"type"] == b"order.paid"
    assert dt.datetime.fromisoformat(fields[b"received_at"].decode()) == RECEIVED
    assert json.loads(fields[b"headers"]) == [[name, value] for name, value in sent.headers]


async def test_redis_stream_without_an_event_type_sends_an_empty_type(harness):
    target = harness.target()

    assert (await target(message(event_type=None, body=b""))).outcome is Outcome.ACKED

    ((_, fields),) = await harness.entries("shop")
    assert fields[b"type"] == b""
    assert fields[b"body"] == b""


async def test_redis_stream_name_expands_source_and_target_per_message(harness):
    target = harness.target("{source}:{target}:{{literal}}")

    await target(message(source="shop", target="billing"))
    await target(message(source="github", target="billing"))

    assert len(await harness.entries("shop:billing:{literal}")) == 1
    assert len(await harness.entries("github:billing:{literal}")) == 1


async def test_redis_stream_same_delivery_twice_adds_two_entries_with_the_same_ids(harness):
    target = harness.target()
    first = message()
    retry = message(event_id=first.event_id, delivery_id=first.delivery_id, attempt=2)

    results = [await target(first), await target(retry)]

    assert [r.outcome for r in results] == [Outcome.ACKED, Outcome.ACKED]
    entries = await harness.entries("shop")
    assert [entry_id for entry_id, _ in entries] == [r.body for r in results]
    assert {f[b"delivery_id"] for _, f in entries} == {first.idempotency_key.encode()}
    assert {f[b"event_id"] for _, f in entries} == {str(first.event_id).encode()}
    assert [f[b"attempt"] for _, f in entries] == [b"1", b"2"]


async def test_redis_stream_is_never_trimmed(harness):
    target = harness.target()

    results = await asyncio.gather(*(target(message(body=b"%d" % i)) for i in range(200)))

    assert {r.outcome for r in results} == {Outcome.ACKED}
    assert len(await harness.entries("shop")) == 200


# --- connections --------------------------------------------------------------------


async def test_redis_stream_concurrent_sends_share_one_client(harness):
    target = harness.target()

    results = await asyncio.gather(*(target(message()) for _ in range(20)))

    assert {r.outcome for r in results} == {Outcome.ACKED}
    assert 1 <= len(await harness.connections()) <= 20
    assert target._client is not None
    first = target._client
    await target(message())
    assert target._client is first


async def test_redis_stream_reconnects_after_its_connection_is_killed(harness):
    target = harness.target()
    assert (await target(message())).outcome is Outcome.ACKED
    assert await harness.kill_connections() == 1

    # The pool sees the closed socket before reusing it and dials again, so not even one
    # attempt fails. (Under RESP3, redis-py 8 skips that check and this send would fail.)
    assert (await target(message())).outcome is Outcome.ACKED
    assert len(await harness.entries("shop")) == 2
    assert len(await harness.connections()) == 1


async def test_redis_stream_recovers_every_pooled_connection_after_a_restart(harness):
    target = harness.target()
    await asyncio.gather(*(target(message()) for _ in range(10)))
    assert await harness.kill_connections() >= 2

    results = await asyncio.gather(*(target(message()) for _ in range(10)))

    assert {r.outcome for r in results} == {Outcome.ACKED}
    assert len(await harness.entries("shop")) == 20


async def test_redis_stream_sends_beyond_max_connections_wait_for_a_connection(harness):
    target = harness.target(url=f"{harness.url}&max_connections=2")

    results = await asyncio.gather(*(target(message()) for _ in range(30)))

    assert {r.outcome for r in results} == {Outcome.ACKED}
    assert 1 <= len(await harness.connections()) <= 2


async def test_redis_stream_unreachable_broker_is_a_connect_error(harness):
    target = harness.target(url=f"redis://127.0.0.1:{closed_port()}/0")

    async with asyncio.timeout(2):
        result = await target(message())

    assert result.outcome is Outcome.CONNECT_ERROR
    assert result.error is not None and "ConnectionError" in result.error


async def test_redis_stream_unknown_host_is_a_dns_error(harness):
    target = harness.target(url="redis://hookgate-no-such-host.invalid:6379/0")

    async with asyncio.timeout(5):
        result = await target(message())

    assert result.outcome is Outcome.DNS_ERROR


async def test_redis_stream_key_of_another_type_is_a_target_error(harness):
    target = harness.target()
    await harness.admin.set(f"{harness.prefix}:shop", "not a stream")

    result = await target(message())

    assert result.outcome is Outcome.TARGET_ERROR
    assert result.error is not None and "WRONGTYPE" in result.error


async def test_redis_stream_aclose_closes_the_connection(harness):
    target = harness.target()
    await target(message())
    assert len(await harness.connections()) == 1

    await target.aclose()

    await harness.wait_disconnected()
    assert target._client is None


# --- config -------------------------------------------------------------------------


def test_redis_stream_config_defaults_the_url():
    options, problems = parse({"stream": "hooks:{source}"})

    assert problems == []
    assert options == RedisStreamOptions(url="redis://127.0.0.1:6379/0", stream="hooks:{source}")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({}, "targets.t.stream: is required"),
        ({"stream": ""}, 'targets.t.stream: expected a stream name, got ""'),
        ({"stream": "hooks:{type}"}, "targets.t.stream: unknown placeholder {type} in"),
        ({"stream": "hooks:{source!r}"}, "targets.t.stream: unknown placeholder {source!r} in"),
        ({"stream": "hooks:{"}, "targets.t.stream: Single '{' encountered"),
        (
            {"stream": "s", "url": "http://redis:6379"},
            'targets.t.url: expected a redis://, rediss:// or unix:// URL, got scheme "http"',
        ),
        (
            {"stream": "s", "url": "redis://:hunter2@redis:port/0"},
            "targets.t.url: expected a redis://host:port/db URL; the port is not valid",
        ),
        (
            {"stream": "s", "url": "redis://redis/zero"},
            'targets.t.url: expected a database number after the host, got "/zero"',
        ),
        (
            {"stream": "s", "url": "redis://redis/0?nonsense=1"},
            "targets.t.url: not a URL redis-py accepts",
        ),
        (
            {"stream": "s", "url": "redis://redis/0?socket_timeout=soon"},
            "targets.t.url: not a URL redis-py accepts",
        ),
        ({"stream": "s", "url": 6379}, "targets.t.url: expected a redis:// URL, got 6379"),
    ],
)
def test_redis_stream_config_errors_name_the_key(data, problem):
    _, problems = parse(data)

    assert len(problems) == 1
    assert problems[0].startswith(problem)
    assert "hunter2" not in problems[0]


def test_redis_stream_config_error_through_the_whole_config():
    with pytest.raises(ConfigError) as caught:
        make_config(
            "postgresql:///unused",
            "sources: {shop: {}}\ntargets:\n  t: {type: redis-stream, url: 'redis://r/0'}\n"
            "routes: [{source: shop, targets: [t]}]\n",
        )

    assert caught.value.problems == ("targets.t.stream: is required",)


def test_redis_stream_without_the_redis_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(redis_stream, "redis", None)

    _, problems = parse({"stream": "s"})

    assert problems == ["targets.t.type: needs the redis package: pip install 'hookgate[redis]'"]


# --- through the relay --------------------------------------------------------------


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
        deliveries=[(delivery_id(new_id, "t"), "t")],
    )


async def test_redis_stream_through_the_relay_ends_delivered_and_acked(
    database_url, store, clock, harness
):
    config = make_config(
        database_url,
        f"""
relay: {{enabled: false}}
sources:
  shop: {{}}
targets:
  t: {{type: redis-stream, url: "{harness.url}", stream: "{harness.prefix}:{{source}}",
      forward_headers: ["X-Shop-*"]}}
routes:
  - {{source: shop, targets: [t]}}
""",
    )
    event = shop_event(clock, NOT_UTF8)
    await store.insert_events([event])

    async with relay_for(store, config, clock) as relay:
        assert await relay.run_once() == 1
        await relay.drain()

    (delivery,) = await store.deliveries(event.id)
    assert delivery["status"] == "delivered"
    (attempt,) = await store.attempts(delivery["id"])
    assert attempt["outcome"] == "ACKED"
    ((entry_id, fields),) = await harness.entries("shop")
    assert attempt["response_body"] == entry_id
    assert fields[b"body"] == NOT_UTF8
    assert fields[b"event_id"] == str(event.id).encode()
    assert fields[b"delivery_id"] == str(delivery_id(event.id, "t")).encode()
    assert fields[b"attempt"] == b"1"
    headers = dict(json.loads(fields[b"headers"]))
    assert headers["Idempotency-Key"] == str(delivery_id(event.id, "t"))
    assert headers["X-Shop-Topic"] == "orders/paid"
    assert headers["Content-Type"] == "application/json"
    await harness.wait_disconnected()  # the lane closed the target at shutdown
