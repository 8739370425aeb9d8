"""Does hookgate slow down as history piles up, and what does purging a day cost?

In one run, on one server (see ``pgdb.py``), with two databases: the benchmark's, which
gets the history, and a second one, freshly migrated, that stays empty:

1. **bare**: ``bench/bare.py`` under the load of ``bench/ingest.py`` (the baseline).
2. **history**: ``--history`` events (each with a delivered delivery and its attempt)
   over the ``--history-days`` days before today, one day partition each, written with
   ``generate_series`` into the detached partitions and attached again (`build_days`),
   then ``VACUUM ANALYZE``.
3. **rounds**: ``--rounds`` times, empty then history, history then empty, ...:
   ``hookgate serve`` (relay off) under the same load (ingest req/s), then the relay's
   **drain rate**: ``--drain`` pending deliveries written straight into the database
   for a sink target, and one ``hookgate worker`` started to send them to
   ``bench/sink.py``: deliveries/s from the first to the last one the sink received
   (the worker's start-up not counted). Each phase starts after a ``CHECKPOINT``; the
   medians of each kind are compared.
4. **purge**: a day of ``--purge-day`` events 40 days ago (a few still pending, a few
   dead), vacuumed and checkpointed as such a day is when retention reaches it, then
   retired by ``hookgate.retire_day`` and ``hookgate.drop_retired`` as the retention
   pass does; database time is their statements and commits, timed here over loopback.
   As a baseline from the same run, ``--row-baseline`` events of another day deleted
   row by row by the pass's batch query, per event.

Ratios from the same run are the figures to quote; the machine is small and shared.
Run: ``.venv/bin/python bench/growth.py [--history 5000000] [--purge-day 1000000]
[--rounds 2] [--duration 10] [--drain 20000]``: 5-7 minutes here with the defaults
(history written at 30-60k events a second). The databases it created are dropped at
the end, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import yaml
from generators import Load, choose, describe, run_load
from ingest import Bench, check_report, hookgate, measure_bare, progress
from pgdb import Database, bench_database
from procs import bench_main, free_port, get_json, running

from gateway.ids import first_id_at
from gateway.storage.migrate import migrate
from gateway.storage.queries import QUERIES

BENCH = Path(__file__).resolve().parent

CHUNK = 250_000  # rows per history statement

# An event id of time `t` (a UUIDv7, as gateway/ids.py makes them), and a delivery id
# made from it as the gateway's are: the event's first 64 bits (its time), then others.
EVENT_ID = """(lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(n::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid"""
DELIVERY_ID = """encode(overlay(uuid_send({0}) PLACING
                  substring(uuid_send(gen_random_uuid()) FROM 9 FOR 8) FROM 9), 'hex')::uuid"""
EVENT_ROWS = f"""
    SELECT {EVENT_ID},
           'bench', 'history', t, 'POST', '/in/bench', '',
           '[["Content-Type", "application/json"]]',
           convert_to('{{"type": "history", "n": ' || n || ', "pad": "' || repeat('x', $5)
                      || '"}}', 'UTF8'),
           '127.0.0.1', '{{"matched": [0], "unmatched": []}}'
    FROM generate_series($1::bigint, $2::bigint) AS n,
         LATERAL (SELECT $3::timestamptz + (n - $1) * $4::interval AS t) AS s
"""
EVENT_COLUMNS = (
    "id, source, event_type, received_at, method, path, query, headers, body, peer, routes"
)
# Into the partitioned tables, with every index kept up to date (a backlog of today's).
EVENTS = f"""
WITH e AS (
    INSERT INTO hookgate.events ({EVENT_COLUMNS})
    {EVENT_ROWS}
    RETURNING id, received_at
), d AS (
    INSERT INTO hookgate.deliveries (id, event_id, target, status, attempts, due_at,
                                     created_at, updated_at, last_outcome)
    SELECT {DELIVERY_ID.format("id")}, id, $6, $7, 1, received_at, received_at, received_at,
           'HTTP_2XX'
    FROM e
    RETURNING id, event_id, due_at
)
INSERT INTO hookgate.attempts (delivery_id, event_id, attempt, worker, started_at,
                               duration_ms, outcome, status_code)
SELECT id, event_id, 1, 'history', due_at, 3.0, 'HTTP_2XX', 200 FROM d
"""
# A past day's: into its detached partitions (:events, :deliveries, :attempts), which have
# no index yet (attaching builds them, sorted, once).
DAY_EVENTS = f"INSERT INTO hookgate.:events ({EVENT_COLUMNS}) {EVENT_ROWS}"
DAY_DELIVERIES = f"""
INSERT INTO hookgate.:deliveries (id, event_id, target, status, attempts, due_at, created_at,
                           updated_at, last_outcome)
SELECT {DELIVERY_ID.format("id")}, id, 'history', 'delivered', 1, received_at, received_at,
       received_at, 'HTTP_2XX'
FROM hookgate.:events ORDER BY id
"""
DAY_ATTEMPTS = """
INSERT INTO hookgate.:attempts (delivery_id, event_id, attempt, worker, started_at, duration_ms,
                         outcome, status_code)
SELECT id, event_id, 1, 'history', due_at, 3.0, 'HTTP_2XX', 200
FROM hookgate.:deliveries ORDER BY seq
"""
# A detached partition's indexes and the constraints they back, to drop before loading.
PARTITION_INDEXES = """
SELECT i.indexrelid::regclass::text AS index, c.conname AS constraint_name
FROM pg_index AS i
LEFT JOIN pg_constraint AS c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = $1::regclass
"""
TABLES = ("events", "deliveries", "attempts")

REOPEN = """
UPDATE hookgate.deliveries SET status = $2
WHERE event_id IN (SELECT id FROM hookgate.events WHERE received_at >= $1 ORDER BY id LIMIT $3)
  AND status = 'delivered'
"""


@dataclass
class Phase:
    name: str
    ingest: dict[str, Any] = field(default_factory=dict)
    drain_rate: float = 0.0
    drained: int = 0
    load: float = 0.0  # the machine's load average after it


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=5_000_000, help="historical events")
    parser.add_argument("--history-days", type=int, default=10)
    parser.add_argument("--history-body", type=int, default=256, help="padding bytes each")
    parser.add_argument("--purge-day", type=int, default=1_000_000, help="0 skips the purge")
    parser.add_argument("--row-baseline", type=int, default=50_000)
    parser.add_argument("--drain", type=int, default=20_000, help="backlog for the drain rate")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--body-size", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=32, help="the sink's concurrency")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--purge-only", action="store_true", help="skip the load phases")
    parser.add_argument(
        "--rounds", type=int, default=2, help="of empty and history, alternated (ABBA...)"
    )
    parser.add_argument(
        "--log-level", choices=["info", "warning"], default="info", help="hookgate serve's"
    )
    args = parser.parse_args()
    args.e2e_concurrency = args.concurrency  # what ingest.hookgate() reads
    return args


# -- building data --------------------------------------------------------------------


async def build(
    url: str,
    count: int,
    start: dt.datetime,
    span: dt.timedelta,
    pad: int,
    target: str = "history",
    status: str = "delivered",
) -> float:
    """`count` events evenly over `span` from `start`, each delivered once; seconds taken."""
    conn = await asyncpg.connect(url)
    began = time.monotonic()
    try:
        first_day, last_day = start.date(), (start + span).date()
        await conn.execute("SELECT hookgate.ensure_partitions($1, $2)", first_day, last_day)
        step = span / max(count, 1)
        for low in range(1, count + 1, CHUNK):
            high = min(low + CHUNK - 1, count)
            at = start + step * (low - 1)
            await conn.execute(EVENTS, low, high, at, step, pad, target, status)
            progress(f"  {high:,} / {count:,} events ({time.monotonic() - began:.0f} s)")
    finally:
        await conn.close()
    return time.monotonic() - began


async def build_days(
    url: str, days: list[dt.date], per_day: int, pad: int, label: str = "history"
) -> float:
    """`per_day` delivered events (each with its delivery and attempt) on each of `days`
    (past days, nothing else writing to them), evenly over the day; seconds taken.

    Each day's partitions are made by the gateway's own `ensure_partitions`, detached,
    stripped of their indexes, filled with `generate_series`, and attached again, which
    builds every index the gateway defines in one sorted pass per index. The rows, the
    indexes and the WAL are those of a logged table: nothing that is measured later
    differs from a day written by ingest, except that it was written faster.
    """
    conn = await asyncpg.connect(url)
    began, written = time.monotonic(), 0
    step = dt.timedelta(seconds=86_399) / max(per_day, 1)
    try:
        for day in days:
            await conn.execute("SELECT hookgate.ensure_partitions($1, $1)", day)
            names = [f"{table}_p{day:%Y%m%d}" for table in TABLES]
            for table, name in zip(TABLES, names, strict=True):
                await conn.execute(f"ALTER TABLE hookgate.{table} DETACH PARTITION hookgate.{name}")
                for row in await conn.fetch(PARTITION_INDEXES, f"hookgate.{name}"):
                    if constraint := row["constraint_name"]:
                        await conn.execute(
                            f'ALTER TABLE hookgate.{name} DROP CONSTRAINT "{constraint}"'
                        )
                    else:
                        await conn.execute(f"DROP INDEX {row['index']}")
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            for low in range(1, per_day + 1, CHUNK):
                high = min(low + CHUNK - 1, per_day)
                at = start + step * (low - 1)
                await conn.execute(_day(DAY_EVENTS, day), low, high, at, step, pad)
            await conn.execute(_day(DAY_DELIVERIES, day))
            await conn.execute(_day(DAY_ATTEMPTS, day))
            bounds = await conn.fetchrow(
                "SELECT hookgate.day_first_id($1) AS low, hookgate.day_first_id($1 + 1) AS high",
                day,
            )
            for table, name in zip(TABLES, names, strict=True):
                await conn.execute(
                    f"ALTER TABLE hookgate.{table} ATTACH PARTITION hookgate.{name} "
                    f"FOR VALUES FROM ('{bounds['low']}') TO ('{bounds['high']}')"
                )
            written += per_day
            progress(
                f"  {label}: {written:,} / {per_day * len(days):,} events "
                f"({time.monotonic() - began:.0f} s)"
            )
    finally:
        await conn.close()
    return time.monotonic() - began


def _day(statement: str, day: dt.date) -> str:
    """`statement` on `day`'s partitions."""
    for table in TABLES:
        statement = statement.replace(f":{table}", f"{table}_p{day:%Y%m%d}")
    return statement


async def vacuum(url: str) -> None:
    """What autovacuum does to a past day (its hint bits, visibility map, statistics)."""
    conn = await asyncpg.connect(url)
    try:
        for table in TABLES:
            await conn.execute(f"VACUUM ANALYZE hookgate.{table}")
    finally:
        await conn.close()


async def checkpoint(url: str) -> None:
    """Nothing left dirty from building: each measurement starts from the same state."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


# -- measuring ------------------------------------------------------------------------


def measure_ingest(bench: Bench, phase: Phase) -> None:
    asyncio.run(checkpoint(bench.db.url or ""))
    with hookgate(bench, f"ingest-{phase.name}", False, "parked", "http://127.0.0.1:9/") as base:
        progress(f"ingest ({phase.name}): {bench.load.warmup:g} s + {bench.load.duration:g} s")
        phase.ingest = run_load(bench.generator, f"{base}/in/bench", bench.load, bench.tmp)
    check_report(bench, f"ingest ({phase.name})", phase.ingest)


def measure_drain(bench: Bench, phase: Phase) -> None:
    """Write a backlog for a sink target, then time one worker draining it."""
    target = f"sink_{phase.name}"
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    asyncio.run(
        build(
            bench.db.url or "",
            bench.args.drain,
            now,
            dt.timedelta(minutes=1),
            bench.args.body_size,
            target,
            "pending",
        )
    )
    asyncio.run(checkpoint(bench.db.url or ""))
    port = free_port()
    with running(
        "sink",
        [sys.executable, str(BENCH / "sink.py"), "--port", str(port)],
        bench.tmp / f"sink-{phase.name}.log",
    ) as sink:
        stats = f"http://127.0.0.1:{port}/stats"
        sink.wait_ready(stats, 30)
        config = worker_config(bench, target, f"http://127.0.0.1:{port}/hooks")
        log = bench.tmp / f"worker-{phase.name}.log"
        with running("worker", worker_command(config), log) as worker:
            seen = wait_for(stats, bench.args.drain, worker)
        final = get_json(stats)[1]
    phase.drained = seen
    if final["last_at"] and final["last_at"] > final["first_at"]:  # start-up not counted
        phase.drain_rate = (seen - 1) / (final["last_at"] - final["first_at"])


def worker_config(bench: Bench, target: str, url: str) -> Path:
    database: dict[str, Any] = {"data_dir": str(bench.db.data_dir), "url": bench.db.url}
    settings = {
        "database": database,
        "sources": {"bench": {}},
        "targets": {target: {"url": url, "concurrency": bench.args.concurrency}},
        "routes": [{"source": "bench", "targets": [target]}],
    }
    path = bench.tmp / f"{target}.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def worker_command(config: Path) -> list[str]:
    script = Path(sys.executable).with_name("hookgate")
    return [str(script), "--log-level", "warning", "worker", "--config", str(config)]


def wait_for(stats: str, count: int, worker: Any, stall: float = 20.0) -> int:
    seen, moved = -1, time.monotonic()
    while time.monotonic() - moved < stall and worker.alive():
        unique = get_json(stats)[1]["unique"]
        if unique >= count:
            return int(unique)
        if unique != seen:
            seen, moved = unique, time.monotonic()
        time.sleep(0.05)
    return max(seen, 0)


async def measure_purge(url: str, args: argparse.Namespace) -> dict[str, float]:
    """Drop a day of `--purge-day` events; delete `--row-baseline` row by row.

    Both days are 40 days old, so they are in the state such a day is in when retention
    reaches it: vacuumed (autovacuum visits a table after every 20% of new rows, so long
    before then) and on disk (checkpointed). Right after writing it, a day has neither:
    counting it would read every page of its events and set their hint bits, and
    dropping it would wait for the kernel to write back or discard its dirty pages.
    """
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day, baseline_day = today - dt.timedelta(days=40), today - dt.timedelta(days=41)
    built = await build_days(url, [day.date()], args.purge_day, args.history_body, "purge day")
    await build_days(url, [baseline_day.date()], args.row_baseline, args.history_body, "baseline")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(REOPEN, day, "pending", 50)
        await conn.execute(REOPEN, day + dt.timedelta(hours=1), "dead", 50)
        for table in TABLES:
            for aged in (day, baseline_day):
                await conn.execute(f"VACUUM ANALYZE hookgate.{table}_p{aged:%Y%m%d}")
        await conn.execute("CHECKPOINT")
        began = time.monotonic()
        async with conn.transaction():  # the statement, then its commit, timed apart
            row = await conn.fetchrow(
                "SELECT * FROM hookgate.retire_day($1, '{}', '{}', $2)",
                day.date(),
                today - dt.timedelta(days=90),
            )
            statement = time.monotonic() - began  # the count, then the locked part
        locked = time.monotonic() - began  # ingest and claims waited at most this long
        await conn.fetchval("SELECT hookgate.drop_retired()")  # the files go, nothing locked
        dropped = time.monotonic() - began
        rows_seconds = await delete_rows(conn, baseline_day, baseline_day + dt.timedelta(days=1))
    finally:
        await conn.close()
    return {
        "built_s": built,
        "drop_s": dropped,
        "statement_s": statement,
        "locked_s": locked,
        "dropped": row["dropped"],
        "kept": row["kept"],
        "row_s": rows_seconds,
    }


async def delete_rows(conn: asyncpg.Connection, start: dt.datetime, end: dt.datetime) -> float:
    """The retention pass's row-by-row query over one day's events; seconds."""
    after, began = first_id_at(start), time.monotonic()
    while True:
        row = await conn.fetchrow(
            QUERIES["purge_events_batch"],
            [],
            [],
            [],
            end,
            end,
            after,
            first_id_at(end),
            1000,
            False,
        )
        if row["scanned"] < 1000:
            return time.monotonic() - began
        after = row["last"]


# -- the report -----------------------------------------------------------------------


def print_report(
    bench: Bench,
    bare: dict[str, Any],
    phases: list[Phase],
    built: float,
    purge: dict[str, float] | None,
) -> None:
    args = bench.args
    if phases:
        print_load(bench, bare, phases, built)
    if purge:
        print_purge(args, purge)
    for problem in bench.problems:
        print(f"  problem: {problem}")


def print_load(bench: Bench, bare: dict[str, Any], phases: list[Phase], built: float) -> None:
    args = bench.args
    print(
        f"\nhookgate growth benchmark: {args.history:,} events of history over "
        f"{args.history_days} days ({args.history_body}-byte padding), built in {built:.0f} s"
    )
    print(f"load generator: {describe(bench.generator)}; database: {bench.db.label}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n")
    print(f"{'':18}{'req/s':>9}{'p99 ms':>9}{'/bare':>8}{'drain/s':>10}{'drained':>9}{'load':>7}")
    print(f"{'bare aiohttp':18}{bare['rps']:>9,.0f}{bare['p99_ms']:>9.1f}")
    for p in phases:
        ratio = p.ingest["rps"] / bare["rps"] if bare["rps"] else 0.0
        print(
            f"{'hookgate ' + p.name:18}{p.ingest['rps']:>9,.0f}{p.ingest['p99_ms']:>9.1f}"
            f"{ratio:>8.3f}{p.drain_rate:>10,.0f}{p.drained:>9,}{p.load:>7.2f}"
        )
    empty = [p for p in phases if p.name.startswith("empty")]
    full = [p for p in phases if p.name.startswith("history")]
    ingest = [median([p.ingest["rps"] for p in group]) for group in (empty, full)]
    drain = [median([p.drain_rate for p in group]) for group in (empty, full)]
    if ingest[0] and drain[0]:
        print(
            f"\nhistory / empty, medians of {len(full)} rounds each (alternated): ingest "
            f"{ingest[1] / ingest[0]:.3f}, drain {drain[1] / drain[0]:.3f} (budget: within 10%)"
        )


def print_purge(args: argparse.Namespace, purge: dict[str, float]) -> None:
    per_row = purge["row_s"] / max(args.row_baseline, 1)
    print(
        f"\npurge: a day of {args.purge_day:,} events (built in {purge['built_s']:.0f} s): "
        f"dropped {purge['dropped']:,}, kept {purge['kept']} (pending or dead), "
        f"in {purge['drop_s']:.3f} s of database time (budget: under 1 s): "
        f"{purge['locked_s']:.3f} s with the tables locked ({purge['statement_s']:.3f} s the "
        f"statement, the rest its commit), then dropping the detached files"
    )
    print(
        f"  row by row, same run: {args.row_baseline:,} events in {purge['row_s']:.2f} s "
        f"= {per_row * 1e6:.0f} us per event, {per_row * args.purge_day:.0f} s for the day"
    )


def run(args: argparse.Namespace, tmp: Path) -> None:
    load = Load(args.connections, args.body_size, args.duration, args.warmup)
    with bench_database(tmp) as db:
        if db.url is None:
            raise SystemExit("growth.py needs a server database (HOOKGATE_BENCH_DATABASE_URL)")
        bench = Bench(args, tmp, load, choose(args.generator), db)
        asyncio.run(_migrate(db.url))
        if args.purge_only:
            print_report(bench, {}, [], 0.0, asyncio.run(measure_purge(db.url, args)))
            return
        bare = measure_bare(bench)
        today = dt.datetime.now(dt.UTC).date()
        days = [today - dt.timedelta(days=n) for n in range(args.history_days, 0, -1)]
        progress(f"building {args.history:,} events of history")
        built = asyncio.run(
            build_days(db.url, days, args.history // args.history_days, args.history_body)
        )
        asyncio.run(vacuum(db.url))
        phases: list[Phase] = []
        with empty_database(db) as other:
            empty = Bench(args, tmp, load, bench.generator, other, bench.problems)
            for n in range(args.rounds):  # empty, history; history, empty; ...
                order = [("empty", empty), ("history", bench)]
                for name, where in order if n % 2 == 0 else order[::-1]:
                    phases.append(Phase(f"{name}-{n + 1}"))
                    measure_ingest(where, phases[-1])
                    measure_drain(where, phases[-1])
                    phases[-1].load = os.getloadavg()[0]
        purge = asyncio.run(measure_purge(db.url, args)) if args.purge_day else None
    print_report(bench, bare, phases, built, purge)


@contextmanager
def empty_database(db: Database) -> Iterator[Database]:
    """A second, freshly migrated database on the same server, dropped after."""
    assert db.url is not None
    base, name = db.url.rsplit("/", 1)
    name = name.split("?", 1)[0] + "_empty"
    asyncio.run(_admin(db.url, f'CREATE DATABASE "{name}"'))
    try:
        url = f"{base}/{name}"
        asyncio.run(_migrate(url))
        yield Database(url, db.data_dir, f"{db.label} and {name}")
    finally:
        asyncio.run(_admin(db.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def main() -> int:
    return bench_main(run, parse_args(), "hookgate-growth-")


if __name__ == "__main__":
    sys.exit(main())
