"""Claiming deliveries: no double claims across processes, no starvation across targets."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

import aiohttp
import asyncpg
from conftest import make_config

from gateway.config import Config
from gateway.ids import delivery_id, event_id
from gateway.plugins import Resources, load_registry
from gateway.relay.lanes import build_lanes
from gateway.relay.worker import Relay
from gateway.storage.store import AttemptResult, EventRecord, Store

LEASE = 60.0


def event_to(targets: Sequence[str], received_at: dt.datetime) -> EventRecord:
    """An event whose deliveries to `targets` are due at `received_at`."""
    new_id = event_id(received_at)
    return EventRecord(
        id=new_id,
        source="shop",
        event_type="order.paid",
        received_at=received_at,
        method="POST",
        path="/in/shop",
        query="",
        headers=[("Content-Type", "application/json")],
        body=b'{"type": "order.paid"}',
        peer=None,
        deliveries=[(delivery_id(new_id, name), name) for name in targets],
    )


def busy_and_quiet(database_url: str, busy_url: str, quiet_url: str) -> Config:
    return make_config(
        database_url,
        f"""
relay: {{enabled: false}}
sources:
  shop: {{}}
targets:
  busy: {{url: "{busy_url}", concurrency: 2}}
  quiet: {{url: "{quiet_url}"}}
routes:
  - {{source: shop, targets: [busy, quiet]}}
""",
    )


@asynccontextmanager
async def second_store(database_url: str) -> AsyncIterator[Store]:
    """A Store on its own pool: another process, as far as Postgres can tell."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        yield Store(pool)
    finally:
        await pool.close()


async def claim_until_empty(store: Store, worker: str, now: dt.datetime) -> list[UUID]:
    claimed: list[UUID] = []
    while batch := await store.claim({"a": 37, "b": 37}, now, LEASE, worker):
        assert max(Counter(item.target for item in batch).values()) <= 37
        claimed += [item.id for item in batch]
    return claimed


async def test_two_workers_never_claim_the_same_delivery(database_url, store, clock):
    await store.insert_events([event_to(("a", "b"), clock.now()) for _ in range(250)])

    async with second_store(database_url) as one, second_store(database_url) as two:
        first, second = await asyncio.gather(
            claim_until_empty(one, "p1", clock.now()),
            claim_until_empty(two, "p2", clock.now()),
        )

    assert first
    assert second
    assert len(first) == len(set(first))
    assert len(second) == len(set(second))
    assert set(first).isdisjoint(second)
    assert len(first) + len(second) == 500
    async with store.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, status, worker FROM hookgate.deliveries")
        # Each claim started attempt 1; attempts are written when they end, not at claim.
        attempts = await conn.fetchval(
            "SELECT count(*) FROM hookgate.deliveries WHERE attempts = 1"
        )
        assert await conn.fetchval("SELECT count(*) FROM hookgate.attempts") == 0
    holders = {row["id"]: row["worker"] for row in rows}
    assert {row["status"] for row in rows} == {"in_flight"}
    assert {holders[i] for i in first} == {"p1"}
    assert {holders[i] for i in second} == {"p2"}
    assert attempts == 500


async def test_a_busy_target_does_not_starve_another_in_one_claim(store, clock):
    an_hour_ago = clock.now() - dt.timedelta(hours=1)
    await store.insert_events([event_to(("busy",), an_hour_ago) for _ in range(2000)])
    quiet = event_to(("quiet",), clock.now())
    await store.insert_events([quiet])

    claimed = await store.claim({"busy": 100, "quiet": 100}, clock.now(), LEASE, "w")

    assert Counter(item.target for item in claimed) == {"busy": 100, "quiet": 1}
    assert [item.event_id for item in claimed if item.target == "quiet"] == [quiet.id]


