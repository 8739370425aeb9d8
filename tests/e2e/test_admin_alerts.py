"""Alerts through the whole app: a pause by hand (admin API) sends a signed alert through
the running relay, /metrics counts it, and the alert is an ordinary event the inspector's
API shows."""

from __future__ import annotations

import asyncio
import json

from conftest import make_config
from multidict import CIMultiDict
from test_metrics import samples

from gateway.contract.verify import Inbound
from gateway.section import Section
from plugins.verifiers import standard_webhooks

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
AUTH = {"Authorization": "Bearer alert-admin"}


async def test_a_pause_by_hand_sends_a_signed_alert_through_the_relay(
    database_url, gateway, target, clock
):
    billing, ops = await target(), await target()
    client = await gateway(
        make_config(
            database_url,
            f"""
admin: {{tokens: {{ops: alert-admin}}}}
sources: {{shop: {{}}}}
targets: {{billing: {{url: "{billing.url}"}}}}
routes: [{{source: shop, targets: [billing]}}]
alerts:
  targets:
    pager: {{url: "{ops.url}", sign: {{type: standard-webhooks, secret: "{SECRET}"}}}}
  inspector_url: https://hookgate.example
""",
        )
    )
    response = await client.post(
        "/admin/api/targets/billing/pause", json={"reason": "migrating"}, headers=AUTH
    )
    assert response.status == 200 and (await response.json())["paused"] is True
    await ops.recorder.wait_for(1)

    headers, body = ops.recorder.requests[0]
    problems: list[str] = []
    options = standard_webhooks.plugin.parse(Section({"secret": SECRET}, "verify", problems))
    standard_webhooks.check(
        Inbound("POST", ops.url, CIMultiDict(headers), {}, body, clock.now()), options
    )
    alert = json.loads(body)
    assert alert == {
        "type": "target.paused",
        "target": "billing",
        "reason": {"outcome": None, "status": None, "error": "migrating"},
        "by": "admin ops",
        "url": "https://hookgate.example/admin/targets",
        "suppressed": 0,
        "at": clock.now().isoformat(),
    }

    listed = await (await client.get("/admin/api/events?source=_alerts", headers=AUTH)).json()
    (event,) = listed["items"]
    assert event["event_type"] == "target.paused"
    scraped = samples(await (await client.get("/metrics", headers=AUTH)).text())
    key = ("hookgate_alerts_total", (("kind", "target.paused"), ("result", "sent")))
    assert scraped[key] == 1
    detail = await delivered(client, event["id"])
    (delivery,) = detail["deliveries"]
    assert (delivery["target"], delivery["status"]) == ("_alerts.pager", "delivered")
    assert json.loads(detail["request"]["body"]["text"]) == alert

    await client.post("/admin/api/targets/billing/resume", headers=AUTH)
    assert len(ops.recorder.requests) == 1  # resuming is not an alert
    replayed = await client.post(f"/admin/api/events/{event['id']}/replay", json={}, headers=AUTH)
    assert replayed.status == 201, await replayed.text()
    await ops.recorder.wait_for(2)  # replay works for an alert like for any event
    assert ops.recorder.requests[1][1] == body


async def delivered(client, event: str) -> dict:
    """The event's detail once its delivery's attempt is written (after the sink saw it)."""
    for _ in range(200):
        detail = await (await client.get(f"/admin/api/events/{event}", headers=AUTH)).json()
        if all(d["status"] == "delivered" for d in detail["deliveries"]):
            return detail
        await asyncio.sleep(0.05)
    raise AssertionError("not delivered")
