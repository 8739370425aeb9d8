"""Failure alerts against a real Postgres and real HTTP targets: a delivery going dead, a
breaker opening and closing, a 410 pause and a backlog each send one Standard
Webhooks-signed alert, through the relay, at most once per interval across relays.

Alerts are received by a recording `aiohttp_server` and checked with hookgate's own
Standard Webhooks verifier.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from conftest import Recorder, Target, make_config, relay_for, settle_shares
from multidict import CIMultiDict
from test_pause import run_cli
from test_relay import deliver_due, shop_event

from gateway.alerting import Alerting
from gateway.clock import FrozenClock
from gateway.config import Config
from gateway.contract.verify import Inbound
from gateway.metrics import Metrics
from gateway.relay.worker import Relay
from gateway.section import Section
from gateway.storage.store import Store
from plugins.verifiers import standard_webhooks

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BASE = "https://hookgate.example"


def alert_config(
    database_url: str, t: str, ops: str, t_extra: str = "", alerts_extra: str = "",
    ops_extra: str = "", relay: str = "enabled: false",
) -> Config:  # fmt: skip
    """Source `shop` routed to target `t`; alerts go to `ops`, signed."""
    return make_config(
        database_url,
        f"""
relay: {{{relay}}}
sources:
  shop: {{}}
targets:
  t: {{url: "{t}", {t_extra}}}
routes:
  - {{source: shop, targets: [t]}}
alerts:
  targets:
    ops: {{url: "{ops}", sign: {{type: standard-webhooks, secret: "{SECRET}"}}, {ops_extra}}}
  inspector_url: {BASE}/
  {alerts_extra}
""",
    )


@asynccontextmanager
async def alerting_relay(
    store: Store, config: Config, clock: FrozenClock, worker: str = "w1"
) -> AsyncIterator[Relay]:
    """A relay that raises alerts (its own metrics registry: `relay.metrics`)."""
    metrics = Metrics()
    alerting = Alerting(config.alerts, config.server, store, metrics)
    async with relay_for(store, config, clock, worker, metrics=metrics, alerting=alerting) as relay:
        yield relay


def verified(recorder: Recorder, index: int, clock: FrozenClock) -> dict:
    """The alert body of request `index`, after checking its signature with hookgate's
    Standard Webhooks verifier (at the test's clock: the relay signed with it)."""
    headers, body = recorder.requests[index]
    problems: list[str] = []
    options = standard_webhooks.plugin.parse(Section({"secret": SECRET}, "verify", problems))
    assert problems == []
    inbound = Inbound("POST", "http://ops/hook", CIMultiDict(headers), {}, body, clock.now())
    standard_webhooks.check(inbound, options)  # raises if the signature does not match
    assert CIMultiDict(headers)["Content-Type"] == "application/json"
    return json.loads(body)


def counted(relay: Relay, kind: str, result: str) -> float:
    value = relay.metrics.registry.get_sample_value(
        "hookgate_alerts_total", {"kind": kind, "result": result}
    )
    return value or 0.0


async def alert_events(store: Store) -> list[dict]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT e.id, e.event_type, d.id AS delivery_id, d.target, d.status, d.attempts"
            " FROM hookgate.events AS e"
            " JOIN hookgate.deliveries AS d ON d.event_id = e.id"
            " WHERE e.source = '_alerts' ORDER BY e.id"
        )
    return [dict(row) for row in rows]


async def one_event(
    store: Store,
    clock: FrozenClock,
    target: Callable[[], Awaitable[Target]],
    answer: tuple,
    alert_answer: tuple | None = None,
) -> tuple[Target, Target]:
    """Targets `t` and `ops`, and one stored shop event for `t`; `t` answers it with
    `answer`, `ops` answers the first alert with `alert_answer` (else 200)."""
    t, ops = await target(), await target()
    t.recorder.script.append(answer)
    if alert_answer is not None:
        ops.recorder.script.append(alert_answer)
    await store.insert_events([shop_event(clock)])
    return t, ops


