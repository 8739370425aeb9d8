"""Time the /metrics queue query (`queue_gauges`) on a large deliveries table.

    HOOKGATE_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/queue_gauges.py [deliveries] [backlog]

Creates a scratch database, migrates it, fills it with `deliveries` rows over 10
targets (all but `backlog` delivered, 1% of those dead), vacuums, then runs the query
20 times and prints the median, next to `SELECT 1` (the round trip) as the baseline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import sys
import time

import asyncpg

from gateway.storage.migrate import migrate
from gateway.storage.queries import QUERIES

FILL = """
INSERT INTO hookgate.events (id, source, received_at, method, path, query, headers, body)
SELECT gen_random_uuid(), 'shop', now(), 'POST', '/in/shop', '', '[]', '\\x'
FROM generate_series(1, $1::int);
INSERT INTO hookgate.deliveries (id, event_id, target, status, due_at, created_at, updated_at)
SELECT gen_random_uuid(), e.id, 't' || (row_number() OVER () % 10),
       CASE WHEN row_number() OVER () <= $1::int THEN 'pending'
            WHEN row_number() OVER () % 100 = 0 THEN 'dead' ELSE 'delivered' END,
       now() - interval '1 minute', now(), now()
FROM hookgate.events AS e;
"""


async def timed(conn: asyncpg.Connection, sql: str, *args: object) -> float:
    runs = []
    for _ in range(20):
        started = time.perf_counter()
        await conn.fetch(sql, *args)
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


async def main(rows: int, backlog: int) -> None:
    server = os.environ["HOOKGATE_BENCH_DATABASE_URL"]
    admin = await asyncpg.connect(server)
    await admin.execute("DROP DATABASE IF EXISTS hookgate_bench_gauges")
    await admin.execute("CREATE DATABASE hookgate_bench_gauges")
    conn = await asyncpg.connect(server.rsplit("/", 1)[0] + "/hookgate_bench_gauges")
    try:
        await migrate(conn)
        await conn.execute(FILL.split(";")[0], rows)
        await conn.execute(FILL.split(";")[1], backlog)
        await conn.execute("VACUUM ANALYZE hookgate.deliveries")
        targets = [f"t{n}" for n in range(10)]
        now = dt.datetime.now(dt.UTC)
        base = await timed(conn, "SELECT 1")
        gauges = await timed(conn, QUERIES["queue_gauges"], now, targets)
        print(f"{rows} deliveries, {backlog} pending: queue_gauges {gauges:.2f} ms "
              f"(SELECT 1: {base:.2f} ms, same run)")  # fmt: skip
    finally:
        await conn.close()
        await admin.execute("DROP DATABASE IF EXISTS hookgate_bench_gauges")
        await admin.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(*(args + [1_000_000, 1_000][len(args) :])))
