"""A target's concurrency and rate limit hold across relays (enforced in the database).

Two relays on two connection pools stand in for two worker processes: the limits live
in Postgres, so what they share is exactly what two processes would share.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

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


class HeldResults(Store):
    """The real store, whose result writes wait for `go` once they have begun."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.pool)
        self.begun, self.go = asyncio.Event(), asyncio.Event()

    async def finish_many(self, results: Any, now: Any, health: Any = ()) -> Any:
        self.begun.set()
        await self.go.wait()
        return await super().finish_many(results, now, health)


async def in_flight(store: Store) -> int:
    async with store.pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM hookgate.deliveries WHERE status = 'in_flight'"
        )
    return count


async def test_an_answered_delivery_frees_its_slot_while_its_result_is_written(
    database_url, store, clock, target
):
    t = await target()
    config = relay_config(database_url, {"t": f'url: "{t.url}", concurrency: 1'})
    await store.insert_events([shop_event(clock) for _ in range(3)])
    held = HeldResults(store)

    async with AsyncExitStack() as stack:
        relay = await stack.enter_async_context(relay_for(held, config, clock, worker="w0"))
        stack.callback(held.go.set)  # a failed assertion must not leave the writer waiting
        other = (await two_relays(stack, database_url, config, clock))[0]
        assert await relay.run_once() == 1
        await held.begun.wait()  # answered 200; its result not yet written
        assert await in_flight(store) == 1  # the database still says so
        assert await other.run_once() == 0  # the whole concurrency is the first's share
        assert await relay.run_once() == 1  # this one knows the slot is free
        await t.recorder.wait_for(2)
        assert await relay.run_once() == 0  # one answered, one sent: concurrency 1 holds
        held.go.set()
        await relay.drain()
        assert await relay.run_once() == 1
        await relay.drain()
    assert len(t.recorder.requests) == 3
    async with store.pool.acquire() as conn:
        statuses = await conn.fetch("SELECT status FROM hookgate.deliveries")
    assert [row["status"] for row in statuses] == ["delivered"] * 3


async def test_a_failed_delivery_keeps_its_slot_until_its_result_is_written(
    database_url, store, clock, target
):
    t = await target()
    t.recorder.script = [(503, {}, b"down")]
    config = relay_config(database_url, {"t": f'url: "{t.url}", concurrency: 1'})
    await store.insert_events([shop_event(clock) for _ in range(2)])
    held = HeldResults(store)

    async with AsyncExitStack() as stack:
        relay = await stack.enter_async_context(relay_for(held, config, clock))
        stack.callback(held.go.set)  # a failed assertion must not leave the writer waiting
        assert await relay.run_once() == 1
        await held.begun.wait()  # answered 503: what it does to the breaker is not written
        assert await relay.run_once() == 0
        held.go.set()
        await relay.drain()
        assert await relay.run_once() == 1  # written: the slot is free
        await relay.drain()
    assert len(t.recorder.requests) == 2
