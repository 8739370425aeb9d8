"""The relay at scale: many relays never deadlock; the claim's cost does not grow with history.

Four relays on four connection pools stand in for four worker processes: every lock
they could take on each other lives in Postgres, so what they share is what processes
would share.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiohttp import web
from conftest import make_config
from structlog.testing import capture_logs

from gateway.clock import SystemClock
from gateway.ids import delivery_id, event_id
from gateway.plugins import Resources, load_registry
from gateway.relay.lanes import build_lanes
from gateway.relay.worker import Relay
from gateway.storage.limits import limit_columns
from gateway.storage.queries import QUERIES
from gateway.storage.store import NO_FLOOR, RELAY_SESSION, EventRecord, Store

TARGETS = {
    "ok1": "ok", "ok2": "ok", "ok3": "ok",
    "slow1": "slow", "slow2": "slow",
    "flaky1": "flaky", "flaky2": "flaky", "down": "down",
}  # fmt: skip


async def start_target(aiohttp_server: Any, kind: str) -> str:
    """A real internal service: instant, slow (20 ms), flaky (fails in runs), or down (503)."""
    counter = itertools.count()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        n = next(counter)
        if kind == "slow":
            await asyncio.sleep(0.02)
        if kind == "down" or (kind == "flaky" and n % 10 < 4):
            return web.Response(status=503, text="unavailable")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook"))


def scale_config(database_url: str, urls: dict[str, str]) -> Any:
    schedule = "retry: {schedule: [" + ", ".join(["100ms"] * 20) + "]}"
    breaker = "breaker: {failures: 3, cooldown: 200ms}"
    lines = "\n".join(
        f'  {name}: {{url: "{url}", concurrency: 6, {schedule}, {breaker}}}'
        for name, url in urls.items()
    )
    return make_config(
        database_url,
        f"""
relay: {{enabled: false, poll_interval: 100ms, batch_size: 20}}
sources: {{shop: {{}}}}
targets:
{lines}
routes: [{{source: shop, targets: [{", ".join(urls)}]}}]
""",
    )


def events(count: int, targets: list[str]) -> list[EventRecord]:
    now = SystemClock().now()
    return [event(event_id(now), now, targets) for _ in range(count)]


def event(new_id: Any, now: Any, targets: list[str]) -> EventRecord:
    deliveries = [(delivery_id(new_id, name), name) for name in targets]
    return EventRecord(
        new_id, "shop", "order.paid", now, "POST", "/in/shop", "", [], b"{}", None, deliveries
    )


async def deadlocks(admin: asyncpg.Connection) -> int:
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    return int(
        await admin.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def settled(store: Store, healthy: list[str]) -> bool:
    """Every delivery to a healthy target delivered, and some failing ones retried."""
    async with store.pool.acquire() as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM hookgate.deliveries"
            " WHERE target = ANY($1::text[]) AND status <> 'delivered'",
            healthy,
        )
        retried = await conn.fetchval("SELECT count(*) FROM hookgate.attempts WHERE attempt > 2")
    return left == 0 and retried > 0


async def run_relays(database_url: str, config: Any, store: Store, healthy: list[str]) -> None:
    """Four relays run their loops until the healthy targets got everything (at most 20 s)."""
    clock = SystemClock()
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        lanes = build_lanes(config, load_registry(), Resources(session, clock))
        relays = []
        for n in range(4):
            pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
            stack.push_async_callback(pool.close)  # closed before the deadlock count is read
            relays.append(Relay(Store(pool), lanes, config.relay, clock, worker=f"w{n}"))
        loops = [asyncio.create_task(relay.run()) for relay in relays]
        try:
            async with asyncio.timeout(20):
                for _ in itertools.count():  # polls a server-side state
                    if await settled(store, healthy):
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # breakers keep opening and closing for a while
        finally:
            await asyncio.gather(*(relay.stop(grace=2) for relay in relays))
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)


async def test_four_relays_on_eight_targets_never_deadlock(database_url, store, aiohttp_server):
    urls = {name: await start_target(aiohttp_server, kind) for name, kind in TARGETS.items()}
    config = scale_config(database_url, urls)
    await store.insert_events(events(150, list(urls)))
    healthy = [name for name, kind in TARGETS.items() if kind in ("ok", "slow", "flaky")]
    admin = await asyncpg.connect(database_url)
    try:
        before = await deadlocks(admin)
        with capture_logs() as logs:
            await run_relays(database_url, config, store, healthy)
        after = await deadlocks(admin)
    finally:
        await admin.close()

    assert after == before
    assert [entry for entry in logs if entry["log_level"] in ("error", "critical")] == []
    trouble = {"relay_claim_failed", "batch_write_failed", "relay_loop_crashed"}
    assert [entry for entry in logs if entry["event"] in trouble] == []
    events_seen = {entry["event"] for entry in logs}
    assert {"breaker_opened", "breaker_closed"} <= events_seen  # the scenario happened


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


HISTORY = """
WITH e AS (
    INSERT INTO hookgate.events (id, source, received_at, method, path, query, headers, body)
    SELECT gen_random_uuid(), 'shop', now() - interval '30 days', 'POST', '/in/shop', '',
           '[]'::jsonb, convert_to(repeat('x', 200), 'UTF8')
    FROM generate_series(1, $1)
    RETURNING id
)
INSERT INTO hookgate.deliveries
    (id, event_id, target, status, attempts, due_at, created_at, updated_at)
