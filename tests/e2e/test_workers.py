"""Two real `hookgate worker` processes share one target's rate limit and concurrency."""

from __future__ import annotations

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
    async with (
        hookgate("worker", "--config", str(config)) as first,
        hookgate("worker", "--config", str(config)) as second,
    ):
        await sink.recorder.wait_for(12, timeout=30)
        await stop(first)
        await stop(second)
    # Counted where the limit is applied, not where the sink happens to see requests (a
    # busy machine delays some answers and bunches others): the attempts' start times,
    # written by the two workers. One shared bucket allows the burst plus 5/s over the
    # span they cover; two per-process buckets would allow twice that.
    conn = await asyncpg.connect(database_url)
    try:
        starts = [row[0] for row in await conn.fetch(
            "SELECT started_at FROM hookgate.attempts ORDER BY started_at"
        )]  # fmt: skip
    finally:
        await conn.close()
    span = (starts[-1] - starts[0]).total_seconds()
    assert len(starts) >= 12
    assert len(starts) <= 5 + 5 * span + 1, (len(starts), span)