async def test_a_dead_delivery_sends_one_signed_alert_with_its_reason_and_link(
    database_url, store, clock, target
):
    t, ops = await target(), await target()
    t.recorder.script.append((422, {}, b'{"error": "unknown customer"}'))
    event = shop_event(clock)
    await store.insert_events([event])

    async with alerting_relay(store, alert_config(database_url, t.url, ops.url), clock) as relay:
        assert await deliver_due(relay) == 1  # t answers 422: dead, and the alert is written
        assert await deliver_due(relay) == 1  # the alert's delivery to ops
        assert counted(relay, "delivery.dead", "sent") == 1

    (request,) = ops.recorder.requests
    alert = verified(ops.recorder, 0, clock)
    (delivery,) = await store.deliveries(event.id)
    assert delivery["status"] == "dead"
    assert alert == {
        "type": "delivery.dead",
        "target": "t",
        "reason": {
            "outcome": "HTTP_4XX_PERMANENT",
            "status": 422,
            "error": None,
            "response": '{"error": "unknown customer"}',
        },
        "event_id": str(event.id),
        "delivery_id": str(delivery["id"]),
        "url": f"{BASE}/admin/events/{event.id}",
        "suppressed": 0,
        "at": clock.now().isoformat(),
    }
    (stored,) = await alert_events(store)
    assert (stored["event_type"], stored["target"], stored["status"]) == (
        "delivery.dead", "_alerts.ops", "delivered",
    )  # fmt: skip
    assert CIMultiDict(request[0])["webhook-id"] == str(stored["delivery_id"])


async def test_a_failing_target_alerts_once_per_interval_and_then_reports_the_suppressed(
    database_url, store, clock, target
):
    t, ops = await target(), await target()
    t.recorder.script.extend([(422, {}, b"no")] * 4)
    await store.insert_events([shop_event(clock) for _ in range(3)])
    config = alert_config(database_url, t.url, ops.url, alerts_extra="min_interval: 10m")

    async with alerting_relay(store, config, clock) as relay:
        assert await deliver_due(relay) == 3  # three dead deliveries ...
        assert await deliver_due(relay) == 1  # ... one alert
        assert await deliver_due(relay) == 0
        assert len(ops.recorder.requests) == 1
        assert verified(ops.recorder, 0, clock)["suppressed"] == 0
        assert counted(relay, "delivery.dead", "suppressed") == 2

        clock.advance(9 * 60)  # within the interval: dead again, still no alert
        await store.insert_events([shop_event(clock)])
        assert await deliver_due(relay) == 1
        assert await deliver_due(relay) == 0
        assert counted(relay, "delivery.dead", "suppressed") == 3

        clock.advance(61)  # the interval has passed: the next one is sent and says so
        t.recorder.script.append((422, {}, b"no"))
        await store.insert_events([shop_event(clock)])
        assert await deliver_due(relay) == 1
        assert await deliver_due(relay) == 1
    assert len(ops.recorder.requests) == 2
    assert verified(ops.recorder, 1, clock)["suppressed"] == 3
    assert len(await alert_events(store)) == 2


async def test_breaker_opened_and_closed_alerts(database_url, store, clock, target):
    t, ops = await target(), await target()
    t.recorder.script.extend([(500, {}, b"down")] * 2)
    config = alert_config(
        database_url, t.url, ops.url,
        t_extra="breaker: {failures: 2, cooldown: 30s}, retry: {schedule: [1s, 1s, 1s]}",
        alerts_extra="when: [breaker]",
    )  # fmt: skip
    await store.insert_events([shop_event(clock) for _ in range(2)])

    async with alerting_relay(store, config, clock) as relay:
        assert await deliver_due(relay) == 2  # two 500s: the breaker opens
        assert await deliver_due(relay) == 1  # the alert (t is held back by its breaker)
        opened = verified(ops.recorder, 0, clock)
        assert (opened["type"], opened["target"], opened["url"]) == (
            "breaker.opened", "t", f"{BASE}/admin/targets",
        )  # fmt: skip
        assert opened["reason"]["outcome"] == "HTTP_5XX" and opened["reason"]["status"] == 500
        assert opened["reason"]["response"] == "down"

        clock.advance(30)  # cooled down: the probe succeeds and closes it
        assert await deliver_due(relay) == 1
        assert await deliver_due(relay) == 2  # the closed alert, and t's other delivery
        assert await deliver_due(relay) == 0
    closed = verified(ops.recorder, 1, clock)
    assert (closed["type"], closed["target"]) == ("breaker.closed", "t")
    assert closed["reason"]["outcome"] == "HTTP_2XX" and closed["reason"]["status"] == 200
    assert len(ops.recorder.requests) == 2  # `when: [breaker]`: the retries' failures, none


