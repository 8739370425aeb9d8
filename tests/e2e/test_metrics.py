"""`/metrics`: a scrape finds the counts of what a test sent, and the queue from the database."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from conftest import make_config
from prometheus_client.parser import text_string_to_metric_families

from gateway import keys
from gateway.metrics import Metrics, reason_class

TOKEN = {"Authorization": "Bearer scrape-me"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(database_url: str, ok_url: str, bad_url: str, relay: bool = True):
    return make_config(
        database_url,
        f"""
admin: {{token: scrape-me}}
relay: {{enabled: {str(relay).lower()}}}
sources:
  shop: {{dedupe: {{key: "header:X-Id", window: 1h}}}}
  crm: {{verify: {{type: api-key, header: X-Key, secret: s3}}}}
targets:
  ok: {{url: "{ok_url}"}}
  bad: {{url: "{bad_url}"}}
routes:
  - {{source: shop, targets: [ok]}}
  - {{source: crm, targets: [bad]}}
""",
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers=TOKEN)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(await response.text())


async def test_a_scrape_counts_what_was_sent_and_relayed(database_url, gateway, target):
    ok, bad = await target(), await target()
    bad.recorder.script = [(400, {}, b"no")]  # permanent: the delivery goes dead at once
    client = await gateway(config(database_url, ok.url, bad.url))
    for n in range(3):
        assert (await client.post("/in/shop", data=b"{}", headers={"X-Id": str(n)})).status == 202
    assert (await client.post("/in/shop", data=b"{}", headers={"X-Id": "0"})).status == 200
    assert (await client.post("/in/crm", data=b"{}", headers={"X-Key": "s3"})).status == 202
    assert (await client.post("/in/crm", data=b"{}", headers={"X-Key": "no"})).status == 401
    assert (await client.post("/in/crm", data=b"{}")).status == 401
    assert (await client.post("/in/nope", data=b"{}")).status == 404
    await ok.recorder.wait_for(3)
    await bad.recorder.wait_for(1)
    found = await _settled(client, "bad")
    requests = "hookgate_ingest_requests_total"
    assert found[requests, (("result", "202"), ("source", "shop"))] == 3
    assert found[requests, (("result", "duplicate"), ("source", "shop"))] == 1
    assert found[requests, (("result", "202"), ("source", "crm"))] == 1
    assert found[requests, (("result", "401"), ("source", "crm"))] == 2
    assert found[requests, (("result", "404"), ("source", "_unknown"))] == 1
    failures = "hookgate_ingest_verification_failures_total"
    assert found[failures, (("reason", "mismatch"), ("source", "crm"))] == 1
    assert found[failures, (("reason", "missing"), ("source", "crm"))] == 1
    assert found["hookgate_ingest_duration_seconds_count", (("source", "shop"),)] == 4
    assert found["hookgate_ingest_commit_batch_rows_sum", ()] == 5  # 4 stored + 1 duplicate
    attempts = "hookgate_relay_attempts_total"
    assert found[attempts, (("outcome", "HTTP_2XX"), ("target", "ok"))] == 3
    assert found[attempts, (("outcome", "HTTP_4XX_PERMANENT"), ("target", "bad"))] == 1
    assert found["hookgate_relay_end_to_end_seconds_count", (("target", "ok"),)] == 3
    assert found["hookgate_relay_dead_total", (("target", "bad"),)] == 1
    queue = "hookgate_queue_deliveries"
    assert found[queue, (("state", "dead"), ("target", "bad"))] == 1
    assert found[queue, (("state", "pending"), ("target", "ok"))] == 0


async def _settled(client, target: str, tries: int = 100):
    """The dead letter is recorded just after the target answered: scrape until it shows."""
    for _ in range(tries):
        found = await scrape(client)
        if found.get(("hookgate_queue_deliveries", (("state", "dead"), ("target", target)))) == 1:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the dead letter never showed in /metrics")


async def test_the_queue_gauges_come_from_the_database(database_url, gateway, target, clock):
    ok = await target()
    client = await gateway(config(database_url, ok.url, ok.url, relay=False))
    for n in range(2):
        assert (await client.post("/in/shop", data=b"{}", headers={"X-Id": str(n)})).status == 202
    clock.advance(30)
    found = await scrape(client)
    assert found["hookgate_queue_deliveries", (("state", "pending"), ("target", "ok"))] == 2
    assert found["hookgate_queue_deliveries", (("state", "due"), ("target", "ok"))] == 2
    assert found["hookgate_queue_oldest_due_age_seconds", (("target", "ok"),)] == 30
    assert found["hookgate_target_paused", (("target", "bad"),)] == 0
    assert client.app[keys.METRICS].registry is not Metrics().registry  # one per app


async def test_metrics_need_the_admin_token(database_url, gateway, target):
    ok = await target()
    client = await gateway(config(database_url, ok.url, ok.url))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    open_config = make_config(database_url, "sources: {shop: {}}")
    other = await gateway(open_config)
    response = await other.get("/metrics")
    assert (response.status, await response.json()) == (
        403,
        {"error": "set admin.token to scrape /metrics"},
    )


async def test_metrics_take_any_of_the_named_admin_tokens(database_url, gateway):
    admin = 'admin: {tokens: {ops: "ops-token-0123", grafana: "scrape-token-0123"}}\n'
    client = await gateway(make_config(database_url, admin + "sources: {shop: {}}"))
    for token in ("ops-token-0123", "scrape-token-0123"):
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200 and "hookgate_" in await response.text()
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer ops-token"})
    assert wrong.status == 401


def test_verification_reasons_are_classed():
    assert reason_class("missing X-Key header") == "missing"
    assert reason_class("API key does not match") == "mismatch"
    assert reason_class("timestamp too old") == "timestamp"
    assert reason_class("something else") == "other"


async def test_with_an_admin_listener_metrics_are_there_without_a_token_and_not_public(
    database_url, gateway, target
):
    ok = await target()
    port = free_port()
    text = f"""
admin: {{token: scrape-me, port: {port}}}
sources: {{shop: {{}}}}
targets: {{ok: {{url: "{ok.url}"}}}}
routes: [{{source: shop, targets: [ok]}}]
"""
    client = await gateway(make_config(database_url, text))
    for _ in range(2):
        assert (await client.post("/in/shop", data=b"{}")).status == 202
    await ok.recorder.wait_for(2)
    for headers in ({}, TOKEN):  # the public listener has no /metrics at all
        assert (await client.get("/metrics", headers=headers)).status == 404
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/in/shop", data=b"{}") as response:
            assert response.status == 404  # not a source here
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            found = samples(await response.text())
    assert found["hookgate_ingest_requests_total", (("result", "202"), ("source", "shop"))] == 2
    assert found["hookgate_queue_deliveries", (("state", "dead"), ("target", "ok"))] == 0
    # The admin listener's own requests are not ingest: none was counted as one.
    assert (
        "hookgate_ingest_requests_total",
        (("result", "404"), ("source", "_unknown")),
    ) not in found
