"""The open floor (migration 0024): claims start no day partition before the oldest day
holding an open delivery, and nothing open is ever below it for longer than a claim."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
from test_relay_scale import event, explain_claim, plan_nodes

from gateway.clock import SystemClock
from gateway.ids import event_id
from gateway.storage.admin import ReplayFilter
from gateway.storage.purge import Purger
from gateway.storage.replay import ReplayRequest, Replays
from gateway.storage.store import NO_FLOOR, RELAY_SESSION, Store


async def history(store: Store, today: dt.date, days_back: int) -> dict[dt.date, uuid.UUID]:
    """One delivered event a day for `days_back` days before today, in their partitions;
    each day's event id."""
    days = [today - dt.timedelta(days=k) for k in range(days_back, 0, -1)]
    async with store.pool.acquire() as conn:
        await conn.execute("SELECT hookgate.ensure_partitions($1, $2)", days[0], today)
    ids = {}
    for day in days:
        noon = dt.datetime.combine(day, dt.time(12), dt.UTC)
        record = event(event_id(noon), noon, ["hot"])
        await store.insert_events([record])
        ids[day] = record.id
    async with store.pool.acquire() as conn:
        await conn.execute("UPDATE hookgate.deliveries SET status = 'delivered'")
    return ids


async def floor_day(conn: asyncpg.Connection) -> dt.date:
    day: dt.date = await conn.fetchval("SELECT hookgate.id_day(floor) FROM hookgate.open_floor")
    return day


async def test_the_floor_rises_to_the_oldest_day_with_an_open_delivery(store: Store) -> None:
    now = SystemClock().now()
    today = now.date()
    ids = await history(store, today, 6)
    purger = Purger(store.pool)
    async with store.pool.acquire() as conn:
        # Nothing open: up to yesterday, never further (today's rows are arriving).
        assert hookgate_day(await purger.raise_open_floor(now, 60)) == today - dt.timedelta(days=1)
        # Pending on day -4, queued on day -5: the oldest open one decides.
        await conn.execute(
            "UPDATE hookgate.deliveries SET status = 'pending' WHERE event_id = $1",
            ids[today - dt.timedelta(days=4)],
        )
        await purger.raise_open_floor(now, 60)
        assert await floor_day(conn) == today - dt.timedelta(days=4)
        await conn.execute(
            "UPDATE hookgate.deliveries SET status = 'queued' WHERE event_id = $1",
            ids[today - dt.timedelta(days=5)],
        )
        await purger.raise_open_floor(now, 60)
        assert await floor_day(conn) == today - dt.timedelta(days=5)
        # In flight counts as open too.
        await conn.execute("UPDATE hookgate.deliveries SET status = 'delivered'")
        await conn.execute(
            "UPDATE hookgate.deliveries SET status = 'in_flight' WHERE event_id = $1",
            ids[today - dt.timedelta(days=2)],
        )
        await purger.raise_open_floor(now, 60)
        assert await floor_day(conn) == today - dt.timedelta(days=2)


def hookgate_day(floor: uuid.UUID) -> dt.date:
    """The UTC day of a UUIDv7's time (the floor is a day's first id)."""
    return dt.datetime.fromtimestamp((floor.int >> 80) / 1000, dt.UTC).date()


