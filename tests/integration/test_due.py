"""Due means now: the relay knows when its next delivery comes due and sleeps until then.

The clock is a `FrozenClock`: the relay's `sleep_for()` is computed from it, so these
tests check the due times themselves, not how long anything took.
"""

from __future__ import annotations

from conftest import make_config, settle_shares
from test_relay import deliver_due, relay_for, shop_event

POLL = 50.0


def slow_poll(database_url: str, url: str, extra: str) -> object:
    return make_config(
        database_url,
        f"""
relay: {{enabled: false, poll_interval: {POLL:g}s}}
sources: {{shop: {{}}}}
targets:
  t: {{url: "{url}", {extra}}}
routes: [{{source: shop, targets: [t]}}]
""",
    )


async def test_with_nothing_due_the_relay_sleeps_a_poll_interval(
    database_url, store, clock, target
):
    t = await target()
    async with relay_for(store, slow_poll(database_url, t.url, "breaker: false"), clock) as relay:
        assert await deliver_due(relay) == 0
        assert relay.sleep_for() == POLL


async def test_the_relay_sleeps_until_its_retry_is_due(database_url, store, clock, target):
    t = await target()
    t.recorder.script.append((500, {}, b"down"))
    await store.insert_events([shop_event(clock)])
    config = slow_poll(database_url, t.url, "retry: {schedule: [5s]}")
    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 1
        assert relay.sleep_for() == 5.0  # learnt from its own result
        clock.advance(4)
        assert await deliver_due(relay) == 0
        assert relay.sleep_for() == 1.0  # and from the claim, which saw the retry pending
        clock.advance(1)
        assert await deliver_due(relay) == 1


async def test_a_retry_scheduled_by_another_relay_is_known_from_the_claim(
    database_url, store, clock, target
):
    t = await target()
    t.recorder.script.append((500, {}, b"down"))
    config = slow_poll(database_url, t.url, "retry: {schedule: [7s]}")
    async with (
        relay_for(store, config, clock) as first,
        relay_for(store, config, clock, worker="w2") as second,
    ):
        await settle_shares(clock, first, second)  # the second holds a part: it claims
        await store.insert_events([shop_event(clock)])
        assert await deliver_due(first) == 1
        assert await deliver_due(second) == 0
        assert second.sleep_for() == 7.0


async def test_the_relay_sleeps_until_an_open_breaker_cools_down(
    database_url, store, clock, target
):
    t = await target()
    t.recorder.script.append((500, {}, b"down"))
    await store.insert_events([shop_event(clock), shop_event(clock)])
    extra = "concurrency: 1, breaker: {failures: 1, cooldown: 10s}, retry: {schedule: [20s]}"
    async with relay_for(store, slow_poll(database_url, t.url, extra), clock) as relay:
        assert await deliver_due(relay) == 1  # the failure opens the breaker
        assert await deliver_due(relay) == 0  # the second is due, but the breaker is open
        assert relay.sleep_for() == 10.0  # the cooldown ends before the retry (20 s)
        clock.advance(10)
        assert await deliver_due(relay) == 1  # the probe


async def test_the_relay_sleeps_until_its_next_token(database_url, store, clock, target):
    t = await target()
    await store.insert_events([shop_event(clock), shop_event(clock)])
    extra = "rate_limit: {rate: 2/m, burst: 1}"
    async with relay_for(store, slow_poll(database_url, t.url, extra), clock) as relay:
        assert await deliver_due(relay) == 1
        assert await deliver_due(relay) == 0
        assert relay.sleep_for() == 30.0
        clock.advance(30)
        assert await deliver_due(relay) == 1
