"""Replay through the admin API against a real target: same ids, a fresh retry budget,
audit rows, dry runs that change nothing, cancel, pause/resume, releasing a FIFO key."""

from __future__ import annotations

import asyncio
import uuid

from conftest import fetch, make_config

from gateway import keys

TOKEN = "replay-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config_text(url: str, retry: str = "[1s]", ordering: str = "") -> str:
    return f"""
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type"}}
targets:
  billing: {{url: "{url}", retry: {{schedule: {retry}, jitter: 0}}, breaker: false{ordering}}}
  backfill: {{url: "{url}"}}
routes:
  - {{source: shop, targets: [billing]}}
"""


async def ingest(client, body: bytes) -> str:
    response = await client.post("/in/shop", data=body)
    assert response.status == 202
    return str((await response.json())["id"])


async def until_status(client, event_id: str, target: str, status: str, clock) -> dict:
    """Wait (bounded) for the delivery to reach `status`, moving the clock past retries."""
    for _ in range(200):
        detail = await (await client.get(f"/admin/api/events/{event_id}", headers=AUTH)).json()
        delivery = next((d for d in detail["deliveries"] if d["target"] == target), None)
        if delivery is not None and delivery["status"] == status:
            return delivery
        clock.advance(2)
        await client.post("/admin/api/targets/billing/resume", headers=AUTH)  # wakes the relay
        await asyncio.sleep(0.05)
    raise AssertionError(f"{target} never became {status}: {delivery}")


async def test_replay_keeps_ids_and_gets_a_fresh_budget(database_url, target, gateway, clock):
    billing = await target()
    billing.recorder.script = [(500, {}, b"no")] * 2  # the whole budget (2 attempts) fails
    signed = config_text(billing.url).replace(
        "breaker: false",
        'breaker: false, sign: {type: standard-webhooks, secret: "whsec_'
        'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}',
    )
    client = await gateway(make_config(database_url, signed))
    event_id = await ingest(client, b'{"type": "invoice.paid"}')
    dead = await until_status(client, event_id, "billing", "dead", clock)
    assert dead["attempts"] == 2

    billing.recorder.script = [(500, {}, b"again")]  # one failure: the fresh budget retries
    response = await client.post(f"/admin/api/events/{event_id}/replay", headers=AUTH, json={})
    assert response.status == 201
    result = await response.json()
    assert result["counts"] == {
        "deliveries": 1,
        "by_target": {"billing": 1},
        "sample": [dead["id"]],
    }
    delivered = await until_status(client, event_id, "billing", "delivered", clock)

    assert delivered["id"] == dead["id"]  # same delivery id = idempotency key
    assert delivered["attempts"] == 4 and delivered["budget_from"] == 2
    assert [a["attempt"] for a in delivered["history"]] == [1, 2, 3, 4]  # history kept
    assert [a["replay_id"] for a in delivered["history"]] == [
        None,
        None,
        result["id"],
        result["id"],
    ]
    (mark,) = delivered["replays"]
    assert (mark["replay_id"], mark["created_by"], mark["previous_status"]) == (
        result["id"],
        "ops",
        "dead",
    )
    assert len(billing.recorder.requests) == 4  # two before the replay, two after
    keys = {headers["Idempotency-Key"] for headers, _ in billing.recorder.requests}
    webhook_ids = {headers["webhook-id"] for headers, _ in billing.recorder.requests}
    events = {headers["X-Hookgate-Event-Id"] for headers, _ in billing.recorder.requests}
    assert keys == webhook_ids == {dead["id"]} and events == {event_id}


