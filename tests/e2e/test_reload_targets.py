"""Reloading targets: the relay swaps its lanes (in `serve`, embedded, and `hookgate worker`)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from conftest import GatewayTestServer, fetch, until
from probe_target import Probe
from relay_events import shop_events
from structlog.testing import capture_logs
from test_embedding import example_module
from test_lifecycle import hookgate, stop

from gateway import keys
from gateway.app import create_app
from gateway.config import load_config
from gateway.plugins import load_registry
from gateway.reload import reload
from gateway.storage.store import Store


def write(path: Path, database_url: str, body: str, sources: str = "shop: {}") -> Path:
    path.write_text(
        f"database: {{url: '{database_url}', data_dir: '{path.parent}'}}\n"
        f"relay: {{poll_interval: 100ms}}\nsources: {{{sources}}}\n{body}"
    )
    return path


def http_targets(routes: str, **urls: str) -> str:
    targets = ", ".join(f"{name}: {{url: '{url}', timeout: 30s}}" for name, url in urls.items())
    return f"targets: {{{targets}}}\nroutes: [{routes}]\n"


async def statuses(database_url: str, target: str) -> list[tuple[str, int]]:
    rows = await fetch(
        database_url,
        "SELECT status, attempts FROM hookgate.deliveries WHERE target = $1 ORDER BY seq",
        target,
    )
    return [(row["status"], row["attempts"]) for row in rows]


async def test_reload_adds_a_target_and_a_route_and_the_next_event_goes_to_it(
    tmp_path, database_url, gateway, target
):
    billing, crm = await target(), await target()
    path = write(
        tmp_path / "h.yaml",
        database_url,
        http_targets("{source: shop, targets: [billing]}", billing=billing.url),
    )
    client = await gateway(load_config(path))
    routes = "{source: shop, targets: [billing]}, {source: shop, targets: [crm]}"
    write(path, database_url, http_targets(routes, billing=billing.url, crm=crm.url))
    with capture_logs() as logs:
        assert await reload(client.app, path)
    sent = await client.post("/in/shop", data=b'{"n": 1}')
    assert sent.status == 202
    await crm.recorder.wait_for(1)
    await billing.recorder.wait_for(1)
    assert crm.recorder.requests[0][0]["X-Hookgate-Event-Id"] == (await sent.json())["id"]
    (line,) = [line for line in logs if line["event"] == "config_reloaded"]
    assert (line["targets_added"], line["targets_changed"]) == (["crm"], [])
    assert not [line for line in logs if line["event"] == "config_reload_needs_restart"]
    # Its row for pause and breaker state, made with its first claim as at start-up.
    names = await fetch(database_url, "SELECT name FROM hookgate.targets ORDER BY name")
    assert [row["name"] for row in names] == ["billing", "crm"]


async def test_the_admin_api_lists_and_pauses_a_target_a_reload_added(
    tmp_path, database_url, gateway, target
):
    billing, crm = await target(), await target()
    admin = "admin: {tokens: {ops: s3cret-token}}\n"
    path = write(tmp_path / "h.yaml", database_url,
                 admin + http_targets("{source: shop, targets: [billing]}", billing=billing.url))  # fmt: skip
    client = await gateway(load_config(path))
    auth = {"Authorization": "Bearer s3cret-token"}
    missing = await client.post("/admin/api/targets/crm/pause", headers=auth, json={})
    assert missing.status == 404
    routes = "{source: shop, targets: [billing]}, {source: shop, targets: [crm]}"
    write(path, database_url, admin + http_targets(routes, billing=billing.url, crm=crm.url))
    assert await reload(client.app, path)

    listed = await (await client.get("/admin/api/targets", headers=auth)).json()
    assert sorted(t["name"] for t in listed["items"]) == ["billing", "crm"]
    paused = await client.post("/admin/api/targets/crm/pause", headers=auth, json={})
    assert paused.status == 200, await paused.text()
    sent = await client.post("/in/shop", data=b'{"n": 1}')
    await billing.recorder.wait_for(1)
    rows = await fetch(database_url, "SELECT paused FROM hookgate.targets WHERE name = 'crm'")
    assert [row["paused"] for row in rows] == [True]
    assert await statuses(database_url, "crm") == [("pending", 0)]
    assert (await sent.json())["id"]


async def test_a_changed_url_takes_the_next_attempt_while_one_in_flight_finishes_at_the_old(
    tmp_path, database_url, gateway, target
):
    old, new = await target(), await target()
    old.recorder.hold = asyncio.Event()  # the first attempt is in flight during the reload
    route = "{source: shop, targets: [billing]}"
    path = write(tmp_path / "h.yaml", database_url, http_targets(route, billing=old.url))
    client = await gateway(load_config(path))
    first = await (await client.post("/in/shop", data=b'{"n": 1}')).json()
    await old.recorder.wait_for(1)
    write(path, database_url, http_targets(route, billing=new.url))
    with capture_logs() as logs:
        assert await reload(client.app, path)
    second = await (await client.post("/in/shop", data=b'{"n": 2}')).json()
    await new.recorder.wait_for(1)
    old.recorder.hold.set()

    async def both_delivered() -> bool:
        return await statuses(database_url, "billing") == [("delivered", 1), ("delivered", 1)]

    await until(both_delivered, "both deliveries delivered")
    assert [h["X-Hookgate-Event-Id"] for h, _ in old.recorder.requests] == [first["id"]]
    assert [h["X-Hookgate-Event-Id"] for h, _ in new.recorder.requests] == [second["id"]]
    attempts = await fetch(
        database_url,
        "SELECT d.event_id::text AS event, a.outcome, a.status_code FROM hookgate.attempts a "
        "JOIN hookgate.deliveries d ON d.id = a.delivery_id",
    )  # the frozen clock gives both one start time: by event, not in order
    assert {a["event"]: (a["outcome"], a["status_code"]) for a in attempts} == {
        first["id"]: ("HTTP_2XX", 200),
        second["id"]: ("HTTP_2XX", 200),
    }
    assert len(attempts) == 2
    (line,) = [line for line in logs if line["event"] == "config_reloaded"]
    assert line["targets_changed"] == ["billing"]


async def test_a_removed_target_keeps_its_deliveries_pending_unclaimed_until_it_is_back(
    tmp_path, database_url, gateway, target, clock
):
    billing, ops = await target(), await target()
    both = http_targets("{source: shop, targets: [billing, ops]}", billing=billing.url, ops=ops.url)
    path = write(tmp_path / "h.yaml", database_url, both)
    client = await gateway(load_config(path))
    store = client.app[keys.STORE]
    await store.set_paused("billing", True, "until the test removes it", clock.now(), "test")
    for n in range(2):
        assert (await client.post("/in/shop", data=b'{"n": %d}' % n)).status == 202
    await ops.recorder.wait_for(2)
    write(path, database_url, http_targets("{source: shop, targets: [ops]}", ops=ops.url))
    with capture_logs() as logs:
        assert await reload(client.app, path)
    (line,) = [line for line in logs if line["event"] == "removed_target_has_pending"]
    assert (line["target"], line["backlog"]) == ("billing", 2)
    # One relay claims in turn: once a claim made after the reload took ops' next delivery,
    # none begun before it (which still asked for billing) is under way.
    assert (await client.post("/in/shop", data=b'{"n": 2}')).status == 202
    await ops.recorder.wait_for(3)
    # Resumed (which wakes every relay), billing would be claimed at once if the relay
    # still knew it; the claim that takes the next delivery to ops does not ask for it.
    await store.set_paused("billing", False, None, clock.now(), "test")
    assert (await client.post("/in/shop", data=b'{"n": 3}')).status == 202
    await ops.recorder.wait_for(4)
    assert await statuses(database_url, "billing") == [("pending", 0), ("pending", 0)]
    assert billing.recorder.requests == []
    assert (
        await fetch(
            database_url,
            "SELECT FROM hookgate.attempts a JOIN hookgate.deliveries d ON d.id = a.delivery_id "
            "WHERE d.target = 'billing'",
        )
        == []
    )
    write(path, database_url, both)
    assert await reload(client.app, path)
    await billing.recorder.wait_for(2)
    await until(
        _equals(lambda: statuses(database_url, "billing"), [("delivered", 1)] * 2),
        "billing's deliveries delivered",
    )
    assert len(ops.recorder.requests) == 4


def _equals(read: Callable[[], Any], expected: object) -> Callable[[], Any]:
    async def check() -> bool:
        return bool(await read() == expected)

    return check


async def test_an_invalid_reload_keeps_the_old_targets_relaying(
    tmp_path, database_url, gateway, target
):
    billing = await target()
    route = "{source: shop, targets: [billing]}"
    path = write(tmp_path / "h.yaml", database_url, http_targets(route, billing=billing.url))
    client = await gateway(load_config(path))
    write(
        path,
        database_url,
        "targets: {billing: {url: 'not a url'}, ops: {type: nope}}\n"
        "routes: [{source: shop, targets: [billing, ops]}]\n",
    )
    with capture_logs() as logs:
        assert not await reload(client.app, path)
    (failed,) = [line for line in logs if line["event"] == "config_reload_failed"]
    assert any("targets.billing.url" in error for error in failed["errors"])
    assert any("targets.ops.type" in error for error in failed["errors"])
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    await billing.recorder.wait_for(1)
    assert sorted(client.app[keys.RELAY].lanes) == ["billing"]


def probes(routes: str, **labels: str) -> str:
    targets = ", ".join(f"{name}: {{type: probe, {label}}}" for name, label in labels.items())
    return f"targets: {{{targets}}}\nroutes: [{routes}]\n"


async def test_a_replaced_lane_closes_after_its_last_attempt_and_a_failed_start_changes_nothing(
    tmp_path, database_url, aiohttp_client, clock
):
    probe = Probe()
    registry = load_registry()
    registry.add(probe)
    probe.held["a1"] = asyncio.Event()
    both = "{source: shop, targets: [a, b]}"
    path = write(tmp_path / "h.yaml", database_url, probes(both, a="label: a1", b="label: b1"))
    app = create_app(load_config(path, registry), clock=clock, registry=registry)
    client: TestClient[Any, Any] = await aiohttp_client(GatewayTestServer(app))
    e1 = (await (await client.post("/in/shop", data=b"{}")).json())["id"]
    await until(lambda: len(probe.sent) == 2, "e1 sent to a1 and b1")

    write(path, database_url, probes(both, a="label: a2", b="label: b1"))
    assert await reload(app, path)
    assert probe.created == ["a1", "b1", "a2"]  # b is unchanged: its lane is kept
    e2 = (await (await client.post("/in/shop", data=b"{}")).json())["id"]
    await until(lambda: len(probe.sent) == 4, "e2 sent")
    assert sorted(probe.sent) == sorted([("a1", e1), ("b1", e1), ("a2", e2), ("b1", e2)])
    assert probe.closed == []  # a1 has an attempt in flight
    probe.held["a1"].set()
    await until(lambda: probe.closed == ["a1"], "a1 closed once its attempt ended")
    await until(
        _equals(lambda: statuses(database_url, "a"), [("delivered", 1)] * 2), "a's delivered"
    )

    write(path, database_url, probes("{source: shop, targets: [a]}", a="label: a2"))
    assert await reload(app, path)
    await until(lambda: probe.closed == ["a1", "b1"], "b1 closed: its target was removed")

    failing = probes("{source: shop, targets: [a]}, {source: crm, targets: [a]}",
                     a="label: a3, fail: true")  # fmt: skip
    write(path, database_url, failing, sources="shop: {}, crm: {}")
    with capture_logs() as logs:
        assert not await reload(app, path)
    (failed,) = [line for line in logs if line["event"] == "config_reload_failed"]
    assert failed["errors"] == [
        "targets.a: the probe target could not start: RuntimeError: a3 cannot connect"
    ]
    assert (await client.post("/in/crm", data=b"{}")).status == 404  # ingress kept its config
    e3 = (await (await client.post("/in/shop", data=b"{}")).json())["id"]
    await until(lambda: ("a2", e3) in probe.sent, "e3 sent through the old a2")
    assert probe.created == ["a1", "b1", "a2"]
    await client.close()
    assert probe.closed == ["a1", "b1", "a2"]  # the current lanes close at shutdown


async def test_an_embedded_gateway_relays_to_a_target_a_reload_added_at_once(
    database_url, target, aiohttp_client, tmp_path
):
    billing, crm = await target(), await target()
    config = tmp_path / "hookgate.yaml"
    write(
        config,
        database_url,
        http_targets("{source: shop, targets: [billing]}", billing=billing.url),
    )
    example = example_module()
    host = example.host_app(str(config))
    client = await aiohttp_client(host)
    routes = "{source: shop, targets: [billing, crm]}"
    write(config, database_url, http_targets(routes, billing=billing.url, crm=crm.url))
    assert await reload(host[example.HOOKGATE], config)
    sent = await client.post("/hooks/in/shop", data=b"{}")
    assert sent.status == 202
    await crm.recorder.wait_for(1)
    assert crm.recorder.requests[0][0]["X-Hookgate-Event-Id"] == (await sent.json())["id"]


async def test_a_worker_process_picks_up_a_new_target_on_sighup(tmp_path, database_url, target):
    old, fresh = await target(), await target()
    path = tmp_path / "w.yaml"
    write(path, database_url, http_targets("{source: shop, targets: [old]}", old=old.url))
    both = http_targets("{source: shop, targets: [old, fresh]}", old=old.url, fresh=fresh.url)
    routed = load_config(write(tmp_path / "routed.yaml", database_url, both))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await Store(pool).insert_events(shop_events(routed, 1))
    finally:
        await pool.close()
    async with hookgate("worker", "--config", str(path)) as worker:
        assert worker.stdout is not None
        async with asyncio.timeout(30):
            while b"relaying to" not in await worker.stdout.readline():
                pass  # started: SIGHUP now reloads (before, it is logged and ignored)
        await old.recorder.wait_for(1, timeout=30)
        assert fresh.recorder.requests == []
        write(path, database_url, both)
        worker.send_signal(signal.SIGHUP)
        await fresh.recorder.wait_for(1, timeout=30)
        code, logs = await stop(worker)
    assert code == 0
    (line,) = [line for line in logs if line["event"] == "config_reloaded"]
    assert (line["targets_added"], line["targets_removed"]) == (["fresh"], [])
    assert not [line for line in logs if line["event"] == "config_reload_needs_restart"]
