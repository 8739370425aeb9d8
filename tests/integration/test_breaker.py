"""The circuit breaker: open after consecutive failures, one probe when half-open, close on success."""

from __future__ import annotations

import asyncio
import itertools

from test_relay import deliver_due, relay_config, relay_for, shop_event


def failing(recorder, times: int) -> None:
    recorder.script.extend([(500, {}, b"down")] * times)


async def state(store, name: str) -> dict:
    (row,) = await store.target_states([name])
    return row


async def test_the_breaker_opens_waits_probes_once_and_closes(database_url, store, clock, target):
    t, other = await target(), await target()
    config = relay_config(
        database_url,
        {
            "t": f'url: "{t.url}", breaker: {{failures: 3, cooldown: 30s}}, retry: {{schedule: [1s, 1s, 1s, 1s, 1s, 1s]}}',
            "other": f'url: "{other.url}"',
        },
    )
    failing(t.recorder, 3)
    await store.insert_events([shop_event(clock, targets=("t",)) for _ in range(3)])
    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 3  # three 500s: the breaker opens
        opened = await state(store, "t")
        assert opened["failures"] == 3 and opened["breaker_until"] > clock.now()
        assert opened["breaker_reason"] == "HTTP_5XX"

        clock.advance(5)  # retries are due, but the breaker is open: nothing is claimed
        await store.insert_events([shop_event(clock, targets=("other",))])
        assert await deliver_due(relay) == 1  # ... except the other target's delivery
        assert len(t.recorder.requests) == 3

        clock.advance(30)  # cooled down: half-open lets exactly one probe through
        assert await deliver_due(relay) == 1
        closed = await state(store, "t")
        assert (closed["failures"], closed["breaker_until"]) == (0, None)  # the probe succeeded
        assert await deliver_due(relay) == 2  # and the rest follow
    for delivery in [d for e in await all_events(store) for d in await store.deliveries(e)]:
        if delivery["target"] == "t":
            assert (
                delivery["status"] == "delivered" and delivery["attempts"] == 2
            )  # waiting cost no attempt


async def all_events(store):
    async with store.pool.acquire() as conn:
        return [row["id"] for row in await conn.fetch("SELECT id FROM hookgate.events")]


async def test_a_failed_probe_opens_the_breaker_again(database_url, store, clock, target):
    t = await target()
    config = relay_config(
        database_url,
        {
            "t": f'url: "{t.url}", breaker: {{failures: 2, cooldown: 10s}}, retry: {{schedule: [1s, 1s, 1s, 1s]}}'
        },
    )
    failing(t.recorder, 3)
    await store.insert_events([shop_event(clock) for _ in range(2)])
    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 2
        clock.advance(10)
        assert await deliver_due(relay) == 1  # the probe, which fails
        reopened = await state(store, "t")
        assert reopened["failures"] == 3 and reopened["breaker_until"] > clock.now()
        assert await deliver_due(relay) == 0


async def test_a_probe_in_flight_keeps_other_relays_out(database_url, store, clock, target):
    t = await target()
    config = relay_config(
        database_url, {"t": f'url: "{t.url}", breaker: {{failures: 1, cooldown: 10s}}'}
    )
    failing(t.recorder, 1)
    await store.insert_events([shop_event(clock)])
    async with (
        relay_for(store, config, clock) as relay,
        relay_for(store, config, clock, worker="w2") as second,
    ):
        assert await deliver_due(relay) == 1  # one failure opens it
        await store.insert_events([shop_event(clock) for _ in range(3)])
        clock.advance(10)
        t.recorder.hold = asyncio.Event()
        assert await relay.run_once() == 1  # the probe, held in flight
        assert await second.run_once() == 0  # no second probe from another relay
        t.recorder.hold.set()
        await relay.drain()


async def test_breaker_false_never_opens(database_url, store, clock, target):
    t = await target()
    config = relay_config(
        database_url,
        {"t": f'url: "{t.url}", breaker: false, concurrency: 20, retry: {{schedule: [1s]}}'},
    )
    failing(t.recorder, 10)
    await store.insert_events([shop_event(clock) for _ in range(10)])
    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 10
        assert (await state(store, "t"))["breaker_until"] is None


async def test_the_breaker_opens_on_a_failure_ratio_too(database_url, store, clock, target):
    t = await target()
    config = relay_config(
        database_url,
        {
            "t": f'url: "{t.url}", concurrency: 20, breaker: {{failures: 100, ratio: 0.5, window: 10}}, retry: {{schedule: [1s]}}'
        },
    )
    # Failures and answers alternate: never two failures in a row, but half fail.
    t.recorder.script.extend([(500, {}, b"down"), (200, {}, b"ok")] * 5)
    await store.insert_events([shop_event(clock) for _ in range(10)])
    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 10
        tripped = await state(store, "t")
        assert tripped["breaker_until"] is not None and tripped["breaker_until"] > clock.now()
        clock.advance(2)  # the retries are due, but the breaker is open
        assert await deliver_due(relay) == 0
        clock.advance(30)
        assert await deliver_due(relay) == 1  # half-open: one probe, which succeeds
        assert (await state(store, "t"))["breaker_until"] is None


async def test_at_most_concurrency_attempts_start_once_failures_reach_the_threshold(
    database_url, store, clock, target
):
    t = await target()
    config = relay_config(
        database_url, {"t": f'url: "{t.url}", concurrency: 8, breaker: {{failures: 5}}'}
    )
    failing(t.recorder, 40)
    await store.insert_events([shop_event(clock) for _ in range(40)])
    async with relay_for(store, config, clock) as relay:
        loop = asyncio.create_task(relay.run())  # claims as slots free up, like production
        try:
            async with asyncio.timeout(10):
                for _ in itertools.count():  # polls a server-side state
                    if (await state(store, "t"))["breaker_until"] is not None:
                        break
                    await asyncio.sleep(0.01)
            await relay.drain()  # the attempts already in flight end; no new one starts
        finally:
            await relay.stop(grace=5)
            await asyncio.gather(loop, return_exceptions=True)
    # Until the 5th failure commits, at most 4 are recorded and 8 in flight; it commits
    # with the breaker's state, so no claim sees its slot free and the breaker closed.
    assert 5 <= len(t.recorder.requests) <= 4 + 8