SELECT gen_random_uuid(), id, 'hot', CASE WHEN random() < 0.9 THEN 'delivered' ELSE 'dead' END,
       1, now() - interval '30 days', now() - interval '30 days', now() - interval '30 days'
FROM e
"""


async def test_the_claim_reaches_events_by_primary_key_whatever_the_history(store):
    async with store.pool.acquire() as conn:
        await conn.execute(HISTORY, 30_000)
    await store.insert_events(events(200, ["hot", "cold"]))
    async with store.pool.acquire() as conn:
        await conn.execute("ANALYZE")
        quotas = {"hot": 100, "cold": 100}
        concurrency, rate, burst, breaker, blocks = limit_columns(quotas, {})
        (row,) = await conn.fetch(
            "EXPLAIN (FORMAT JSON) " + QUERIES["claim_deliveries"],
            list(quotas), list(quotas.values()), SystemClock().now(), 60.0, "w",
            blocks, concurrency, rate, burst, breaker, [True, False], NO_FLOOR,
        )  # fmt: skip
        # Day partitions (migration 0017) the planner knows to be small (today's, holding
        # the test's 200 events) may be scanned sequentially; the history must not be.
        empty = {r["relname"] for r in await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'hookgate'::regnamespace"
            " AND relkind = 'r' AND reltuples < 1000")}  # fmt: skip
    (explained,) = orjson.loads(row[0])
    nodes = plan_nodes(explained["Plan"])
    on_events = [node for node in nodes if table(node) == "events" and full(node, empty)]
    assert on_events
    assert {node["Node Type"] for node in on_events} <= {"Index Scan", "Index Only Scan"}, [
        (n["Node Type"], n["Relation Name"]) for n in on_events
    ]
    assert {node["Index Name"].rsplit("_", 1)[-1] for node in on_events} == {"pkey"}
    for join in (node for node in nodes if node["Node Type"] in ("Hash Join", "Merge Join")):
        assert "events" not in {table(node) for node in plan_nodes(join) if full(node, empty)}
    scans = {table(n) for n in nodes if n["Node Type"] == "Seq Scan" and full(n, empty)}
    assert not scans & {"events", "deliveries", "attempts"}, scans  # all reached by index
    assert "JIT" not in explained


def table(node: dict) -> str | None:
    """The table a plan node reads, its day partitions counted as the table."""
    name = node.get("Relation Name")
    return re.sub(r"_(p\d{8}|default)$", "", name) if name else None


def full(node: dict, empty: set[str]) -> bool:
    return node.get("Relation Name") not in empty


async def explain_generic(conn: asyncpg.Connection, query: str, *args: Any) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of `query`'s generic plan (the relay's: RELAY_SESSION) run
    with `args`, its effects rolled back."""
    types = [
        await conn.fetchval("SELECT $1::oid::regtype::text", p.oid)
        for p in (await conn.prepare(query)).get_parameters()
    ]
    literals = [
        await conn.fetchval(f"SELECT format('%L::{t}', $1::{t})", arg)
        for t, arg in zip(types, args, strict=True)
    ]
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE generic ({', '.join(types)}) AS {query}")
        (row,) = await conn.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE generic ({', '.join(literals)})"
        )
    finally:
        await transaction.rollback()  # what the claim wrote
        await conn.execute("DEALLOCATE generic")  # not transactional
    explained: dict[str, Any] = orjson.loads(row[0])[0]
    return explained


async def explain_claim(
    conn: asyncpg.Connection, quotas: dict[str, int], now: dt.datetime, floor: Any = NO_FLOOR
) -> dict[str, Any]:
    """`explain_generic` of the relay's claim of `quotas` (no limits, no shares) at `now`."""
    concurrency, rate, burst, breaker, blocks = limit_columns(quotas, {})
    return await explain_generic(
        conn, QUERIES["claim_deliveries"], list(quotas), list(quotas.values()), now, 60.0, "w",
        blocks, concurrency, rate, burst, breaker, [False] * len(quotas), floor,
    )  # fmt: skip