async def test_410_pauses_the_target_and_alerts(database_url, store, clock, target):
    t, ops = await one_event(store, clock, target, (410, {}, b"this endpoint was removed"))

    async with alerting_relay(store, alert_config(database_url, t.url, ops.url), clock) as relay:
        assert await deliver_due(relay) == 1
        assert await deliver_due(relay) == 1
    (state,) = await store.target_states(["t"])
    assert state["paused"]
    alert = verified(ops.recorder, 0, clock)
    assert (alert["type"], alert["target"], alert["by"]) == ("target.paused", "t", "relay w1")
    assert alert["reason"]["outcome"] == "GONE" and alert["reason"]["status"] == 410
    assert "410 Gone: this endpoint was removed" in alert["reason"]["error"]


async def test_a_backlog_over_its_threshold_alerts_once_as_it_crosses(
    database_url, store, clock, target
):
    t, ops = await target(), await target()
    config = alert_config(database_url, t.url, ops.url, alerts_extra="backlog: 3\n  oldest_due: 1h")
    await store.insert_events([shop_event(clock) for _ in range(2)])

    async with alerting_relay(store, config, clock) as relay:
        alerting = relay.alerting
        assert alerting is not None
        await alerting.check(sorted(relay.lanes), clock.now())  # 2 due: under the threshold
        assert await alert_events(store) == []
        await store.insert_events([shop_event(clock)])
        await alerting.check(sorted(relay.lanes), clock.now())  # 3 due: it crossed
        await alerting.check(sorted(relay.lanes), clock.now())  # still over: no new alert
        (alert,) = await alert_events(store)
        assert alert["event_type"] == "target.backlog"
        assert await deliver_due(relay) == 4  # t's three, and the alert
    body = verified(ops.recorder, 0, clock)
    assert (body["type"], body["target"], body["due"], body["backlog_threshold"]) == (
        "target.backlog", "t", 3, 3,
    )  # fmt: skip
    assert body["reason"]["error"] == "3 deliveries due, the oldest for 0s"


async def test_an_old_due_delivery_alerts(database_url, store, clock, target):
    t, ops = await target(), await target()
    config = alert_config(database_url, t.url, ops.url, alerts_extra="oldest_due: 15m")
    await store.insert_events([shop_event(clock)])
    async with alerting_relay(store, config, clock) as relay:
        assert relay.alerting is not None
        clock.advance(15 * 60)
        await relay.alerting.check(["t"], clock.now())
    (alert,) = await alert_events(store)
    assert alert["event_type"] == "target.backlog"


async def test_an_alert_target_answering_500_is_retried_by_the_relay(
    database_url, store, clock, target
):
    t, ops = await one_event(
        store, clock, target, (422, {}, b""), (500, {}, b"pager is restarting")
    )
    config = alert_config(database_url, t.url, ops.url, ops_extra="retry: {schedule: [1s]}")

    async with alerting_relay(store, config, clock) as relay:
        assert await deliver_due(relay) == 1
        assert await deliver_due(relay) == 1  # the alert: 500, a retry is scheduled
        clock.advance(1)
        assert await deliver_due(relay) == 1  # delivered
    (alert,) = await alert_events(store)
    assert (alert["status"], alert["attempts"]) == ("delivered", 2)
    first, second = verified(ops.recorder, 0, clock), verified(ops.recorder, 1, clock)
    assert first == second
    ids = [CIMultiDict(headers)["webhook-id"] for headers, _ in ops.recorder.requests]
    assert ids[0] == ids[1]


async def test_an_alert_that_goes_dead_does_not_alert_again(database_url, store, clock, target):
    t, ops = await one_event(store, clock, target, (422, {}, b""), (422, {}, b"pager rejects it"))
    config = alert_config(database_url, t.url, ops.url, alerts_extra="min_interval: 0s")

    async with alerting_relay(store, config, clock) as relay:
        assert await deliver_due(relay) == 1
        assert await deliver_due(relay) == 1  # the alert goes dead ...
        assert await deliver_due(relay) == 0  # ... and nothing alerts about it
        assert counted(relay, "delivery.dead", "sent") == 1
    (alert,) = await alert_events(store)
    assert alert["status"] == "dead"


