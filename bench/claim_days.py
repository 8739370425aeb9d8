"""What a claim costs as days of history pile up: Postgres CPU and the UPDATE's buffers.

One database on the local server (``pgdb.py``; it reads the server's ``/proc``, so the
server must run on this machine), grown in steps: ``--per-day`` delivered deliveries
(and their events) on each of the ``--days`` days before today, one day partition each
(``INSERT ... SELECT generate_series`` through the partitioned tables), then at each
step a fresh backlog due today and ``VACUUM ANALYZE``. At each step:

1. **CPU**: ``--claims`` claims of ``--batch`` through ``Store.claim_batch`` on one
   connection with the relay's session settings (generic plans), each followed by
   ``finish_many``; the server backend's CPU time (``/proc/<pid>/schedstat``) over the
   claims alone, per claimed delivery. With ``--compare FILE`` (a ``queries.sql``, e.g.
   ``git show main:gateway/storage/queries.sql``), its ``claim_deliveries`` and this
   checkout's take turns, claim by claim, so both see the same load (both taking the
   same parameters: twelve since migration 0024's open floor, which each step raises
   as housekeeping would).
2. **plan**: ``EXPLAIN (ANALYZE, BUFFERS)`` of the claim's generic plan, rolled back:
   how many of the ``deliveries`` day partitions the ``UPDATE`` reads, and the buffers.

Run: ``.venv/bin/python bench/claim_days.py [--days 1,7,30] [--per-day 20000]
[--compare old.sql]``: about a minute here with the defaults. The machine is shared:
compare the two statements of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from pgdb import bench_database
from procs import bench_main

from gateway.storage.limits import TargetLimits, limit_columns
from gateway.storage.migrate import migrate
from gateway.storage.queries import QUERIES, load
from gateway.storage.store import RELAY_SESSION, SESSION, AttemptResult, Store

# Events of `$2 + (n - 1) * $3`, each with one delivery to `$4` in status `$5`; ids made
# as the gateway makes them (a UUIDv7, the delivery's first 64 bits its event's).
FILL = """
WITH e AS (
    INSERT INTO hookgate.events (id, source, received_at, method, path, query, headers, body)
    SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(n::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid,
           'bench', t, 'POST', '/in/bench', '', '[]'::jsonb, convert_to(repeat('x', 200), 'UTF8')
    FROM generate_series(1, $1) AS n,
         LATERAL (SELECT $2::timestamptz + (n - 1) * $3::interval AS t) AS s
    RETURNING id, received_at
)
INSERT INTO hookgate.deliveries (id, event_id, target, status, due_at, created_at, updated_at)
SELECT encode(overlay(uuid_send(id) PLACING substring(uuid_send(gen_random_uuid()) FROM 9 FOR 8)
                      FROM 9), 'hex')::uuid,
       id, $4, $5, received_at, received_at, received_at
FROM e
"""
TARGET = "sink"
LIMITS = {TARGET: TargetLimits(64)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="1,7,30", help="days of history at each step")
    parser.add_argument("--per-day", type=int, default=20_000)
    parser.add_argument("--claims", type=int, default=300, help="per statement and step")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--compare", type=Path, help="a queries.sql to take turns with")
    return parser.parse_args()


def backend_cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def add_history(conn: asyncpg.Connection, days: range, per_day: int) -> None:
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=days.stop - 1)
    await conn.execute("SELECT hookgate.ensure_partitions($1, $2)", first, today)
    for k in days:
        start = dt.datetime.combine(today - dt.timedelta(days=k), dt.time(), dt.UTC)
        step = dt.timedelta(days=1) / per_day
        await conn.execute(FILL, per_day, start, step, "history", "delivered")


async def add_backlog(conn: asyncpg.Connection, count: int) -> None:
    """`count` deliveries due now, received over the last minutes of today."""
    now = dt.datetime.now(dt.UTC)
    start = max(dt.datetime.combine(now.date(), dt.time(), dt.UTC), now - dt.timedelta(hours=1))
    await conn.execute(FILL, count, start, (now - start) * 0.9 / count, TARGET, "pending")
    await conn.execute("VACUUM ANALYZE")
    await conn.execute("SELECT hookgate.raise_open_floor(now(), 3600)")  # as housekeeping does


async def claim_and_finish(store: Store, batch: int, pid: int) -> tuple[int, int]:
    """One claim and its results; (deliveries claimed, backend CPU ns of the claim)."""
    now = dt.datetime.now(dt.UTC)
    before = backend_cpu_ns(pid)
    claimed = (await store.claim_batch({TARGET: batch}, now, 30.0, "w", LIMITS)).claimed
    spent = backend_cpu_ns(pid) - before
    results = [
        AttemptResult(
            c.id, c.attempt, 1.0, "HTTP_2XX", 200, [], b"ok", None, "delivered", now,
            target=TARGET, worker="w", started_at=now, event_id=c.event_id,
        )
        for c in claimed
    ]  # fmt: skip
    await store.finish_many(results, now)
    return len(claimed), spent


async def explain_update(conn: asyncpg.Connection, query: str, batch: int) -> dict[str, Any]:
    """The generic plan's UPDATE, run and rolled back: partitions read, their buffers."""
    quotas = {TARGET: batch}
    concurrency, rate, burst, breaker, blocks = limit_columns(quotas, LIMITS)
    args = [list(quotas), [batch], dt.datetime.now(dt.UTC), 30.0, "w", blocks, concurrency,
            rate, burst, breaker, [False]]  # fmt: skip
    params = (await conn.prepare(query)).get_parameters()
    if len(params) > len(args):  # the open floor (migration 0024), as the relay passes it
        args.append(await conn.fetchval("SELECT floor FROM hookgate.open_floor"))
    types = [await conn.fetchval("SELECT $1::oid::regtype::text", p.oid) for p in params]
    literals = [
        await conn.fetchval(f"SELECT format('%L::{t}', $1::{t})", arg)
        for t, arg in zip(types, args, strict=True)
    ]
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE bench_claim ({', '.join(types)}) AS {query}")
        row = await conn.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE bench_claim ({', '.join(literals)})"
        )
    finally:
        await transaction.rollback()
        await conn.execute("DEALLOCATE bench_claim")
    plan = orjson.loads(row)[0]["Plan"]
    (update,) = [n for n in nodes(plan) if n.get("Operation") == "Update"]
    parts = [
        n for child in update["Plans"] for n in nodes(child)
        if n.get("Relation Name", "").startswith("deliveries_") and n["Actual Loops"] > 0
    ]  # fmt: skip
    return {
        "partitions read": len(parts),
        "their buffers": sum(n["Shared Hit Blocks"] + n["Shared Read Blocks"] for n in parts),
        "UPDATE buffers": update["Shared Hit Blocks"] + update["Shared Read Blocks"],
    }


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan] + [n for child in plan.get("Plans", []) for n in nodes(child)]