async def test_the_claims_update_reads_only_the_days_of_the_rows_it_claims(database_url):
    """Each claimed row is updated in its own day's partition: under the generic plan, the
    days of history holding none of them are not probed at all, however many are kept."""
    now = SystemClock().now()
    today = now.date()
    days = [today - dt.timedelta(days=k) for k in range(6, -1, -1)]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2,
                                     server_settings=RELAY_SESSION)  # fmt: skip
    store = Store(pool)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SELECT hookgate.ensure_partitions($1, $2)", days[0], today)
        for day in days[:-1]:  # a day of history each: delivered
            noon = dt.datetime.combine(day, dt.time(12), dt.UTC)
            await store.insert_events([event(event_id(noon), noon, ["hot"]) for _ in range(500)])
        async with pool.acquire() as conn:
            await conn.execute("UPDATE hookgate.deliveries SET status = 'delivered'")
            # Retries due now of an event of yesterday and of one three days ago.
            retries = await conn.fetch(
                "UPDATE hookgate.deliveries SET status = 'pending', due_at = $1"
                " WHERE id IN (SELECT DISTINCT ON (hookgate.id_day(event_id)) id"
                "   FROM hookgate.deliveries WHERE hookgate.id_day(event_id) = ANY ($2::date[]))"
                " RETURNING id",
                now - dt.timedelta(hours=1), [days[-2], days[-4]],
            )  # fmt: skip
        await store.insert_events(events(20, ["hot"]))  # today's backlog
        now = SystemClock().now()
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE")
            quotas = {"hot": 10}
            explained = await explain_claim(conn, quotas, now)
        batch = await store.claim_batch(quotas, now, 60.0, "w")
    finally:
        await pool.close()

    (update,) = [n for n in plan_nodes(explained["Plan"]) if n.get("Operation") == "Update"]
    assert update["Actual Rows"] == 10
    assert update["Plan Rows"] < 1000  # estimated as a join on the key, not millions
    probed = {
        node["Relation Name"]
        for child in update["Plans"]
        for node in plan_nodes(child)
        if table(node) == "deliveries" and node["Actual Loops"] > 0
    }
    claimed_days = {days[-1], days[-2], days[-4]}
    assert probed == {f"deliveries_p{day:%Y%m%d}" for day in claimed_days}
    # The same claim, for real: the two retries first (due earliest), then today's.
    assert {c.id for c in batch.claimed} >= {r["id"] for r in retries}
    assert len(batch.claimed) == 10


async def test_a_claim_reads_the_claim_index_in_order_whatever_the_statistics_say(database_url):
    """Statistics taken on a quiet day (4 of 1,000 pending), then all of them pending (a
    bulk replay; half retried in an hour): under the relay's generic plan each claim
    still reads its quota of due rows and the first row due later of each day's claim
    index, in index order, never the whole queue and a sort. (An EXPLAIN with the
    values filled in plans for them, and there a sort can look cheaper.)"""
    now = SystemClock().now()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2,
                                     server_settings=RELAY_SESSION)  # fmt: skip
    store = Store(pool)
    try:
        await store.insert_events(events(1_000, ["hot"]))
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE hookgate.deliveries SET due_at = $1, status = CASE WHEN seq % 250 = 0"
                " THEN 'pending' ELSE 'delivered' END",
                now,
            )
            await conn.execute("VACUUM ANALYZE hookgate.deliveries")
            await conn.execute(  # due again; every other one retried in an hour
                "UPDATE hookgate.deliveries SET status = 'pending', due_at = $1::timestamptz"
                " + CASE WHEN seq % 2 = 0 THEN interval '1 hour' ELSE interval '0' END",
                now,
            )
            explained = await explain_claim(conn, {"hot": 10}, now + dt.timedelta(seconds=1))
            partitions = await conn.fetchval(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'hookgate.deliveries'::regclass"
            )
    finally:
        await pool.close()

    nodes = plan_nodes(explained["Plan"])
    # One target: each node ran once, so its rows are what it read.
    on_claim_index = [n for n in nodes if n.get("Index Name", "").endswith("_target_due_at_idx")]
    assert {n["Actual Loops"] for n in on_claim_index} == {1}
    read = sum(n["Actual Rows"] for n in on_claim_index)
    assert read <= 11 + partitions, read  # 10 claimed (one more looked at); 1 due later a day
    sorted_rows = [n["Actual Rows"] for n in nodes if n["Node Type"] == "Sort"]
    assert all(rows <= 2 for rows in sorted_rows), sorted_rows
    (update,) = [n for n in nodes if n.get("Operation") == "Update"]
    assert update["Actual Rows"] == 10
