"""Bulk replay: how long re-queueing 100,000 dead deliveries takes, and what a draining
replay does to live deliveries to the same target.

What it does, on a fresh database (see pgdb.py), in one process (relay, sink and the
live event generator share the event loop; Postgres runs beside it):

1. **seed**: ``--dead`` dead deliveries (1 KiB events, source ``old``) written with
   COPY, all to target ``sink``.
2. **requeue**: the bulk replay (``filter: {status: dead}``) as the admin API runs it,
   dry run first, then for real: one statement each. Both are timed.
3. **live**: ``--live-rate`` fresh events per second (source ``live``) for
   ``--seconds``, delivered by the relay to an in-process sink; latency is from the
   event's commit to its arrival at the sink. Three phases, same target, same run:
   *baseline* (nothing else queued), *fed* (the bulk replay drains through the replay
   feeder, which lets queued deliveries in only while the target has room), and
   *naive* (the same deliveries simply set pending and due at once, as a hand-written
   UPDATE would: what the feeder avoids).

How to read it: only the ratios against the baseline of the same run mean much on a
shared 2-core machine. Run: ``.venv/bin/python bench/replay.py [--dead 100000]
[--live-rate 100] [--seconds 10] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from aiohttp import web
from pgdb import bench_database

from gateway import keys
from gateway import logging as hg_logging
from gateway.admin.model import AdminModel
from gateway.app import create_app
from gateway.config import parse_config
from gateway.ids import delivery_id, event_id
from gateway.storage.admin import ReplayFilter
from gateway.storage.migrate import migrate
from gateway.storage.store import EventRecord, Store

BODY = b'{"type": "bench", "pad": "' + b"x" * 990 + b'"}'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead", type=int, default=100_000)
    parser.add_argument("--live-rate", type=int, default=100, help="live events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each live phase")
    parser.add_argument("--concurrency", type=int, default=32, help="the sink target's")
    return parser.parse_args()


async def seed(url: str, count: int) -> float:
    """`count` dead deliveries with their events, by COPY; the seconds it took."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        started = time.perf_counter()
        now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        events, deliveries = [], []
        for n in range(count):
            moment = now + dt.timedelta(microseconds=n * 10)
            eid = event_id(moment)
            events.append((eid, "old", "bench", moment, "POST", "/in/old", "", "[]", BODY, None))
            deliveries.append(
                (
                    delivery_id(eid, "sink"),
                    eid,
                    "sink",
                    "dead",
                    8,
                    moment,
                    moment,
                    moment,
                    "HTTP_5XX",
                )
            )
        await conn.copy_records_to_table(
            "events",
            schema_name="hookgate",
            records=events,
            columns=[
                "id",
                "source",
                "event_type",
                "received_at",
                "method",
                "path",
                "query",
                "headers",
                "body",
                "peer",
            ],
        )
        await conn.copy_records_to_table(
            "deliveries",
            schema_name="hookgate",
            records=deliveries,
            columns=[
                "id",
                "event_id",
                "target",
                "status",
                "attempts",
                "due_at",
                "created_at",
                "updated_at",
                "last_outcome",
            ],
        )
        await conn.execute("ANALYZE hookgate.events; ANALYZE hookgate.deliveries")
        return time.perf_counter() - started
    finally:
        await conn.close()


class Sink:
    """Counts arrivals: live ones with their latency, replayed ones by number."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}  # live delivery id -> when its event was committed
        self.latency: list[float] = []
        self.replayed = 0
        self.expected = 0
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("X-Hookgate-Delivery-Id", "")
        if request.headers.get("X-Hookgate-Source") == "live":
            started = self.sent.pop(key, None)
            if started is not None:
                self.latency.append((time.perf_counter() - started) * 1000)
                if self.expected and len(self.latency) >= self.expected:
                    self.done.set()
        else:
            self.replayed += 1
        return web.Response(text="ok")


async def live_phase(store: Store, sink: Sink, rate: int, seconds: float) -> dict[str, float]:
    """Send `rate` live events per second for `seconds`; wait for them as long again."""
    sink.latency.clear()
    sink.expected = 0
    sink.done.clear()
    replayed_before, tick, sent = sink.replayed, 0.05, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = []
        for _ in range(max(1, round(rate * tick))):
            now = dt.datetime.now(dt.UTC)
            eid = event_id(now)
            did = delivery_id(eid, "sink")
            batch.append(
                EventRecord(
                    eid,
                    "live",
                    "bench",
                    now,
                    "POST",
                    "/in/live",
                    "",
                    [],
                    BODY,
                    None,
                    [(did, "sink")],
                )
            )
        await store.insert_events(batch)
        committed = time.perf_counter()
        for record in batch:
            sink.sent[str(record.deliveries[0][0])] = committed
        sent += len(batch)
        await store.notify()
        await asyncio.sleep(tick)
    elapsed = time.perf_counter() - started
    sink.expected = sent
    if len(sink.latency) < sent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.done.wait(), seconds)
    got = sorted(sink.latency)
    return {
        "sent": sent,
        "delivered": len(got),
        "per_s": len(got) / elapsed,
        "p50": statistics.median(got) if got else float("nan"),
        "p99": got[int(len(got) * 0.99) - 1]
        if len(got) >= 100
        else (got[-1] if got else float("nan")),
        "replayed_per_s": (sink.replayed - replayed_before) / (time.perf_counter() - started),
    }


def config_text(url: str, sink_url: str, concurrency: int) -> str:
    return f"""
