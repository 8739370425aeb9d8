"""Verification, IP rules, rate limits, dedupe and the rejected log, through the app."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from conftest import fetch, make_config

SECRET = "It's a Secret to Everybody"


def signed(body: bytes, delivery: str = "d-1", secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": delivery}


def github_config(database_url: str, target_url: str, source_extra: str = "", top: str = ""):
    return make_config(
        database_url,
        f"""
{top}
sources:
  gh:
    verify: {{type: github, secret: "{SECRET}"}}
    event_type: "header:X-GitHub-Event"
    {source_extra}
targets:
  ci: {{url: "{target_url}"}}
routes:
  - {{source: gh, targets: [ci]}}
""",
    )


async def eventually(database_url: str, query: str, count: int):
    """The rows, once there are `count` of them: the rejected log is written in the background."""
    for _ in range(100):
        rows = await fetch(database_url, query)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} rows after 2 s: {query}")


async def test_a_verified_request_is_stored_and_relayed(database_url, target, gateway):
    ci = await target()
    client = await gateway(github_config(database_url, ci.url))
    response = await client.post("/in/gh", data=b"{}", headers=signed(b"{}"))
    assert response.status == 202
    await ci.recorder.wait_for(1)


async def test_a_forged_request_is_401_recorded_as_rejected_and_never_relayed(
    database_url, target, gateway
):
    ci = await target()
    client = await gateway(github_config(database_url, ci.url))
    response = await client.post("/in/gh", data=b'{"evil": 1}', headers=signed(b"{}"))
    assert response.status == 401
    assert (await response.json())["error"] == "signature does not match"
    malformed = await client.post("/in/gh", data=b"{}", headers={"X-Hub-Signature-256": "sha256=é"})
    assert malformed.status == 401
    assert await fetch(database_url, "SELECT 1 FROM hookgate.events") == []
    query = "SELECT status, reason, body FROM hookgate.rejected ORDER BY id"
    rows = await eventually(database_url, query, count=2)
    assert [(r["status"], r["reason"]) for r in rows] == [(401, "signature does not match")] * 2
    assert rows[0]["body"] == b'{"evil": 1}'
    assert ci.recorder.requests == []


async def test_a_provider_retry_is_a_duplicate_answered_with_the_original_id(
    database_url, target, gateway
):
    ci = await target()
    client = await gateway(github_config(database_url, ci.url))
    first = await client.post("/in/gh", data=b"{}", headers=signed(b"{}", "d-42"))
    again = await client.post("/in/gh", data=b"{}", headers=signed(b"{}", "d-42"))
    assert (first.status, again.status) == (202, 200)
    assert (await again.json()) == {"id": (await first.json())["id"], "duplicate": True}
    await ci.recorder.wait_for(1)
    assert len(await fetch(database_url, "SELECT 1 FROM hookgate.deliveries")) == 1


async def test_concurrent_duplicates_store_one_event(database_url, target, gateway):
    ci = await target()
    client = await gateway(github_config(database_url, ci.url))
    responses = await asyncio.gather(
        *(client.post("/in/gh", data=b"{}", headers=signed(b"{}", "same")) for _ in range(20))
    )
    statuses = sorted(r.status for r in responses)
    ids = {(await r.json())["id"] for r in responses}
    assert statuses == [200] * 19 + [202]
    assert len(ids) == 1
    assert len(await fetch(database_url, "SELECT 1 FROM hookgate.events")) == 1


async def test_a_key_is_accepted_again_after_its_window(database_url, target, gateway, clock):
    ci = await target()
    config = github_config(
        database_url, ci.url, 'dedupe: {key: "header:X-GitHub-Delivery", window: 1h}'
    )
    client = await gateway(config)
    assert (await client.post("/in/gh", data=b"{}", headers=signed(b"{}", "k"))).status == 202
    clock.advance(3599)
    assert (await client.post("/in/gh", data=b"{}", headers=signed(b"{}", "k"))).status == 200
    clock.advance(2)
    assert (await client.post("/in/gh", data=b"{}", headers=signed(b"{}", "k"))).status == 202


async def test_dedupe_can_be_turned_off(database_url, target, gateway):
    ci = await target()
    client = await gateway(github_config(database_url, ci.url, "dedupe: false"))
    for _ in range(2):
        assert (await client.post("/in/gh", data=b"{}", headers=signed(b"{}", "k"))).status == 202


async def test_rate_limit_answers_429_with_retry_after_then_refills(
    database_url, target, gateway, clock
):
    ci = await target()
    config = github_config(
        database_url, ci.url, "rate_limit: {rate: 2/s, burst: 2}\n    dedupe: false"
    )
    client = await gateway(config)
    codes = [
        (await client.post("/in/gh", data=b"{}", headers=signed(b"{}"))).status for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    limited = await client.post("/in/gh", data=b"{}", headers=signed(b"{}"))
    assert limited.headers["Retry-After"] == "1"
    clock.advance(0.5)
    assert (await client.post("/in/gh", data=b"{}", headers=signed(b"{}"))).status == 202


async def test_per_caller_rate_limit_keeps_callers_apart(database_url, target, gateway):
    ci = await target()
    config = github_config(
        database_url,
        ci.url,
        "rate_limit: {per_peer: 1/m}\n    dedupe: false",
        top="server: {trusted_proxies: [127.0.0.1/32]}",
    )
    client = await gateway(config)

    async def post(caller: str) -> int:
        headers = {**signed(b"{}"), "X-Forwarded-For": caller}
        return (await client.post("/in/gh", data=b"{}", headers=headers)).status

    assert [await post("198.51.100.1"), await post("198.51.100.1"), await post("198.51.100.2")] == [
        202,
        429,
        202,
    ]


async def test_ip_allowlist_trusts_forwarded_for_only_from_trusted_proxies(
    database_url, target, gateway
):
    ci = await target()
    allow = "ip_allowlist: [10.0.0.0/8]"
    direct = await gateway(github_config(database_url, ci.url, allow))
    spoofed = {**signed(b"{}"), "X-Forwarded-For": "10.1.2.3"}
    assert (await direct.post("/in/gh", data=b"{}", headers=spoofed)).status == 403

    proxied = await gateway(
        github_config(
            database_url,
            ci.url,
            allow + "\n    dedupe: false",
            top="server: {trusted_proxies: [127.0.0.0/8]}",
        )
    )
    assert (await proxied.post("/in/gh", data=b"{}", headers=spoofed)).status == 202
    forged_left_hop = {**signed(b"{}"), "X-Forwarded-For": "10.1.2.3, 203.0.113.9"}
    assert (await proxied.post("/in/gh", data=b"{}", headers=forged_left_hop)).status == 403


async def test_the_rejected_log_is_capped_per_source_per_minute(database_url, target, gateway):
    ci = await target()
    client = await gateway(github_config(database_url, ci.url, top="rejected: {max_per_minute: 3}"))
    for _ in range(6):
        assert (
            await client.post("/in/gh", data=b"{}", headers={"X-Hub-Signature-256": "x"})
        ).status == 401
    assert len(await eventually(database_url, "SELECT 1 FROM hookgate.rejected", count=3)) == 3
    await client.close()  # stopping the app writes everything queued
    assert len(await fetch(database_url, "SELECT 1 FROM hookgate.rejected")) == 3


async def test_hookgate_send_signs_like_the_provider_and_is_accepted(database_url, target, gateway):
    import sys

    ci = await target()
    client = await gateway(github_config(database_url, ci.url))
    url = str(client.make_url("/in/gh"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "send", "github", url, "--secret", SECRET,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    assert out.startswith(b"202 ")
    await ci.recorder.wait_for(1)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "send", "github", url, "--secret", "wrong",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert out.startswith(b"401 ")


async def test_a_header_that_is_not_utf8_is_a_401_not_a_500(database_url, target, gateway):
    ci = await target()
    client = await gateway(github_config(database_url, ci.url))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /in/gh HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"X-Hub-Signature-256: sha256=\xff\xfe\r\nConnection: close\r\n\r\n{}"
    )
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"401"


async def test_a_flood_of_forgeries_is_one_request_rejected_line(database_url, target, gateway):
    from structlog.testing import capture_logs

    ci = await target()
    client = await gateway(github_config(database_url, ci.url))
    with capture_logs() as logs:
        for _ in range(30):
            response = await client.post("/in/gh", data=b"{}", headers=signed(b"[]"))
            assert response.status == 401
    rejected = [e for e in logs if e["event"] == "request_rejected"]
    assert [(e["source"], e["status"], e["reason"], e["count"]) for e in rejected] == [
        ("gh", 401, "signature does not match", 1)
    ]
    assert len([e for e in logs if e["event"] == "request_handled"]) == 30
