"""Each relay holds a share of a target's concurrency (migration 0022).

The shares of all relays never add up to more than the concurrency; they settle to fair
parts as relays come and go; a relay that stops gives its part back at once, one that
dies after `SHARE_TERM`; and a claim within a share takes no lock that another relay's
claim waits for.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from test_relay import relay_config, shop_event
from test_target_limits import two_relays

from gateway.relay.shares import SHARE_RENEW, SHARE_SOON, SHARE_TERM
from gateway.storage.limits import TargetLimits
from gateway.storage.store import Store


async def held(store: Store) -> dict[str, int]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT worker, held FROM hookgate.target_shares WHERE target = 't'"
        )
    return {row["worker"]: row["held"] for row in rows}


async def test_shares_never_add_up_to_more_than_the_concurrency(store, clock):
    now = clock.now()

    async def take(worker: str, in_flight: int) -> tuple[int, int]:
        share = (await store.take_shares(worker, {"t": (4, in_flight)}, now, SHARE_TERM))["t"]
        assert sum((await held(store)).values()) <= 4
        return share.share, share.fair

    assert await take("w1", 0) == (4, 4)  # alone: all of it
    assert await take("w2", 0) == (0, 2)  # w1 holds it all: nothing yet, 2 once given back
    assert await take("w1", 4) == (2, 2)  # its fair part now, but 4 still in flight...
    assert await held(store) == {"w1": 4, "w2": 0}  # ... so it holds 4 until they end
    assert await take("w2", 0) == (0, 2)
    assert await take("w1", 2) == (2, 2)  # two ended: it holds its share
    assert await take("w2", 0) == (2, 2)
    assert await take("w3", 0) == (0, 2)  # a third relay: ceil(4 / 3) once the others shrink
    assert await take("w1", 0) == (2, 2)
    assert await take("w2", 0) == (2, 2)
    assert await held(store) == {"w1": 2, "w2": 2, "w3": 0}


async def test_a_stopped_relay_gives_its_share_back_and_a_dead_ones_lapses(store, clock):
    now = clock.now()
    assert (await store.take_shares("w1", {"t": (4, 0)}, now, SHARE_TERM))["t"].share == 4
    assert (await store.take_shares("w2", {"t": (4, 0)}, now, SHARE_TERM))["t"].share == 0
    await store.release_shares("w1")  # a clean stop
    assert (await store.take_shares("w2", {"t": (4, 0)}, now, SHARE_TERM))["t"].share == 4
    # w2 dies holding all 4 (no release): w3 gets nothing, until w2's share lapses.
    assert (await store.take_shares("w3", {"t": (4, 0)}, now, SHARE_TERM))["t"].share == 0
    later = clock.advance(SHARE_TERM)
    assert (await store.take_shares("w3", {"t": (4, 0)}, later, SHARE_TERM))["t"].share == 4
    # A target a relay no longer names: its share is given back.
    await store.take_shares("w3", {"u": (4, 0)}, later, SHARE_TERM)
    assert await held(store) == {}


async def test_two_relays_settle_on_half_each_and_never_exceed_the_concurrency(
    database_url, store, clock, target
):
    t = await target()
    t.recorder.hold = asyncio.Event()  # every send stays in flight
    config = relay_config(database_url, {"t": f'url: "{t.url}", concurrency: 4'})
    await store.insert_events([shop_event(clock) for _ in range(12)])

    async with AsyncExitStack() as stack:
        first, second = await two_relays(stack, database_url, config, clock)
        stack.callback(t.recorder.hold.set)
        assert await first.run_once() == 4  # alone so far: the whole concurrency
        assert await second.run_once() == 0  # nothing free until the first gives some back
        clock.advance(SHARE_RENEW)  # the first renews: its part is 2, but 4 are in flight
        assert await first.run_once() == 0
        for _ in range(3):  # the second asks again: still nothing free
            assert await second.run_once() == 0
            clock.advance(SHARE_SOON)
        await t.recorder.wait_for(4)
        assert len(t.recorder.requests) == 4
        t.recorder.hold.set()
        await first.drain()  # its 4 ended: from its next renewal it holds its part, 2
        clock.advance(SHARE_SOON)
        assert await first.run_once() == 2
        clock.advance(SHARE_RENEW)  # the second's renewal, backed off while nothing moved
        assert await second.run_once() == 2
        await asyncio.gather(first.drain(), second.drain())
        clock.advance(SHARE_SOON)
        assert await asyncio.gather(first.run_once(), second.run_once()) == [2, 2]
        await asyncio.gather(first.drain(), second.drain())
    assert len(t.recorder.requests) == 12


async def test_a_claim_within_a_share_waits_for_no_other_claim(database_url, store, clock, target):
    t = await target()
    config = relay_config(database_url, {"t": f'url: "{t.url}", concurrency: 4'})
    await store.insert_events([shop_event(clock) for _ in range(2)])

    async with AsyncExitStack() as stack:
        (relay, _) = await two_relays(stack, database_url, config, clock)
        await relay.run_once()  # takes its share (under the lock), and claims
        await relay.drain()
        await store.insert_events([shop_event(clock) for _ in range(2)])
        async with store.pool.acquire() as conn, conn.transaction():
            # Another claim of the target, under way: holding the target's lock.
            await conn.execute("SELECT pg_advisory_xact_lock(1751607655, hashtext('t'))")
            async with asyncio.timeout(10):
                assert await relay.run_once() == 2
            await relay.drain()
    assert len(t.recorder.requests) == 4


async def test_a_relay_from_before_the_shares_still_counts_the_deliveries_in_flight(store, clock):
    # A replica not yet upgraded calls 0010's allowance: the same one, holding no share.
    await store.insert_events([shop_event(clock) for _ in range(4)])
    limits = {"t": TargetLimits(concurrency=3)}
    claimed = await store.claim_batch({"t": 4}, clock.now(), 60.0, "old", limits)
    assert len(claimed.claimed) == 3
    async with store.pool.acquire() as conn:
        allowed = await conn.fetchval(
            "SELECT allowed FROM hookgate.claim_allowance(ARRAY['t'], ARRAY[4], $1, ARRAY[3],"
            " ARRAY[NULL]::float8[], ARRAY[1.0]::float8[], ARRAY[false], 60.0)",
            clock.now(),
        )
    assert allowed == 0