database: {{url: "{url}", pool_size: 16}}
admin: {{tokens: {{bench: "bench-token-0123456789"}}}}
sources: {{live: {{}}, old: {{}}}}
targets:
  sink: {{url: "{sink_url}", concurrency: {concurrency}, breaker: false}}
routes: [{{source: live, targets: [sink]}}]
relay: {{batch_size: 200}}
"""


async def run(args: argparse.Namespace, url: str) -> None:
    print(f"seeding {args.dead:,} dead deliveries (COPY) ...", flush=True)
    seeded = await seed(url, args.dead)
    sink = Sink()
    sink_app = web.Application()
    sink_app.router.add_post("/hooks", sink.handle)
    sink_runner = web.AppRunner(sink_app, access_log=None)
    await sink_runner.setup()
    site = web.TCPSite(sink_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = parse_config(config_text(url, f"http://127.0.0.1:{port}/hooks", args.concurrency))
    app = create_app(config)  # no listening socket: the relay and the replay feeder run
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        store = app[keys.STORE]
        model = AdminModel(store, config, app[keys.CLOCK])
        dead = ReplayFilter(source="old", status="dead")
        started = time.perf_counter()
        dry = await model.replay_matching(dead, "bench", dry_run=True)
        dry_s = time.perf_counter() - started
        print(
            f"seed {seeded:.1f} s; dry run: {dry.counts.deliveries:,} deliveries in {dry_s:.2f} s",
            flush=True,
        )
        baseline = await live_phase(store, sink, args.live_rate, args.seconds)
        print_phase("baseline (no replay)", baseline)
        started = time.perf_counter()
        real = await model.replay_matching(dead, "bench", dry_run=False)
        app[keys.REPLAY_FEEDER].wake()
        requeue_s = time.perf_counter() - started
        print(
            f"requeue: {real.counts.deliveries:,} deliveries in one statement, {requeue_s:.2f} s "
            f"({real.counts.deliveries / requeue_s:,.0f}/s)",
            flush=True,
        )
        fed = await live_phase(store, sink, args.live_rate, args.seconds)
        print_phase("bulk replay, fed", fed)
        await naive_replay(url)
        naive = await live_phase(store, sink, args.live_rate, args.seconds)
        print_phase("naive replay (all due at once)", naive)
        print_ratios(baseline, fed, naive)
    finally:
        await runner.cleanup()
        await sink_runner.cleanup()


NAIVE = """UPDATE hookgate.deliveries SET status = 'pending', due_at = now()
WHERE status IN ('pending', 'queued')
  AND event_id IN (SELECT id FROM hookgate.events WHERE source = 'old')"""


async def naive_replay(url: str) -> None:
    """What is left of the replay, all pending and due now (no feeder)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(NAIVE)
    finally:
        await conn.close()


def print_phase(name: str, r: dict[str, float]) -> None:
    print(
        f"{name:<34} live: {r['delivered']:>5}/{r['sent']:<5} delivered, {r['per_s']:7.1f}/s, "
        f"p50 {r['p50']:8.1f} ms, p99 {r['p99']:8.1f} ms; replayed {r['replayed_per_s']:7.1f}/s",
        flush=True,
    )


def print_ratios(
    base: dict[str, float], paced: dict[str, float], unpaced: dict[str, float]
) -> None:
    for name, r in (("fed", paced), ("naive", unpaced)):
        print(
            f"{name}: live throughput {r['per_s'] / base['per_s']:.2f}x baseline, "
            f"p50 {r['p50'] / base['p50']:.1f}x, p99 {r['p99'] / base['p99']:.1f}x"
        )


def main() -> int:
    args = parse_args()
    hg_logging.configure("warning", json=False)
    with tempfile.TemporaryDirectory() as tmp, bench_database(Path(tmp)) as db:
        if db.url is None:
            print("bench/replay.py needs a PostgreSQL server (HOOKGATE_BENCH_DATABASE_URL)")
            return 1
        print(f"database: {db.label}")
        asyncio.run(run(args, db.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
