"""A target's concurrency and rate limit hold across relays (enforced in the database).

Two relays on two connection pools stand in for two worker processes: the limits live
in Postgres, so what they share is exactly what two processes would share.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import asyncpg
from test_relay import relay_config, relay_for, shop_event

from gateway.storage.store import Store


async def two_relays(stack: AsyncExitStack, database_url, config, clock):
    relays = []
    for name in ("w1", "w2"):
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        stack.push_async_callback(pool.close)
        relays.append(
            await stack.enter_async_context(relay_for(Store(pool), config, clock, worker=name))
        )
    return relays


async def test_concurrency_holds_across_two_relays(database_url, store, clock, target):
    t = await target()
    t.recorder.hold = asyncio.Event()  # every send stays in flight
    config = relay_config(database_url, {"t": f'url: "{t.url}", concurrency: 3'})
    await store.insert_events([shop_event(clock) for _ in range(10)])

    async with AsyncExitStack() as stack:
        first, second = await two_relays(stack, database_url, config, clock)
        claimed = await asyncio.gather(first.run_once(), second.run_once())
        assert sum(claimed) == 3
        assert sum(await asyncio.gather(first.run_once(), second.run_once())) == 0  # still full
        await t.recorder.wait_for(3)
        t.recorder.hold.set()
        await asyncio.gather(first.drain(), second.drain())
        assert sum(await asyncio.gather(first.run_once(), second.run_once())) == 3
        await asyncio.gather(first.drain(), second.drain())
    assert len(t.recorder.requests) == 6


async def test_rate_limit_holds_across_two_relays(database_url, store, clock, target):
    t = await target()
    config = relay_config(
        database_url, {"t": f'url: "{t.url}", concurrency: 50, rate_limit: {{rate: 5/s, burst: 5}}'}
    )
    await store.insert_events([shop_event(clock) for _ in range(20)])

    async with AsyncExitStack() as stack:
        first, second = await two_relays(stack, database_url, config, clock)

        async def window() -> int:
            started = sum(await asyncio.gather(first.run_once(), second.run_once()))
            started += sum(await asyncio.gather(first.run_once(), second.run_once()))
            await asyncio.gather(first.drain(), second.drain())
            return started

        assert await window() == 5  # the burst, shared: not 5 each
        clock.advance(0.4)
        assert await window() == 2  # 0.4 s at 5/s
        clock.advance(1)
        assert await window() == 5  # refilled to the burst, no more
    assert len(t.recorder.requests) == 12


async def test_a_relay_waits_for_a_token_and_other_targets_are_not_held_back(
    database_url, store, clock, target
):
    slow, fast = await target(), await target()
    config = relay_config(
        database_url,
        {"slow": f'url: "{slow.url}", rate_limit: 1/m', "fast": f'url: "{fast.url}"'},
    )
    await store.insert_events([shop_event(clock, targets=("slow", "fast")) for _ in range(3)])
    async with relay_for(store, config, clock) as relay:
        assert await relay.run_once() == 4  # 1 for the rate-limited target, 3 for the other
        await relay.drain()
    assert (len(slow.recorder.requests), len(fast.recorder.requests)) == (1, 3)