async def test_two_relays_finishing_dead_deliveries_at_once_send_one_alert(
    database_url, store, clock, target
):
    t, ops = await target(), await target()
    t.recorder.script.extend([(422, {}, b"")] * 2)
    t.recorder.hold = asyncio.Event()  # both relays hold one delivery before either finishes
    config = alert_config(database_url, t.url, ops.url, relay="enabled: false, batch_size: 1")

    async with (
        alerting_relay(store, config, clock, "w1") as one,
        alerting_relay(store, config, clock, "w2") as two,
    ):
        await settle_shares(clock, one, two)  # each holds half of the target's concurrency
        await store.insert_events([shop_event(clock) for _ in range(2)])
        assert await one.run_once() + await two.run_once() == 2  # one delivery each
        await t.recorder.wait_for(2)
        t.recorder.hold.set()
        await asyncio.gather(one.drain(), two.drain())  # both go dead, both ask to alert
        sent = sorted(counted(r, "delivery.dead", "sent") for r in (one, two))
        suppressed = sorted(counted(r, "delivery.dead", "suppressed") for r in (one, two))
        assert sent == [0, 1] and suppressed == [0, 1]
        while await deliver_due(one) + await deliver_due(two):
            pass
    assert [a["event_type"] for a in await alert_events(store)] == ["delivery.dead"]
    assert len(ops.recorder.requests) == 1
    async with store.pool.acquire() as conn:
        suppressed_now = await conn.fetchval(
            "SELECT suppressed FROM hookgate.alert_state WHERE target = 't' AND kind = $1",
            "delivery.dead",
        )
    assert suppressed_now == 1  # the next alert of the kind will say so


async def test_two_relays_checking_one_backlog_send_one_alert(database_url, store, clock, target):
    t, ops = await target(), await target()
    config = alert_config(database_url, t.url, ops.url, alerts_extra="backlog: 1")
    await store.insert_events([shop_event(clock)])

    async with (
        alerting_relay(store, config, clock, "w1") as one,
        alerting_relay(store, config, clock, "w2") as two,
    ):
        checks = [r.alerting.check(["t"], clock.now()) for r in (one, two) if r.alerting]
        await asyncio.gather(*checks)
        sent = sorted(counted(r, "target.backlog", "sent") for r in (one, two))
        assert sent == [0, 1]
    assert [a["event_type"] for a in await alert_events(store)] == ["target.backlog"]


async def test_no_alerts_section_means_no_alert_events(database_url, store, clock, target):
    t = await target()
    t.recorder.script.append((422, {}, b""))
    config = make_config(
        database_url,
        f'relay: {{enabled: false}}\nsources: {{shop: {{}}}}\ntargets: {{t: {{url: "{t.url}"}}}}\n'
        "routes: [{source: shop, targets: [t]}]\n",
    )
    assert config.alerts.targets == {} and set(config.targets) == {"t"}
    await store.insert_events([shop_event(clock)])
    async with alerting_relay(store, config, clock) as relay:
        assert await deliver_due(relay) == 1
    assert await alert_events(store) == []


async def test_hookgate_pause_from_the_command_line_writes_an_alert(tmp_path, database_url, store):
    path = tmp_path / "h.yaml"
    path.write_text(
        f'database: {{url: "{database_url}"}}\n'
        "targets: {billing: {url: 'http://127.0.0.1:9/x'}}\n"
        "alerts: {targets: {ops: {url: 'http://127.0.0.1:9/alerts'}}}\n"
    )
    assert (await run_cli("pause", "billing", "--config", str(path), "--reason", "deploy"))[0] == 0
    (alert,) = await alert_events(store)
    assert (alert["event_type"], alert["target"], alert["status"]) == (
        "target.paused", "_alerts.ops", "pending",
    )  # fmt: skip
    event = await store.event(alert["id"])
    assert event is not None
    body = json.loads(event["body"])
    assert body["reason"]["error"] == "deploy" and body["by"].startswith("cli ")
    assert (await run_cli("resume", "billing", "--config", str(path)))[0] == 0
    assert len(await alert_events(store)) == 1


async def test_when_an_alert_cannot_be_written_the_results_and_the_pause_still_are(
    database_url, store, clock, target
):
    t, ops = await target(), await target()
    t.recorder.script.extend([(422, {}, b""), (410, {}, b"gone")])
    async with store.pool.acquire() as conn:  # the alerts' table is gone: every claim fails
        await conn.execute("DROP TABLE hookgate.alert_state")
    first, second = shop_event(clock), shop_event(clock)
    await store.insert_events([first])

    async with alerting_relay(store, alert_config(database_url, t.url, ops.url), clock) as relay:
        assert await deliver_due(relay) == 1
        await store.insert_events([second])
        assert await deliver_due(relay) == 1
    assert (await store.deliveries(first.id))[0]["status"] == "dead"  # recorded, unalerted
    assert (await store.target_states(["t"]))[0]["paused"]  # the 410 paused it all the same
    assert await alert_events(store) == []
