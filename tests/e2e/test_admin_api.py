"""The admin JSON API through the whole app: listing, one event in full, filters, errors."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid

import asyncpg
import jsonschema
from conftest import make_config

from gateway import keys

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config_text(url: str, extra: str = "") -> str:
    return f"""
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type"}}
  other: {{}}
targets:
  billing: {{url: "{url}"}}
routes:
  - {{source: shop, targets: [billing]}}
{extra}"""


async def ingest(client, body: bytes, source: str = "shop", **headers: str) -> str:
    response = await client.post(f"/in/{source}", data=body, headers=headers)
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def test_events_are_listed_newest_first_and_shown_in_full(
    database_url, target, gateway, clock
):
    billing = await target()
    client = await gateway(make_config(database_url, config_text(billing.url)))
    first = await ingest(client, b'{"type": "order.paid", "n": 1}')
    clock.advance(1)
    second = await ingest(client, b'{"type": "order.created", "n": 2}', Authorization="Bearer x")
    await until(client, "delivered", 2)

    listed = await client.get("/admin/api/events", headers=AUTH)
    assert listed.status == 200
    page = await listed.json()
    assert [e["id"] for e in page["items"]] == [second, first]
    assert page["next_cursor"] is None

    detail = await (await client.get(f"/admin/api/events/{second}", headers=AUTH)).json()
    assert detail["request"]["body"]["text"] == '{"type": "order.created", "n": 2}'
    assert ["Authorization", "Bearer [redacted]"] in detail["request"]["headers"]
    assert detail["matched_routes"] == [{"index": 0, "targets": ["billing"]}]
    (delivery,) = detail["deliveries"]
    assert delivery["target"] == "billing"
    assert [a["outcome"] for a in delivery["history"]] == ["HTTP_2XX"]


async def test_without_a_token_the_api_answers_401(database_url, target, gateway):
    client = await gateway(make_config(database_url, config_text((await target()).url)))
    response = await client.get("/admin/api/events")
    assert response.status == 401
    assert (await response.json())["error"]
    wrong = await client.get("/admin/api/events", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401


async def test_an_unknown_event_is_404(database_url, target, gateway):
    client = await gateway(make_config(database_url, config_text((await target()).url)))
    response = await client.get(f"/admin/api/events/{uuid.uuid4()}", headers=AUTH)
    assert response.status == 404
    assert await response.json() == {"error": "no event with this id"}


async def until(client, status: str, count: int) -> None:
    for _ in range(200):
        page = await (await client.get(f"/admin/api/events?status={status}", headers=AUTH)).json()
        if len(page["items"]) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not delivered")


async def test_filters_and_cursor_pagination(database_url, target, gateway, clock):
    billing = await target()
    billing.recorder.script = [(400, {}, b"bad")]  # the first one is refused: dead
    client = await gateway(make_config(database_url, config_text(billing.url)))
    dead = await ingest(client, b'{"type": "order.paid", "n": 1}')
    await until(client, "dead", 1)
    clock.advance(60)
    ok = await ingest(client, b'{"type": "order.created", "n": 2}', **{"X-Trace": "needle-42"})
    clock.advance(60)
    unrouted = await ingest(client, b'{"type": "x"}', source="other")
    await until(client, "delivered", 1)

    async def ids(**params: str) -> list[str]:
        page = await (await client.get("/admin/api/events", params=params, headers=AUTH)).json()
        return [e["id"] for e in page["items"]]

    assert await ids(status="dead") == [dead]
    assert await ids(status="delivered") == [ok]
    assert await ids(target="billing") == [ok, dead]
    assert await ids(source="other") == [unrouted]
    assert await ids(type="order.*") == [ok, dead]
    assert await ids(q="needle-42") == [ok]
    assert await ids(q='"n": 1') == [dead]
    since = (clock.now() - dt.timedelta(seconds=90)).isoformat()
    assert await ids(since=since) == [unrouted, ok]
    assert await ids(until=since) == [dead]
    assert await ids(since="59s") == [unrouted]

    first = await (await client.get("/admin/api/events?limit=2", headers=AUTH)).json()
    assert [e["id"] for e in first["items"]] == [unrouted, ok] and first["next_cursor"]
    rest = await (await client.get("/admin/api/events", headers=AUTH,
                                   params={"limit": "2", "cursor": first["next_cursor"]})).json()  # fmt: skip
    assert [e["id"] for e in rest["items"]] == [dead] and rest["next_cursor"] is None

    dlq = await (await client.get("/admin/api/deliveries", headers=AUTH)).json()
    assert [d["event_id"] for d in dlq["items"]] == [dead]
    assert dlq["items"][0]["last_outcome"] == "HTTP_4XX_PERMANENT"
    for bad in ({"status": "weird"}, {"since": "yesterday"}, {"cursor": "!!"}, {"limit": "0"}):
        response = await client.get("/admin/api/events", params=bad, headers=AUTH)
        assert response.status == 400, bad


async def test_targets_and_dashboard_count_the_last_hour(database_url, target, gateway, clock):
    billing = await target()
    billing.recorder.script = [(503, {}, b"busy")]
    client = await gateway(make_config(database_url, config_text(billing.url)))
    await ingest(client, b'{"type": "a"}')
    await ingest(client, b'{"type": "b"}')
    await billing.recorder.wait_for(2)
    for _ in range(200):
        (stats,) = (await (await client.get("/admin/api/targets", headers=AUTH)).json())["items"]
        if stats["attempts"] == 2:
            break
        await asyncio.sleep(0.05)
    assert (stats["succeeded"], stats["success_ratio"], stats["pending"]) == (1, 0.5, 1)
    assert stats["p50_ms"] is not None and stats["p95_ms"] >= stats["p50_ms"]
    assert (stats["breaker"], stats["paused"], stats["dead"]) == ("closed", False, 0)

    board = await (await client.get("/admin/api/dashboard", headers=AUTH)).json()
    assert len(board["minutes"]) == 60
    assert board["minutes"][-1]["ingested"] == 2
    assert (board["minutes"][-1]["delivered"], board["minutes"][-1]["failed"]) == (1, 1)
    assert sum(m["ingested"] for m in board["minutes"]) == 2

    paused = await client.post("/admin/api/targets/billing/pause", headers=AUTH, json={})
    assert paused.status == 200  # so its retry, due by then, is not sent
    clock.advance(3601)  # an hour later the window has moved past all of it
    (later,) = (await (await client.get("/admin/api/targets", headers=AUTH)).json())["items"]
    assert (later["attempts"], later["success_ratio"], later["p50_ms"]) == (0, None, None)
    assert later["pending"] == 1  # the backlog is now, not of the last hour
    board = await (await client.get("/admin/api/dashboard", headers=AUTH)).json()
    assert sum(m["ingested"] + m["delivered"] + m["failed"] for m in board["minutes"]) == 0


async def test_the_stream_sends_new_events_and_attempts(database_url, target, gateway):
    billing = await target()
    client = await gateway(make_config(database_url, config_text(billing.url)))
    document = await (await client.get("/admin/api/openapi.json", headers=AUTH)).json()
    kinds: dict[str, dict] = {}
    async with client.get("/admin/api/stream", headers=AUTH) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.headers["Server"] == "hookgate"
        event_id = await ingest(client, b'{"type": "live"}')
        kind = ""
        async with asyncio.timeout(15):
            async for raw in stream.content:
                line = raw.decode().strip()
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    kinds[kind] = json.loads(line[6:])
                if {"event", "attempt"} <= set(kinds):
                    break
        await client.app[keys.ADMIN_STREAM].close()  # what shutdown does: the answer ends
        async with asyncio.timeout(10):
            assert [line async for line in stream.content if line.startswith(b"data: ")] == []
    assert kinds["event"]["id"] == event_id
    assert (kinds["attempt"]["event_id"], kinds["attempt"]["outcome"]) == (event_id, "HTTP_2XX")
    for kind, name in (("event", "StreamEvent"), ("attempt", "StreamAttempt")):
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        jsonschema.validate(kinds[kind], schema)


async def test_the_database_down_is_a_503_with_retry_after(database_url, gateway):
    client = await gateway(
        make_config(database_url, config_text("http://127.0.0.1:9/x") + "relay: {enabled: false}\n")
    )
    await client.app[keys.STORE].pool.close()
    for method, path in (("GET", "/admin/api/events"), ("POST", "/admin/api/replays")):
        response = await client.request(method, path, headers=AUTH, json={})
        assert response.status == 503, path
        assert response.headers["Retry-After"] == "5"
        assert "retry later" in (await response.json())["error"]


async def test_with_encryption_on_the_api_shows_stored_requests_decrypted(
    database_url, target, gateway
):
    key = base64.b64encode(bytes(range(32))).decode()
    billing = await target()
    extra = f"encryption: {{keys: {{k1: '{key}'}}, active: k1}}"
    client = await gateway(make_config(database_url, config_text(billing.url, extra)))
    event_id = await ingest(client, b'{"type": "order.paid", "email": "ann@example.com"}',
                            **{"X-Customer": "ann"})  # fmt: skip
    await billing.recorder.wait_for(1)

    detail = await (await client.get(f"/admin/api/events/{event_id}", headers=AUTH)).json()
    assert detail["request"]["body"]["text"] == '{"type": "order.paid", "email": "ann@example.com"}'
    assert ["X-Customer", "ann"] in detail["request"]["headers"]


async def test_pending_status_unmatched_routes_and_the_dead_letter_since(
    database_url, gateway, clock
):
    text = f"""
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type"}}
targets:
  billing: {{url: "http://127.0.0.1:9/billing"}}
  audit: {{url: "http://127.0.0.1:9/audit"}}
