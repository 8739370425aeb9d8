"""Ingress through the whole app: durability, limits, raw bytes, fan-out."""

from __future__ import annotations

import uuid

import asyncpg
from conftest import database_name, make_config, with_database


def two_targets(a: str, b: str) -> str:
    return f"""
sources:
  shop: {{event_type: "json:type"}}
targets:
  billing: {{url: "{a}"}}
  audit: {{url: "{b}"}}
routes:
  - {{source: shop, targets: [billing, audit]}}
"""


async def test_202_is_sent_only_after_the_event_is_committed(database_url, target, gateway):
    billing, audit = await target(), await target()
    client = await gateway(make_config(database_url, two_targets(billing.url, audit.url)))
    response = await client.post("/in/shop", data=b'{"type": "order.paid"}')
    assert response.status == 202
    event_id = uuid.UUID((await response.json())["id"])
    conn = await asyncpg.connect(database_url)  # a different connection sees the commit
    try:
        row = await conn.fetchrow(
            "SELECT source, event_type FROM hookgate.events WHERE id=$1", event_id
        )
        targets = await conn.fetch(
            "SELECT target FROM hookgate.deliveries WHERE event_id=$1 ORDER BY target", event_id
        )
    finally:
        await conn.close()
    assert (row["source"], row["event_type"]) == ("shop", "order.paid")
    assert [r["target"] for r in targets] == ["audit", "billing"]


async def test_an_event_fans_out_to_both_targets(database_url, target, gateway):
    billing, audit = await target(), await target()
    client = await gateway(make_config(database_url, two_targets(billing.url, audit.url)))
    response = await client.post("/in/shop", data=b'{"type": "order.paid"}')
    event_id = (await response.json())["id"]
    await billing.recorder.wait_for(1)
    await audit.recorder.wait_for(1)
    for recorded in (billing.recorder, audit.recorder):
        headers, body = recorded.requests[0]
        assert body == b'{"type": "order.paid"}'
        assert headers["X-Hookgate-Event-Id"] == event_id
        assert headers["X-Hookgate-Source"] == "shop"
        assert headers["X-Hookgate-Event-Type"] == "order.paid"
    keys = {r.requests[0][0]["Idempotency-Key"] for r in (billing.recorder, audit.recorder)}
    assert len(keys) == 2  # one key per (event, target)


ONE_TARGET = """
sources:
  shop: {event_type: "header:X-Shop-Topic"}
  get-ok: {methods: [GET, POST]}
server: {max_body: 1KiB}
targets:
  billing: {url: "http://127.0.0.1:9/never", forward_headers: ["X-Shop-*"]}
routes:
  - {source: shop, targets: [billing]}
relay: {enabled: false}
"""


async def count_events(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM hookgate.events"))
    finally:
        await conn.close()


async def set_connections(database_url: str, allowed: bool) -> None:
    """Make the test database refuse (or accept) connections and drop the open ones."""
    name = database_name(database_url)
    conn = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
    finally:
        await conn.close()


async def test_database_gone_answers_503_with_retry_after_and_recovers(database_url, gateway):
    client = await gateway(make_config(database_url, ONE_TARGET))
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    await set_connections(database_url, allowed=False)
    try:
        response = await client.post("/in/shop", data=b'{"lost": "no"}')
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        text = await response.text()
        assert "Traceback" not in text and "asyncpg" not in text
        ready = await client.get("/readyz")
        assert ready.status == 503
    finally:
        await set_connections(database_url, allowed=True)
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    assert await count_events(database_url) == 2  # the refused request was not half-stored


async def test_unknown_source_is_404_and_wrong_method_is_405(database_url, gateway):
    client = await gateway(make_config(database_url, ONE_TARGET))
    assert (await client.post("/in/nope", data=b"{}")).status == 404
    assert (await client.get("/in/shop")).status == 405
    assert (await client.get("/in/get-ok")).status == 202
    assert await count_events(database_url) == 1


async def test_declared_oversize_body_is_refused_with_413(database_url, gateway):
    client = await gateway(make_config(database_url, ONE_TARGET))
    response = await client.post("/in/shop", data=b"x" * 1025)
    assert response.status == 413
    assert response.headers.get("Connection") == "close"
    assert await count_events(database_url) == 0


async def test_streamed_oversize_body_is_refused_while_reading(database_url, gateway):
    client = await gateway(make_config(database_url, ONE_TARGET))

    async def chunks():  # no Content-Length: chunked transfer encoding
        for _ in range(64):
            yield b"y" * 512

    response = await client.post("/in/shop", data=chunks())
    assert response.status == 413
    assert await count_events(database_url) == 0


async def test_body_at_the_limit_is_accepted(database_url, gateway):
    client = await gateway(make_config(database_url, ONE_TARGET))
    assert (await client.post("/in/shop", data=b"z" * 1024)).status == 202


async def test_expect_100_continue_is_refused_before_the_body_is_sent(database_url, gateway):
    client = await gateway(make_config(database_url, ONE_TARGET))
    response = await client.post(
        "/in/shop", data=b"x" * 4096, headers={"Expect": "100-continue"}, expect100=True
    )
    assert response.status == 413
    assert response.headers["Server"] == "hookgate"  # answered before the middleware runs


async def test_raw_request_round_trips_byte_for_byte(database_url, gateway):
    from gateway.storage.store import Store

    client = await gateway(make_config(database_url, ONE_TARGET))
    body = b"\xff\xfe\x00binary\r\n\x80 not utf-8, not json"
    response = await client.post(
        "/in/shop?b=%20x&a=1&a=2",
        data=body,
        headers={"Content-Type": "application/octet-stream", "X-Shop-Topic": "orders/create"},
    )
    assert response.status == 202
    event_id = uuid.UUID((await response.json())["id"])
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        event = await Store(pool).event(event_id)
    finally:
        await pool.close()
    assert event is not None
    assert event["body"] == body
    assert event["method"] == "POST"
    assert event["path"] == "/in/shop"
    assert event["query"] == "b=%20x&a=1&a=2"
    assert event["event_type"] == "orders/create"
    assert event["peer"] == "127.0.0.1"
    assert ("X-Shop-Topic", "orders/create") in event["headers"]
    assert ("Content-Type", "application/octet-stream") in event["headers"]
