"""Pausing a target: its deliveries wait (keeping their attempts), the others flow; 410 pauses."""

from __future__ import annotations

import asyncio
import sys

from test_relay import deliver_due, one_target, relay_config, relay_for, shop_event, the_delivery


async def test_a_paused_target_waits_while_a_healthy_one_is_delivered(
    database_url, store, clock, target
):
    paused, healthy = await target(), await target()
    config = relay_config(
        database_url, {"paused": f'url: "{paused.url}"', "healthy": f'url: "{healthy.url}"'}
    )
    await store.set_paused("paused", True, "maintenance", clock.now(), "test")
    events = [shop_event(clock, targets=("paused", "healthy")) for _ in range(3)]
    await store.insert_events(events)

    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 3
        assert len(healthy.recorder.requests) == 3 and paused.recorder.requests == []
        (state,) = await store.target_states(["paused"])
        assert (state["paused"], state["reason"], state["backlog"]) == (True, "maintenance", 3)

        await store.set_paused("paused", False, None, clock.now(), "test")
        assert await deliver_due(relay) == 3
    assert len(paused.recorder.requests) == 3
    for event in events:
        deliveries = {d["target"]: d for d in await store.deliveries(event.id)}
        assert deliveries["paused"]["attempts"] == 1  # waiting did not cost an attempt


async def test_410_gone_pauses_the_target_and_keeps_the_delivery_for_later(
    database_url, store, clock, target
):
    t = await target()
    t.recorder.script.append((410, {}, b"this endpoint was removed"))
    config = one_target(database_url, t.url, "retry: {schedule: [1s]}")
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 1
        delivery = await the_delivery(store, event)
        assert (delivery["status"], delivery["last_outcome"], delivery["interruptions"]) == (
            "pending",
            "GONE",
            1,
        )
        (state,) = await store.target_states(["t"])
        assert state["paused"] and "410 Gone: this endpoint was removed" in state["reason"]
        clock.advance(3600)
        assert await deliver_due(relay) == 0  # paused: not claimed, however long we wait

        await store.set_paused("t", False, None, clock.now(), "test")
        assert await deliver_due(relay) == 1
    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["attempts"]) == (
        "delivered",
        2,
    )  # the 410 did not use up the 1-step schedule


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "--log-level", "warning", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_pause_resume_and_targets_from_the_command_line(tmp_path, database_url, store, clock):
    path = tmp_path / "h.yaml"
    path.write_text(
        f'database: {{url: "{database_url}"}}\n'
        "targets: {billing: {url: 'http://127.0.0.1:9/x'}, audit: {url: 'http://127.0.0.1:9/y'}}\n"
    )
    assert (await run_cli("pause", "billing", "--config", str(path), "--reason", "deploy"))[0] == 0
    await store.insert_events([shop_event(clock, targets=("billing",)) for _ in range(6)])
    await store.pool.execute(  # 2 dead, 1 queued by a bulk replay, 3 still due
        "UPDATE hookgate.deliveries SET status = CASE WHEN rank < 3 THEN 'dead' ELSE 'queued' END"
        " FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM hookgate.deliveries)"
        " AS r WHERE r.id = deliveries.id AND r.rank <= 3"
    )
    code, out, _ = await run_cli("targets", "--config", str(path))
    assert code == 0
    assert out.splitlines() == [
        "audit\tactive\tbacklog 0\tqueued 0\tdead 0",
        "billing\tpaused (deploy)\tbacklog 3\tqueued 1\tdead 2",
    ]
    assert (await run_cli("resume", "billing", "--config", str(path)))[0] == 0
    assert (await store.target_states(["billing"]))[0]["paused"] is False
    code, _, err = await run_cli("pause", "nope", "--config", str(path))
    assert code == 1 and "no target named 'nope'" in err