async def test_a_claim_starts_no_partition_before_the_floor(database_url: str) -> None:
    now = SystemClock().now()
    today = now.date()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2,
                                     server_settings=RELAY_SESSION)  # fmt: skip
    store = Store(pool)
    try:
        await history(store, today, 6)
        await store.insert_events([event(event_id(now), now, ["hot"]) for _ in range(3)])
        floor = await Purger(pool).raise_open_floor(now, 60)
        async with pool.acquire() as conn:
            later = now + dt.timedelta(seconds=1)
            explained = await explain_claim(conn, {"hot": 10}, later, floor)
        batch = await store.claim_batch({"hot": 10}, later, 60.0, "w")
    finally:
        await pool.close()

    before = {f"deliveries_p{today - dt.timedelta(days=k):%Y%m%d}" for k in range(2, 7)}
    before |= {"deliveries_p20251231", "deliveries_p20260101"}  # the template's days
    nodes = plan_nodes(explained["Plan"])
    claim_index = [n for n in nodes if n.get("Index Name", "").endswith("_target_due_at_idx")]
    started = {n["Relation Name"] for n in claim_index}
    assert started, "the claim index is read"
    assert not started & before, sorted(started & before)  # not even started
    assert any(n.get("Subplans Removed", 0) >= len(before) for n in nodes)
    events = {
        n["Relation Name"] for n in nodes if n.get("Relation Name", "").startswith("events_p")
    }
    assert not events & {name.replace("deliveries", "events") for name in before}
    assert len(batch.claimed) == 3


async def test_a_replay_below_the_floor_is_claimed_by_the_next_claim(store: Store) -> None:
    now = SystemClock().now()
    today = now.date()
    ids = await history(store, today, 6)
    await Purger(store.pool).raise_open_floor(now, 600)
    quotas = {"hot": 10}
    first = await store.claim_batch(quotas, now, 60.0, "w")  # learns the floor: yesterday
    assert first.claimed == []
    old = ids[today - dt.timedelta(days=5)]
    request = ReplayRequest(uuid.uuid4(), now, "test")
    await Replays(store.pool).replay_event(request, old, ["hot"], {})
    async with store.pool.acquire() as conn:
        assert await floor_day(conn) == today - dt.timedelta(days=5)  # lowered with it
    # The next claim still used the floor it had learnt, so it says: look again now.
    second = await store.claim_batch(quotas, now, 60.0, "w")
    assert second.claimed == []
    assert second.next_due == now
    third = await store.claim_batch(quotas, now, 60.0, "w")
    assert [c.event_id for c in third.claimed] == [old]


async def test_a_bulk_replay_lowers_the_floor_to_the_oldest_it_reopened(store: Store) -> None:
    now = SystemClock().now()
    today = now.date()
    await history(store, today, 5)
    await Purger(store.pool).raise_open_floor(now, 600)
    request = ReplayRequest(uuid.uuid4(), now, "test")
    since = dt.datetime.combine(today - dt.timedelta(days=4), dt.time(), dt.UTC)
    until = since + dt.timedelta(days=2)  # days -4 and -3
    counts = await Replays(store.pool).replay_matching(
        request, ReplayFilter(status="delivered", since=since, until=until)
    )
    assert counts.deliveries == 2
    async with store.pool.acquire() as conn:
        assert await floor_day(conn) == today - dt.timedelta(days=4)


async def test_a_replay_to_a_new_target_lowers_the_floor_too(store: Store) -> None:
    now = SystemClock().now()
    today = now.date()
    ids = await history(store, today, 4)
    await Purger(store.pool).raise_open_floor(now, 600)
    old = ids[today - dt.timedelta(days=3)]
    request = ReplayRequest(uuid.uuid4(), now, "test")
    await Replays(store.pool).replay_event(request, old, [], {"cold": uuid.uuid4()})
    async with store.pool.acquire() as conn:
        assert await floor_day(conn) == today - dt.timedelta(days=3)


async def test_a_floor_not_renewed_or_missing_is_no_floor(store: Store) -> None:
    now = SystemClock().now()
    await history(store, now.date(), 3)
    await Purger(store.pool).raise_open_floor(now - dt.timedelta(seconds=120), 60)
    await store.claim_batch({"hot": 1}, now, 60.0, "w")
    assert store._floor == NO_FLOOR  # every partition read again
    await Purger(store.pool).raise_open_floor(now, 60)
    await store.claim_batch({"hot": 1}, now, 60.0, "w")
    assert store._floor != NO_FLOOR
    async with store.pool.acquire() as conn:  # its row gone: every partition, not none
        await conn.execute("DELETE FROM hookgate.open_floor")
    await store.claim_batch({"hot": 1}, now, 60.0, "w")
    assert store._floor == NO_FLOOR
