"""Route filters at ingest, the recorded routing decision, and a target's middleware chain."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import orjson
from conftest import make_config

from plugins.signers.standard_webhooks import decode_secret, sign

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def config(database_url: str, big: str, audit: str):
    return make_config(
        database_url,
        f"""
sources:
  shop: {{event_type: "json:type"}}
targets:
  big: {{url: "{big}"}}
  audit:
    url: "{audit}"
    middleware:
      - type: transform
        body: '{{"kind": {{{{ event.type | tojson }}}}, "cents": {{{{ event.data.amount }}}}}}'
      - type: headers
        add: {{X-Team: payments}}
    sign: {{type: standard-webhooks, secret: {WHSEC}}}
routes:
  - source: shop
    targets: [big]
    filter:
      event_type: ["order.*"]
      json: {{data.amount: {{$gte: 1000}}, data.currency: {{$in: [usd, eur]}}}}
  - source: shop
    targets: [audit]
""",
    )


async def routes_of(database_url: str, event_id: str) -> dict:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT e.routes, array_agg(d.target ORDER BY d.target) AS targets"
            " FROM hookgate.events e LEFT JOIN hookgate.deliveries d ON d.event_id = e.id"
            " WHERE e.id = $1 GROUP BY e.routes",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()
    return {"routes": orjson.loads(row["routes"]), "targets": [t for t in row["targets"] if t]}


async def test_a_route_filter_decides_at_ingest_and_the_decision_is_recorded(
    database_url, target, gateway
):
    big, audit = await target(), await target()
    client = await gateway(config(database_url, big.url, audit.url))
    small = b'{"type": "order.paid", "data": {"amount": 999, "currency": "usd"}}'
    large = b'{"type": "order.paid", "data": {"amount": 5000, "currency": "eur"}}'
    small_id = (await (await client.post("/in/shop", data=small)).json())["id"]
    large_id = (await (await client.post("/in/shop", data=large)).json())["id"]

    assert await routes_of(database_url, small_id) == {
        "routes": {"matched": [1], "unmatched": [0], "verified_by": None},
        "targets": ["audit"],
    }
    assert await routes_of(database_url, large_id) == {
        "routes": {"matched": [0, 1], "unmatched": [], "verified_by": None},
        "targets": ["audit", "big"],
    }
    await big.recorder.wait_for(1)
    assert big.recorder.requests[0][1] == large


async def test_a_target_chain_transforms_adds_headers_and_signs_what_it_sends(
    database_url, target, gateway, clock
):
    big, audit = await target(), await target()
    client = await gateway(config(database_url, big.url, audit.url))
    body = b'{"type": "order.paid", "data": {"amount": 5000, "currency": "eur"}}'
    assert (await client.post("/in/shop", data=body)).status == 202
    await audit.recorder.wait_for(1)
    headers, sent = audit.recorder.requests[0]
    assert orjson.loads(sent) == {"kind": "order.paid", "cents": 5000}
    assert headers["X-Team"] == "payments"
    lowered = {k.lower(): v for k, v in headers.items()}
    # The signature covers the transformed body (the library's own verify would also check
    # the timestamp against the wall clock, and this test runs on a frozen one).
    key = decode_secret(WHSEC)
    assert lowered["webhook-signature"] == sign(
        key, lowered["webhook-id"], int(lowered["webhook-timestamp"]), sent
    )


async def test_a_routes_middleware_applies_to_the_deliveries_it_made(database_url, target, gateway):
    t = await target()
    client = await gateway(
        make_config(
            database_url,
            f"""
sources:
  shop: {{event_type: "json:type"}}
targets:
  t: {{url: "{t.url}", middleware: [{{type: headers, add: {{X-Target: t}}}}]}}
routes:
  - source: shop
    targets: [t]
    filter: {{event_type: ["order.*"]}}
    middleware: [{{type: headers, add: {{X-Route: orders}}}}]
  - source: shop
    targets: [t]
    middleware: [{{type: headers, add: {{X-Route: everything}}}}]
""",
        )
    )
    for kind in ("order.paid", "refund.created"):
        body = orjson.dumps({"type": kind})
        assert (await client.post("/in/shop", data=body)).status == 202
    await t.recorder.wait_for(2)
    seen = {orjson.loads(body)["type"]: headers for headers, body in t.recorder.requests}
    assert (seen["order.paid"]["X-Route"], seen["order.paid"]["X-Target"]) == ("orders", "t")
    assert (seen["refund.created"]["X-Route"], seen["refund.created"]["X-Target"]) == (
        "everything",
        "t",
    )


async def test_a_target_filter_is_decided_at_ingest_too(database_url, target, gateway):
    big, all_ = await target(), await target()
    client = await gateway(
        make_config(
            database_url,
            f"""
sources:
  shop: {{event_type: "json:type"}}
targets:
  big: {{url: "{big.url}", filter: {{json: {{amount: {{$gte: 100}}}}}}}}
  all: {{url: "{all_.url}"}}
routes:
  - {{source: shop, targets: [big, all]}}
""",
        )
    )
    small = (await (await client.post("/in/shop", data=b'{"type": "t", "amount": 5}')).json())["id"]
    large = (await (await client.post("/in/shop", data=b'{"type": "t", "amount": 500}')).json())[
        "id"
    ]
    assert (await routes_of(database_url, small))["targets"] == ["all"]
    assert (await routes_of(database_url, large))["targets"] == ["all", "big"]


async def test_a_catastrophic_regex_filter_cannot_freeze_the_gateway(database_url, target, gateway):
    # ^(a+)+$ on "aaa...!" doubles its backtracking work with each "a": on a backtracking
    # engine this body would hold the event loop for longer than the universe has existed.
    # RE2 runs it in linear time: the request is answered (no match, so no delivery) and
    # /healthz answers alongside it. The per-test timeout is the bound; nothing is timed.
    sink = await target()
    client = await gateway(
        make_config(
            database_url,
            f"""
sources: {{demo: {{event_type: "json:type"}}}}
targets: {{sink: {{url: "{sink.url}"}}}}
routes:
  - source: demo
    targets: [sink]
    filter: {{json: {{name: {{$regex: "^(a+)+$"}}}}}}
""",
        ),
    )
    body = b'{"type": "t", "name": "' + b"a" * 50_000 + b'!"}'
    answer, health = await asyncio.gather(
        client.post("/in/demo", data=body), client.get("/healthz")
    )
    assert answer.status == 202
    assert health.status == 200
    event_id = (await answer.json())["id"]
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT routes, (SELECT count(*) FROM hookgate.deliveries d WHERE d.event_id = e.id) n "
            "FROM hookgate.events e WHERE id = $1",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()
    assert json.loads(row["routes"]) == {"matched": [], "unmatched": [0], "verified_by": None}
    assert row["n"] == 0