async def test_a_saturated_lane_does_not_hold_up_another_target(database_url, store, clock, target):
    busy, quiet = await target(), await target()
    held = busy.recorder.hold = asyncio.Event()
    an_hour_ago = clock.now() - dt.timedelta(hours=1)
    await store.insert_events([event_to(("busy",), an_hour_ago) for _ in range(2000)])
    first = event_to(("quiet",), clock.now())
    await store.insert_events([first])
    config = busy_and_quiet(database_url, busy.url, quiet.url)

    async with aiohttp.ClientSession() as session:
        lanes = build_lanes(config, load_registry(), Resources(session, clock))
        relay = Relay(store, lanes, config.relay, clock, worker="w1", rand=lambda: 0.5)
        try:
            assert await relay.run_once() == 3  # two busy (its concurrency) and the quiet one
            await busy.recorder.wait_for(2)
            await quiet.recorder.wait_for(1)

            assert "busy" not in relay.quotas()
            second = event_to(("quiet",), clock.now())
            await store.insert_events([second])
            assert await relay.run_once() == 1
            await quiet.recorder.wait_for(2)
        finally:
            held.set()
            await relay.drain()

    for event in (first, second):
        (delivery,) = await store.deliveries(event.id)
        assert delivery["status"] == "delivered"
    assert len(busy.recorder.requests) == 2


async def test_claim_takes_only_due_deliveries_up_to_each_targets_quota(store, clock):
    due = [event_to(("a",), clock.now()) for _ in range(5)]
    due += [event_to(("b",), clock.now()) for _ in range(3)]
    later = event_to(("a",), clock.now() + dt.timedelta(seconds=30))
    elsewhere = event_to(("c",), clock.now())
    await store.insert_events([*due, later, elsewhere])

    claimed = await store.claim({"a": 2, "b": 10}, clock.now(), LEASE, "w")
    assert Counter(item.target for item in claimed) == {"a": 2, "b": 3}

    claimed = await store.claim({"a": 10}, clock.now(), LEASE, "w")
    assert len(claimed) == 3
    assert later.id not in {item.event_id for item in claimed}
    assert await store.claim({"a": 10, "b": 10}, clock.now(), LEASE, "w") == []

    clock.advance(30)
    (now_due,) = await store.claim({"a": 10, "b": 10}, clock.now(), LEASE, "w")
    assert now_due.event_id == later.id


async def test_claim_hands_out_the_oldest_due_first(store, clock):
    oldest = event_to(("a",), clock.now() - dt.timedelta(minutes=2))
    newest = event_to(("a",), clock.now())
    older = event_to(("a",), clock.now() - dt.timedelta(minutes=1))
    await store.insert_events([newest, oldest, older])

    claimed = await store.claim({"a": 2}, clock.now(), LEASE, "w")

    assert {item.event_id for item in claimed} == {oldest.id, older.id}


def delivered(claimed, worker: str, now: dt.datetime) -> AttemptResult:
    """`claimed`'s attempt, answered 200 by its target, as `worker` reports it."""
    return AttemptResult(
        claimed.id, claimed.attempt, 1.0, "HTTP_2XX", 200, [], b"ok", None, "delivered", now,
        target=claimed.target, worker=worker, event_id=claimed.event_id,
    )  # fmt: skip


async def test_a_late_result_replaces_its_lease_expired_attempt_and_moves_nothing(store, clock):
    """A worker whose lease ran out still has its attempt written (over the LEASE_EXPIRED
    row the next claim wrote), but the delivery stays with the worker that took it over;
    a result whose delivery is no longer stored writes nothing."""
    record = event_to(("a",), clock.now())
    await store.insert_events([record])
    (first,) = await store.claim({"a": 1}, clock.now(), LEASE, "w1")
    clock.advance(LEASE + 1)
    (second,) = await store.claim({"a": 1}, clock.now(), LEASE, "w2")
    assert (first.id, first.attempt, second.attempt) == (second.id, 1, 2)
    assert [a["outcome"] for a in await store.attempts(first.id)] == ["LEASE_EXPIRED"]

    late = await store.finish_many([delivered(first, "w1", clock.now())], clock.now())
    assert late.kept == [False]
    (delivery,) = await store.deliveries(record.id)
    assert (delivery["status"], delivery["attempts"], delivery["worker"]) == ("in_flight", 2, "w2")

    gone = AttemptResult(
        delivery_id(event_id(clock.now()), "a"), 1, 1.0, "HTTP_2XX", 200, [], b"", None,
        "delivered", clock.now(), target="a", worker="w1",
    )  # fmt: skip
    taken_over = delivered(second, "w2", clock.now())
    assert (await store.finish_many([taken_over, gone], clock.now())).kept == [True, False]
    (delivery,) = await store.deliveries(record.id)
    assert delivery["status"] == "delivered"
    attempts = await store.attempts(first.id)
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in attempts] == [
        (1, "w1", "HTTP_2XX"), (2, "w2", "HTTP_2XX")
    ]  # fmt: skip
    assert await store.attempts(gone.delivery_id) == []