routes:
  - {{source: shop, targets: [billing]}}
  - {{source: shop, targets: [audit], filter: {{event_type: ["big.*"]}}}}
relay: {{enabled: false}}
"""
    client = await gateway(make_config(database_url, text))
    small = await ingest(client, b'{"type": "small.one"}')
    clock.advance(120)
    big = await ingest(client, b'{"type": "big.one"}')

    async def ids(path: str, **params: str) -> list[str]:
        page = await (await client.get(path, params=params, headers=AUTH)).json()
        return [item["id"] for item in page["items"]]

    assert await ids("/admin/api/events", status="pending") == [big, small]
    assert await ids("/admin/api/events", status="dead") == []
    assert await ids("/admin/api/events", status="delivered") == []
    detail = await (await client.get(f"/admin/api/events/{small}", headers=AUTH)).json()
    assert detail["matched_routes"] == [{"index": 0, "targets": ["billing"]}]
    assert detail["unmatched_routes"] == [{"index": 1, "targets": ["audit"]}]
    both = await (await client.get(f"/admin/api/events/{big}", headers=AUTH)).json()
    assert [r["index"] for r in both["matched_routes"]] == [0, 1]
    assert both["unmatched_routes"] == []

    pending = await (
        await client.get("/admin/api/deliveries", params={"status": "pending"}, headers=AUTH)
    ).json()
    assert sorted(d["event_id"] for d in pending["items"]) == sorted([big, big, small])
    later = await (
        await client.get(
            "/admin/api/deliveries", params={"status": "pending", "since": "60s"}, headers=AUTH
        )
    ).json()
    assert sorted(d["target"] for d in later["items"]) == ["audit", "billing"]
    assert {d["event_id"] for d in later["items"]} == {big}
    just_audit = await (
        await client.get(
            "/admin/api/deliveries", params={"status": "pending", "target": "audit"}, headers=AUTH
        )
    ).json()
    assert [d["event_id"] for d in just_audit["items"]] == [big]


async def test_verification_is_what_let_the_event_in_not_what_the_config_says_now(
    database_url, gateway
):
    text = f"""
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  keyed: {{verify: {{type: api-key, secret: k3y}}}}
  open: {{}}