async def measure(url: str, args: argparse.Namespace) -> None:
    statements = {"this checkout": QUERIES["claim_deliveries"]}
    if args.compare:
        statements["--compare"] = load(args.compare.read_text())["claim_deliveries"]
    conn = await asyncpg.connect(url)
    await migrate(conn)
    filled = 0
    for days in sorted(int(d) for d in args.days.split(",")):
        await add_history(conn, range(filled + 1, days + 1), args.per_day)
        filled = days
        # Enough for every claim, and for each statement's EXPLAIN after them.
        await add_backlog(conn, args.batch * (args.claims + 3) * len(statements))
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=1, server_settings={**SESSION, **RELAY_SESSION}
        )
        store = Store(pool)
        async with pool.acquire() as c:
            pid = await c.fetchval("SELECT pg_backend_pid()")
        totals = {name: [0, 0] for name in statements}
        for n in range(args.claims + 2):
            for name, query in statements.items():  # taking turns
                QUERIES["claim_deliveries"] = query
                count, spent = await claim_and_finish(store, args.batch, pid)
                if n >= 2:  # the first prepare the statements
                    totals[name][0] += count
                    totals[name][1] += spent
        await pool.close()
        for name, query in statements.items():
            count, spent = totals[name]
            plan = await explain_update(conn, query, args.batch)
            print(f"{days:>3} days, {name}: {count} claimed, {spent / count / 1000:.1f} µs of "
                  f"Postgres CPU per claimed delivery; {plan}", flush=True)  # fmt: skip
        QUERIES["claim_deliveries"] = statements["this checkout"]
    await conn.close()


def run(args: argparse.Namespace, tmp: Path) -> None:
    with bench_database(tmp) as db:
        if db.url is None or not Path("/proc/self/schedstat").exists():
            sys.exit("needs PostgreSQL on this machine (see pgdb.py) and /proc")
        asyncio.run(measure(db.url, args))


if __name__ == "__main__":
    sys.exit(bench_main(run, parse_args(), "hookgate-claim-days-"))
