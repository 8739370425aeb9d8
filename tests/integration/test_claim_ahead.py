"""Claiming ahead (gateway/relay/ahead.py): a running relay holds the next lane's worth
while it sends within its share, and gives back what it never sent, with no attempt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from conftest import until
from test_relay import relay_config, relay_for, shop_event

from gateway.relay.worker import Relay
from gateway.storage.store import Store


async def statuses(store: Store) -> dict[str, int]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM hookgate.deliveries GROUP BY status"
        )
    return {row["status"]: row["n"] for row in rows}


async def attempts_of(store: Store, ids: list[str]) -> list[tuple[int, int]]:
    """(the delivery's attempts, attempt rows written) for each id."""
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT d.attempts, (SELECT count(*) FROM hookgate.attempts AS a"
            " WHERE a.delivery_id = d.id) AS written"
            " FROM hookgate.deliveries AS d WHERE d.id::text = ANY($1::text[])",
            ids,
        )
    return [(row["attempts"], row["written"]) for row in rows]


@asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Task[None]]:
    """`relay`'s claim loop, as `hookgate worker` runs it."""
    loop = asyncio.create_task(relay.run())
    try:
        yield loop
    finally:
        await relay.stop(grace=0.1)
        await asyncio.gather(loop, return_exceptions=True)


def sent_ids(requests: list[tuple[dict[str, str], bytes]]) -> set[str]:
    return {headers["X-Hookgate-Delivery-Id"] for headers, _ in requests}


async def test_a_running_relay_holds_a_lane_ahead_within_its_share_and_gives_it_back_on_stop(
    database_url: str, store: Store, clock: Any, target: Any
) -> None:
    t = await target()
    held = t.recorder.hold = asyncio.Event()  # every send stays in flight
    config = relay_config(database_url, {"t": f'url: "{t.url}", concurrency: 2'})
    events = [shop_event(clock) for _ in range(10)]
    await store.insert_events(events)
    try:
        async with relay_for(store, config, clock) as relay, running(relay):
            await t.recorder.wait_for(2)
            # Two sent, two more claimed ahead: in flight in the database, not at the target.
            await until(lambda: _in_flight_is(store, 4), "a lane claimed ahead")
            await asyncio.sleep(0.05)
            assert len(t.recorder.requests) == 2
        sent = sent_ids(t.recorder.requests)
        others = [str(d["id"]) for e in events for d in await store.deliveries(e.id)]
        others = [delivery for delivery in others if delivery not in sent]
        assert await statuses(store) == {"pending": 10}
        # The two claimed ahead went back as they were, like the six never claimed: no
        # attempt spent, none written (none was made).
        assert await attempts_of(store, others) == [(0, 0)] * 8
        # The two it sent were cut short by the stop: released, as before.
        assert sorted(await attempts_of(store, sorted(sent))) == [(1, 1), (1, 1)]
    finally:
        t.recorder.hold = None
        held.set()


async def test_a_pause_from_elsewhere_gives_back_what_was_claimed_ahead(
    database_url: str, store: Store, clock: Any, target: Any
) -> None:
    t = await target()
    held = t.recorder.hold = asyncio.Event()
    config = relay_config(database_url, {"t": f'url: "{t.url}", concurrency: 2'})
    await store.insert_events([shop_event(clock) for _ in range(10)])
    try:
        async with relay_for(store, config, clock) as relay, running(relay):
            await t.recorder.wait_for(2)
            await until(lambda: _in_flight_is(store, 4), "a lane claimed ahead")
            await store.set_paused("t", True, "maintenance", clock.now(), "admin")
            relay.wake()  # as a NOTIFY would: its next claim finds the target paused
            await until(lambda: _in_flight_is(store, 2), "the ahead given back")
            held.set()  # the two in flight are answered; nothing else may start
            await until(lambda: _delivered_is(store, 2), "the two in flight answered")
            await asyncio.sleep(0.1)
            assert len(t.recorder.requests) == 2
        assert await statuses(store) == {"delivered": 2, "pending": 8}
    finally:
        t.recorder.hold = None
        held.set()


async def test_an_open_breaker_gives_back_what_was_claimed_ahead(
    database_url: str, store: Store, clock: Any, target: Any
) -> None:
    t = await target()
    t.recorder.script = [(503, {}, b"down")] * 10
    config = relay_config(
        database_url, {"t": f'url: "{t.url}", concurrency: 2, breaker: {{failures: 2}}'}
    )
    await store.insert_events([shop_event(clock) for _ in range(10)])
    async with relay_for(store, config, clock) as relay, running(relay):
        await until(lambda: _breaker_open(store), "the breaker open")
        await until(lambda: _in_flight_is(store, 0), "nothing held once it opened")
        sent = len(t.recorder.requests)
        await asyncio.sleep(0.2)
        # Two failures open it; at most its concurrency more were under way meanwhile,
        # and nothing it claimed ahead went out after.
        assert 2 <= sent == len(t.recorder.requests) <= 4
        # All wait: the failed ones for their retry, the others as they were (no attempt).
        assert await statuses(store) == {"pending": 10}
        assert await attempts_spent(store) == sent


async def attempts_spent(store: Store) -> int:
    async with store.pool.acquire() as conn:
        spent: int = await conn.fetchval("SELECT sum(attempts) FROM hookgate.deliveries")
    return spent


async def _in_flight_is(store: Store, n: int) -> bool:
    return (await statuses(store)).get("in_flight", 0) == n


async def _delivered_is(store: Store, n: int) -> bool:
    return (await statuses(store)).get("delivered", 0) == n


async def _breaker_open(store: Store) -> bool:
    (state,) = await store.target_states(["t"])
    return state["breaker_until"] is not None
