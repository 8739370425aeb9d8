"""The admin commands against a real running hookgate: events, show, replay, tail, listen, targets."""

from __future__ import annotations

import asyncio
import io

import pytest
from conftest import make_config

from gateway.cli import _parser
from gateway.errors import HookgateError

TOKEN = "cli-token"
CONFIG = f"""
admin: {{tokens: {{dev: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type"}}
  other: {{}}
targets:
  billing: {{url: "URL", retry: {{schedule: [], jitter: 0}}}}
routes:
  - {{source: shop, targets: [billing]}}
"""


async def run(client, *argv: str) -> str:
    args = _parser().parse_args([*argv, "--url", str(client.make_url("")), "--token", TOKEN])
    out = io.StringIO()
    assert await asyncio.wait_for(args.arun(args, out), 20) == 0
    return out.getvalue()


async def started(database_url, target, gateway, status: int = 200):
    billing = await target()
    billing.recorder.script = [(status, {}, b"answer")]
    client = await gateway(make_config(database_url, CONFIG.replace("URL", billing.url)))
    return client, billing


async def until_dead(client, event_id: str) -> None:
    """Until the event's delivery is recorded dead (bounded)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(200):
        detail = await (await client.get(f"/admin/api/events/{event_id}", headers=auth)).json()
        if detail["deliveries"][0]["status"] == "dead":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the delivery never died")


async def ingest(client, body: bytes, source: str = "shop", **headers: str) -> str:
    response = await client.post(f"/in/{source}", data=body, headers=headers)
    return str((await response.json())["id"])


async def test_events_show_and_targets(database_url, target, gateway):
    client, _ = await started(database_url, target, gateway, status=500)
    event_id = await ingest(client, b'{"type": "order.paid"}')
    await until_dead(client, event_id)

    listed = await run(client, "events", "--type", "order.*")
    assert event_id in listed and "order.paid" in listed
    assert event_id not in await run(client, "events", "--source", "other")
    shown = await run(client, "show", event_id)
    assert '{"type": "order.paid"}' in shown and "billing: dead" in shown and "HTTP_5XX" in shown
    targets = await run(client, "targets")
    assert targets.startswith("billing\tactive\tpending 0\tdue 0\tin flight 0\tqueued 0\tdead 1")


async def test_replay_one_and_by_filter_with_a_dry_run(database_url, target, gateway):
    client, billing = await started(database_url, target, gateway, status=500)
    event_id = await ingest(client, b'{"type": "a"}')
    await until_dead(client, event_id)

    dry = await run(
        client, "replay", "--filter", "status=dead", "--filter", "source=shop", "--dry-run"
    )
    assert dry.startswith("would replay 1 deliveries (billing: 1)")
    assert (await run(client, "replay", event_id)).startswith("replayed 1 deliveries (billing: 1)")
    await billing.recorder.wait_for(2)
    keys = {h["Idempotency-Key"] for h, _ in billing.recorder.requests}
    assert len(keys) == 1
    with pytest.raises(HookgateError, match="not both or neither"):
        await run(client, "replay")


async def test_tail_follows_new_events(database_url, target, gateway):
    client, _ = await started(database_url, target, gateway)
    task = asyncio.create_task(run(client, "tail", "--count", "1"))
    event_id = await ingest(client, b'{"type": "live"}')
    out = await task
    assert f"{event_id}  shop  live" in out


async def test_listen_forwards_the_original_request(database_url, target, gateway):
    client, _ = await started(database_url, target, gateway)
    laptop = await target()
    task = asyncio.create_task(
        run(client, "listen", "--forward", laptop.url, "--source", "other", "--count", "1")
    )
    await ingest(client, b'{"ignored": true}')  # another source: not forwarded
    event_id = await ingest(client, b"\x00raw bytes\xff", source="other",
                            **{"X-Signature": "sig=1", "Authorization": "Bearer secret"})  # fmt: skip
    out = await task
    assert out.startswith(f"{event_id}  other  → 200")
    ((headers, body),) = laptop.recorder.requests
    assert body == b"\x00raw bytes\xff"
    assert headers["X-Signature"] == "sig=1" and "Authorization" not in headers


async def test_a_wrong_token_is_a_clear_error(database_url, target, gateway):
    client, _ = await started(database_url, target, gateway)
    args = _parser().parse_args(["events", "--url", str(client.make_url("")), "--token", "nope"])
    with pytest.raises(HookgateError, match="401: invalid token"):
        await args.arun(args, io.StringIO())
