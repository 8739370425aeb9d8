"""hookgate mounted as a sub-application: the host app's lifecycle runs its resources."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import asyncpg
from aiohttp import web

from gateway import keys

EXAMPLE = Path(__file__).parents[2] / "docs" / "embedding" / "host_app.py"


def example_module():
    spec = importlib.util.spec_from_file_location("host_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_documented_example_mounts_hookgate_and_the_host_runs_its_lifecycle(
    database_url, target, aiohttp_client, tmp_path
):
    billing = await target()
    config = tmp_path / "hookgate.yaml"
    config.write_text(
        f"""
database: {{url: "{database_url}"}}
relay: {{poll_interval: 100ms}}
sources: {{demo: {{event_type: "json:type"}}}}
targets: {{billing: {{url: "{billing.url}"}}}}
routes: [{{source: demo, targets: [billing]}}]
"""
    )
    example = example_module()
    host: web.Application = example.host_app(str(config))
    hooks = host[example.HOOKGATE]
    assert keys.STORE not in hooks  # nothing runs before the host starts
    client = await aiohttp_client(host)
    assert keys.STORE in hooks and keys.RELAY in hooks  # started by the host's startup
    assert await (await client.get("/")).text() == "the host app's own page"
    assert (await client.get("/hooks/readyz")).status == 200
    sent = await client.post("/hooks/in/demo", data=b'{"type": "order.paid"}')
    assert sent.status == 202
    await billing.recorder.wait_for(1)
    ((headers, body),) = billing.recorder.requests
    assert body == b'{"type": "order.paid"}'
    assert headers["X-Hookgate-Event-Id"] == (await sent.json())["id"]
    conn = await asyncpg.connect(database_url)
    try:
        (event,) = await conn.fetch("SELECT path FROM hookgate.events")
    finally:
        await conn.close()
    assert event["path"] == "/hooks/in/demo"  # the raw path as the provider called it
    pool = hooks[keys.STORE].pool
    await client.close()
    assert pool.is_closing()  # the host's cleanup closed hookgate's pool