async def test_replay_to_a_new_target_backfills_and_new_key_mints_one(
    database_url, target, gateway, clock
):
    billing = await target()
    client = await gateway(make_config(database_url, config_text(billing.url)))
    event_id = await ingest(client, b'{"type": "a"}')
    first = await until_status(client, event_id, "billing", "delivered", clock)

    response = await client.post(
        f"/admin/api/events/{event_id}/replay",
        headers=AUTH,
        json={"targets": ["backfill", "billing"], "new_key": True},
    )
    assert (await response.json())["counts"]["by_target"] == {"backfill": 1, "billing": 1}
    again = await until_status(client, event_id, "billing", "delivered", clock)
    await until_status(client, event_id, "backfill", "delivered", clock)
    assert again["id"] != first["id"] and again["id"][:18] == first["id"][:18]
    assert again["replays"][0]["previous_id"] == first["id"]
    assert [a["attempt"] for a in again["history"]] == [1, 2]  # attempts followed the new id

    unknown = await client.post(
        f"/admin/api/events/{event_id}/replay", headers=AUTH, json={"targets": ["nope"]}
    )
    assert unknown.status == 422


async def test_bulk_replay_dry_run_changes_nothing_then_replays_and_is_audited(
    database_url, target, gateway, clock
):
    billing = await target()
    billing.recorder.script = [(400, {}, b"bad")] * 3  # permanent: dead at once
    client = await gateway(make_config(database_url, config_text(billing.url)))
    ids = [await ingest(client, b'{"type": "t%d"}' % n) for n in range(3)]
    for event_id in ids:
        await until_status(client, event_id, "billing", "dead", clock)

    body = {"filter": {"status": "dead", "target": "billing", "type": "t*"}, "dry_run": True}
    dry = await client.post("/admin/api/replays", headers=AUTH, json=body)
    assert dry.status == 200
    dry_result = await dry.json()
    assert dry_result["counts"]["deliveries"] == 3 and dry_result["dry_run"] is True
    rows = await fetch(database_url, "SELECT status FROM hookgate.deliveries")
    assert {r["status"] for r in rows} == {"dead"}
    assert not await fetch(database_url, "SELECT * FROM hookgate.replayed")

    clock.advance(1)
    real = await client.post("/admin/api/replays", headers=AUTH, json={**body, "dry_run": False})
    assert real.status == 201
    assert (await real.json())["counts"]["by_target"] == {"billing": 3}
    for event_id in ids:
        await until_status(client, event_id, "billing", "delivered", clock)

    audit = await (await client.get("/admin/api/replays", headers=AUTH)).json()
    assert [r["dry_run"] for r in audit["items"]] == [False, True]
    assert audit["items"][0]["created_by"] == "ops"
    assert audit["items"][0]["filter"] == {"status": "dead", "targets": ["billing"], "type": "t*"}
    detail = await (
        await client.get(f"/admin/api/replays/{audit['items'][0]['id']}", headers=AUTH)
    ).json()
    assert len(detail["affected"]["items"]) == 3
    assert {d["previous_status"] for d in detail["affected"]["items"]} == {"dead"}


async def statuses(database_url: str) -> dict[str, int]:
    rows = await fetch(
        database_url, "SELECT status, count(*) AS n FROM hookgate.deliveries GROUP BY 1"
    )
    return {r["status"]: r["n"] for r in rows}


async def test_bulk_replays_queue_and_are_let_in_as_the_target_has_room(
    database_url, gateway, clock
):
    text = config_text("http://127.0.0.1:9/x").replace(
        "breaker: false", "breaker: false, concurrency: 1"
    )
    client = await gateway(make_config(database_url, text + "relay: {enabled: false}\n"))
    for n in range(5):
        await ingest(client, b'{"type": "x%d"}' % n)
    await fetch(database_url, "UPDATE hookgate.deliveries SET status = 'dead'")
    body = {"filter": {"status": "dead"}, "dry_run": False}
    assert (await client.post("/admin/api/replays", headers=AUTH, json=body)).status == 201
    for _ in range(200):  # the feeder fills the window (2 x concurrency 1), then waits
        if await statuses(database_url) == {"pending": 2, "queued": 3}:
            break
        await asyncio.sleep(0.05)
    assert await statuses(database_url) == {"pending": 2, "queued": 3}
    state = await (await client.get("/admin/api/targets/billing", headers=AUTH)).json()
    assert (state["queued"], state["pending"], state["due"]) == (3, 2, 2)

    clock.advance(1)
    await ingest(client, b'{"type": "live"}')  # no room: the live one is not behind the 3
    released, more = await client.app[keys.REPLAY_FEEDER].release_once()
    assert (released, more) == (0, True)
    assert await statuses(database_url) == {"pending": 3, "queued": 3}