relay: {{enabled: false}}
"""
    client = await gateway(make_config(database_url, text))
    keyed = await ingest(client, b"{}", source="keyed", **{"X-API-Key": "k3y"})
    opened = await ingest(client, b"{}", source="open")
    swapped = text.replace("keyed: {verify: {type: api-key, secret: k3y}}", "keyed: {}").replace(
        "open: {}", "open: {verify: {type: api-key, secret: other}}"
    )
    client.app[keys.ADMIN_MODEL].use(make_config(database_url, swapped))  # what a reload does

    async def verification(event: str) -> dict:
        detail = await (await client.get(f"/admin/api/events/{event}", headers=AUTH)).json()
        return dict(detail["verification"])

    assert await verification(keyed) == {"scheme": "api-key", "verified": True}
    assert await verification(opened) == {"scheme": None, "verified": False}


async def test_a_targets_breaker_reads_open_then_half_open_as_its_time_passes(
    database_url, gateway, clock
):
    text = config_text("http://127.0.0.1:9/x") + "relay: {enabled: false}\n"
    client = await gateway(make_config(database_url, text))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO hookgate.targets (name, changed_at, failures, breaker_until,"
            " breaker_reason) VALUES ('billing', $1, 5, $2, '5 failures in a row')",
            clock.now(),
            clock.now() + dt.timedelta(seconds=30),
        )
    finally:
        await conn.close()

    async def billing() -> dict:
        return dict(await (await client.get("/admin/api/targets/billing", headers=AUTH)).json())

    state = await billing()
    assert (state["breaker"], state["failures"], state["breaker_reason"]) == (
        "open", 5, "5 failures in a row",
    )  # fmt: skip
    clock.advance(31)
    assert (await billing())["breaker"] == "half-open"  # cooled down: one probe may go
    page = await client.get("/admin/targets", headers=AUTH)
    shown = await page.text()
    assert page.status == 200 and "probing" in shown and "5 failures in a row" in shown
