"""What failure alerts cost the relay's result writes, against the plain write, in one run.

    HOOKGATE_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/alerts.py [batches] [batch size]

Creates a scratch database, writes `batch size` events for one target, then times
(median of `batches`, the three kinds interleaved) one batch of failed results (HTTP 500,
a retry scheduled; the breaker's threshold out of reach) written three ways:

1. **plain**: `Store.finish_many`, what a relay without `alerts:` (or a healthy batch) runs;
2. **alerts, nothing to say**: `Alerting.finish` (a transaction; the breaker did not open);
3. **alerts, one dead**: the same batch with one result dead, so an alert is asked for
   and, after the first, suppressed by `min_interval` (the claim on `alert_state`).

Healthy batches never take the alert path (`Alerting.may_alert` is a check in Python).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import sys
import time
from dataclasses import replace

import asyncpg

from gateway.alerting import Alerting
from gateway.config import parse_config
from gateway.ids import delivery_id, event_id
from gateway.metrics import Metrics
from gateway.storage.limits import Health
from gateway.storage.migrate import migrate
from gateway.storage.store import AttemptResult, EventRecord, Store

NAME = "hookgate_bench_alerts"
HELD = "UPDATE hookgate.deliveries SET status = 'in_flight', attempts = 1"
CONFIG = """
targets: {t: {url: "http://127.0.0.1:9/t"}}
alerts: {targets: {ops: {url: "http://127.0.0.1:9/ops"}}}
"""


def events(now: dt.datetime, n: int) -> list[EventRecord]:
    made = []
    for _ in range(n):
        new = event_id(now)
        made.append(EventRecord(new, "shop", None, now, "POST", "/in/shop", "", [], b"{}",
                                None, [(delivery_id(new, "t"), "t")]))  # fmt: skip
    return made


def results(records: list[EventRecord], now: dt.datetime, dead: bool) -> list[AttemptResult]:
    retry = now + dt.timedelta(seconds=5)
    made = [
        AttemptResult(delivery_id=r.deliveries[0][0], attempt=1, duration_ms=5.0,
                      outcome="HTTP_5XX", status_code=500, response_headers=[],
                      response_body=b"down", error=None, next_status="pending", next_due=retry,
                      target="t", event_id=r.id)
        for r in records
    ]  # fmt: skip
    if dead:
        made[0] = replace(made[0], next_status="dead")
    return made


async def main(batches: int, size: int) -> None:
    server = os.environ["HOOKGATE_BENCH_DATABASE_URL"]
    admin = await asyncpg.connect(server)
    await admin.execute(f"DROP DATABASE IF EXISTS {NAME}")
    await admin.execute(f"CREATE DATABASE {NAME}")
    url = server.rsplit("/", 1)[0] + f"/{NAME}"
    pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await conn.execute(
                "INSERT INTO hookgate.targets (name, changed_at) VALUES ('t', now())"
            )
        store, now = Store(pool), dt.datetime.now(dt.UTC)
        config = parse_config(CONFIG, env={})
        alerting = Alerting(config.alerts, config.server, store, Metrics())
        records = events(now, size)
        await store.insert_events(records)
        health = [Health("t", False, size, 10**6, 30.0, "HTTP_5XX", attempts=size,
                         failed_total=size)]  # fmt: skip
        runs: dict[str, list[float]] = {"plain": [], "alerts, nothing to say": [],
                                        "alerts, one dead": []}  # fmt: skip
        for _ in range(batches):
            for label, times in runs.items():
                batch = results(records, now, dead=label.endswith("dead"))
                await pool.execute(HELD)  # untimed: as if claimed, so each result is kept
                started = time.perf_counter()
                if label == "plain":
                    await store.finish_many(batch, now, health)
                else:
                    await alerting.finish(batch, now, health, lambda done: [])
                times.append((time.perf_counter() - started) * 1000)
        sent = alerting.metrics.registry.get_sample_value(
            "hookgate_alerts_total", {"kind": "delivery.dead", "result": "sent"}
        )
        print(f"alerts sent: {sent:.0f}, then suppressed by min_interval")
        plain = statistics.median(runs["plain"])
        for label, times in runs.items():
            median = statistics.median(times)
            print(f"{label:24} {median:7.2f} ms per batch of {size}  ({median / plain:.2f}x plain)")
    finally:
        await pool.close()
        await admin.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(*(args + [200, 50][len(args) :])))
