"""Two real `hookgate worker` processes share one target's rate limit and concurrency."""

from __future__ import annotations

import asyncio

import asyncpg
from conftest import make_config
from relay_events import shop_events
from test_lifecycle import hookgate, stop

from gateway.storage.store import Store


def worker_config(path, database_url: str, url: str, limits: str):
    path.write_text(
        f"""
database: {{url: "{database_url}"}}
relay: {{poll_interval: 100ms}}
sources: {{shop: {{}}}}
targets:
  t: {{url: "{url}", {limits}}}
routes: [{{source: shop, targets: [t]}}]
"""
    )
    return path


async def test_two_worker_processes_share_one_rate_limit(tmp_path, database_url, target, clock):
    sink = await target()
    config = worker_config(
        tmp_path / "w.yaml",
        database_url,
        sink.url,
        "concurrency: 50, rate_limit: {rate: 5/s, burst: 5}",
    )
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await Store(pool).insert_events(
            shop_events(make_config(database_url, config.read_text()), 60)
        )
    finally:
        await pool.close()
    loop = asyncio.get_running_loop()
    async with (
        hookgate("worker", "--config", str(config)) as first,
        hookgate("worker", "--config", str(config)) as second,
    ):
        await sink.recorder.wait_for(1, timeout=30)
        started = loop.time()
        await asyncio.sleep(2)  # a window to count deliveries in, not a timing assertion
        count, elapsed = len(sink.recorder.requests), loop.time() - started
        await stop(first)
        await stop(second)
    # One shared bucket allows the burst plus 5/s; two per-process buckets would allow twice that.
    assert 1 <= count <= 5 + 5 * elapsed + 1, (count, elapsed)