async def test_cancel_pause_resume_and_bad_requests(database_url, target, gateway, clock):
    config = make_config(
        database_url, config_text("http://127.0.0.1:9/x") + "relay: {enabled: false}\n"
    )
    client = await gateway(config)
    event_id = await ingest(client, b'{"type": "x"}')
    detail = await (await client.get(f"/admin/api/events/{event_id}", headers=AUTH)).json()
    delivery = detail["deliveries"][0]["id"]

    assert (
        await client.post(f"/admin/api/deliveries/{delivery}/cancel", headers=AUTH)
    ).status == 200
    again = await client.post(f"/admin/api/deliveries/{delivery}/cancel", headers=AUTH)
    assert again.status == 409 and "cancelled" in (await again.json())["error"]

    paused = await client.post(
        "/admin/api/targets/billing/pause", headers=AUTH, json={"reason": "db move"}
    )
    state = await paused.json()
    assert (state["paused"], state["reason"], state["changed_by"]) == (True, "db move", "admin ops")
    resumed = await (await client.post("/admin/api/targets/billing/resume", headers=AUTH)).json()
    assert resumed["paused"] is False
    assert (await client.post("/admin/api/targets/nope/pause", headers=AUTH)).status == 404
    bad = await client.post("/admin/api/replays", headers=AUTH, data=b"{not json")
    assert bad.status == 400 and "JSON" in (await bad.json())["error"]
    bad_filter = await client.post(
        "/admin/api/replays", headers=AUTH, json={"filter": {"colour": "x"}}
    )
    assert (await bad_filter.json()) == {"error": "filter.colour: unknown key"}
    typo = await client.post(
        f"/admin/api/events/{event_id}/replay", headers=AUTH, json={"target": ["x"]}
    )
    assert typo.status == 400 and (await typo.json()) == {"error": "target: unknown key"}


async def test_a_blocked_fifo_key_is_released(database_url, target, gateway, clock):
    billing = await target()
    billing.recorder.script = [(400, {}, b"bad")]
    ordering = ', ordering: {key: "json:customer", on_dead: block}'
    client = await gateway(make_config(database_url, config_text(billing.url, ordering=ordering)))
    first = await ingest(client, b'{"type": "a", "customer": "cus_1"}')
    await until_status(client, first, "billing", "dead", clock)
    clock.advance(1)
    second = await ingest(client, b'{"type": "b", "customer": "cus_1"}')

    blocked = await (await client.get("/admin/api/targets/billing/blocked", headers=AUTH)).json()
    assert blocked["items"] == [{"key": "cus_1", "dead": 1, "waiting": 1}]
    released = await client.post(
        "/admin/api/targets/billing/release", headers=AUTH, json={"key": "cus_1"}
    )
    assert (await released.json())["released"] == 1
    await until_status(client, second, "billing", "delivered", clock)
    detail = await (await client.get(f"/admin/api/events/{first}", headers=AUTH)).json()
    (held,) = detail["deliveries"]
    assert (held["status"], held["ordering_key"], held["released_key"]) == ("dead", None, "cus_1")
    again = await client.post(
        "/admin/api/targets/billing/release", headers=AUTH, json={"key": "cus_1"}
    )
    assert again.status == 404


