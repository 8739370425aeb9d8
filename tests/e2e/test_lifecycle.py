"""The real `hookgate serve` and `hookgate worker` processes: start, relay, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import asyncpg
from conftest import free_port, hookgate_process, wait_ready


def write_config(path: Path, database_url: str, target_url: str, port: int, relay: bool) -> Path:
    path.write_text(
        f"""
database: {{url: "{database_url}"}}
server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: 1s}}
relay: {{enabled: {str(relay).lower()}, poll_interval: 200ms}}
sources:
  shop: {{event_type: "json:type"}}
targets:
  billing: {{url: "{target_url}", timeout: 20s}}
routes:
  - {{source: shop, targets: [billing]}}
"""
    )
    return path


hookgate = hookgate_process


async def post(port: int, body: bytes) -> tuple[int, dict[str, str]]:
    url = f"http://127.0.0.1:{port}/in/shop"
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as response:
        return response.status, await response.json()


async def stop(process: asyncio.subprocess.Process) -> tuple[int, list[dict[str, object]]]:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    return process.returncode or 0, lines


async def test_serve_relays_a_webhook_and_exits_0_on_sigterm(tmp_path, database_url, target):
    sink, port = await target(), free_port()
    config = write_config(tmp_path / "h.yaml", database_url, sink.url, port, relay=True)
    async with hookgate("serve", "--config", str(config)) as process:
        await wait_ready(port)
        status, answer = await post(port, b'{"type": "order.paid"}')
        assert status == 202
        await sink.recorder.wait_for(1)
        assert sink.recorder.requests[0][0]["X-Hookgate-Event-Id"] == answer["id"]
        code, logs = await stop(process)
    assert code == 0
    received = [line for line in logs if line["event"] == "request_handled" and "event_id" in line]
    assert received[0]["event_id"] == answer["id"]
    assert any(line["event"] == "delivery_succeeded" for line in logs)


async def test_worker_relays_from_the_servers_config_and_releases_unfinished_work_on_sigterm(
    tmp_path, database_url, target
):
    """Scale-out with one config file: `relay: {enabled: false}` is for the servers only."""
    sink, port = await target(), free_port()
    sink.recorder.hold = asyncio.Event()  # the target never answers while the worker runs
    config = write_config(tmp_path / "h.yaml", database_url, sink.url, port, relay=False)
    async with hookgate("serve", "--config", str(config)) as server:
        await wait_ready(port)
        async with hookgate("worker", "--config", str(config)) as worker:
            status, answer = await post(port, b'{"type": "order.paid"}')
            assert status == 202
            await sink.recorder.wait_for(1, timeout=30)
            code, logs = await stop(worker)
        assert code == 0
        assert any(line["event"] == "deliveries_released" for line in logs)
        conn = await asyncpg.connect(database_url)
        try:
            row = await conn.fetchrow(
                "SELECT d.status, a.outcome FROM hookgate.deliveries d "
                "JOIN hookgate.attempts a ON a.delivery_id = d.id WHERE d.event_id = $1::uuid",
                answer["id"],
            )
        finally:
            await conn.close()
        assert (row["status"], row["outcome"]) == ("pending", "RELEASED")
        sink.recorder.hold.set()
        assert (await stop(server))[0] == 0
