"""`Relay.swap` against a real Postgres: a reload that lands while a claim is under way."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
from conftest import until
from probe_target import Probe
from test_relay import shop_event

from gateway.clock import FrozenClock
from gateway.config import Config, parse_config
from gateway.plugins import Registry, Resources, load_registry
from gateway.relay.lanes import build_lanes, rebuild_lanes
from gateway.relay.worker import Relay
from gateway.storage.store import ClaimBatch, Store


class HeldClaims(Store):
    """The real store, whose claims wait for `go` once they have begun (a reload lands)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.pool)
        self.begun, self.go = asyncio.Event(), asyncio.Event()

    async def claim_batch(
        self,
        quotas: dict[str, int],
        now: dt.datetime,
        lease: float,
        worker: str,
        limits: Any = None,
        finishing: Any = (),
    ) -> ClaimBatch:
        self.begun.set()
        await self.go.wait()
        return await super().claim_batch(quotas, now, lease, worker, limits, finishing)


def probes(database_url: str, registry: Registry, routes: str, **labels: str) -> Config:
    targets = ", ".join(
        f"{name}: {{type: probe, label: {label}}}" for name, label in labels.items()
    )
    text = (
        f"database: {{url: '{database_url}'}}\nrelay: {{enabled: false}}\n"
        f"sources: {{shop: {{}}}}\ntargets: {{{targets}}}\nroutes: [{routes}]\n"
    )
    return parse_config(text, registry, env={})


def registry_with(probe: Probe) -> Registry:
    registry = load_registry()
    registry.add(probe)
    return registry


async def test_a_claim_under_way_at_a_swap_sends_through_the_new_lane_or_a_removed_targets_old_one(
    database_url, store, clock: FrozenClock
):
    probe = Probe()
    registry = registry_with(probe)
    first = probes(database_url, registry, "{source: shop, targets: [a, b]}", a="a1", b="b1")
    e1 = shop_event(clock, targets=("a", "b"))
    await store.insert_events([e1])
    held = HeldClaims(store)
    async with aiohttp.ClientSession() as session:
        resources = Resources(session, clock)
        relay = Relay(held, build_lanes(first, registry, resources), first.relay, clock)
        claim = asyncio.create_task(relay.run_once())
        await held.begun.wait()  # it asked for a and b
        second = probes(database_url, registry, "{source: shop, targets: [a]}", a="a2")  # b removed
        relay.swap(await rebuild_lanes(relay.lanes, second, registry, resources), second.relay)
        await asyncio.sleep(0)
        assert probe.closed == []  # the claim under way may still use a1 or b1
        held.go.set()
        assert await claim == 2
        await relay.drain()
        assert sorted(probe.sent) == [("a2", str(e1.id)), ("b1", str(e1.id))]
        await until(lambda: sorted(probe.closed) == ["a1", "b1"], "a1 and b1 closed")

        e2 = shop_event(clock, targets=("a", "b"))
        await store.insert_events([e2])
        assert await relay.run_once() == 1  # only a is asked for now
        await relay.drain()
        assert ("a2", str(e2.id)) in probe.sent
        deliveries = await store.deliveries(e2.id)
        assert sorted((d["target"], d["status"], d["attempts"]) for d in deliveries) == [
            ("a", "delivered", 1),
            ("b", "pending", 0),
        ]
        await relay.stop(grace=5)
        await relay.close_lanes()
    assert sorted(probe.closed) == ["a1", "a2", "b1"]  # each once