async def test_a_bulk_replay_with_new_key_moves_the_history_to_the_new_ids(
    database_url, target, gateway, clock
):
    billing = await target()
    billing.recorder.script = [(400, {}, b"bad")] * 2
    client = await gateway(make_config(database_url, config_text(billing.url)))
    ids = [await ingest(client, b'{"type": "k%d"}' % n) for n in range(2)]
    before = [await until_status(client, event_id, "billing", "dead", clock) for event_id in ids]

    body = {"filter": {"status": "dead"}, "dry_run": False, "new_key": True}
    assert (await client.post("/admin/api/replays", headers=AUTH, json=body)).status == 201
    after = [
        await until_status(client, event_id, "billing", "delivered", clock) for event_id in ids
    ]
    for old, new in zip(before, after, strict=True):
        assert new["id"] != old["id"] and new["replays"][0]["previous_id"] == old["id"]
        assert [a["attempt"] for a in new["history"]] == [1, 2]
    orphans = await fetch(database_url, "SELECT count(*) AS n FROM hookgate.attempts WHERE delivery_id = ANY($1::uuid[])",
                          [d["id"] for d in before])  # fmt: skip
    assert orphans[0]["n"] == 0
    sent = [h["Idempotency-Key"] for h, _ in billing.recorder.requests]
    assert sorted(sent[2:]) == sorted(d["id"] for d in after)


async def test_every_bulk_filter_key_narrows_what_a_dry_run_counts(database_url, gateway, clock):
    text = (
        config_text("http://127.0.0.1:9/x").replace(
            '  shop: {event_type: "json:type"}', '  shop: {event_type: "json:type"}\n  other: {}'
        )
        + "  - {source: other, targets: [billing]}\nrelay: {enabled: false}\n"
    )
    client = await gateway(make_config(database_url, text))
    old = await ingest(client, b'{"type": "a.x", "note": "needle"}')
    clock.advance(60)
    middle = await ingest(client, b'{"type": "a.y"}')
    clock.advance(60)
    response = await client.post("/in/other", data=b"plain", headers={"X-Tag": "NeedleHeader"})
    assert response.status == 202
    await fetch(database_url, "UPDATE hookgate.deliveries SET status = 'dead', "
                "last_outcome = CASE WHEN event_id = $1 THEN 'HTTP_4XX_PERMANENT' "
                "ELSE 'HTTP_5XX' END", uuid.UUID(old))  # fmt: skip

    async def would(**filter_: str) -> dict[str, int]:
        body = {"filter": filter_, "dry_run": True}
        answer = await client.post("/admin/api/replays", headers=AUTH, json=body)
        assert answer.status == 200, await answer.text()
        return (await answer.json())["counts"]["by_target"]

    assert await would() == {"billing": 3}
    assert await would(status="dead") == {"billing": 3}
    assert await would(status="pending") == {}
    assert await would(source="other") == {"billing": 1}
    assert await would(type="a.*") == {"billing": 2}
    assert await would(outcome="HTTP_4XX_PERMANENT") == {"billing": 1}
    assert await would(since="90s") == {"billing": 2}  # middle and newest
    assert await would(until="90s") == {"billing": 1}  # old
    assert await would(q="needle") == {"billing": 2}  # old's body, newest's header value
    assert await would(q="Needle") == {"billing": 1}  # the body is matched case by case
    assert await would(q="needleheader") == {"billing": 1}  # a header value in any case
    assert await would(target="backfill") == {}
    await fetch(database_url, "UPDATE hookgate.deliveries SET status = 'in_flight' "
                "WHERE event_id = $1", uuid.UUID(middle))  # fmt: skip
    clock.advance(1)  # the audit lists newest first by time
    assert await would(type="a.*") == {"billing": 1}  # one being sent is left alone
    assert (await statuses(database_url)) == {"dead": 2, "in_flight": 1}  # dry runs change nothing
    audit = (await (await client.get("/admin/api/replays", headers=AUTH)).json())["items"]
    assert len(audit) == 13 and all(r["dry_run"] for r in audit)
    assert audit[0]["filter"] == {"type": "a.*"} and audit[0]["deliveries"] == 1
