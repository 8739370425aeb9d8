"""Day partitions: rows land in their day, days are made ahead and dropped whole by
retention, what must outlive its day survives, and an existing database upgrades in place."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from gateway.config import parse_config
from gateway.ids import delivery_id, event_id
from gateway.lifecycle import retention_pass
from gateway.storage.limits import health_columns
from gateway.storage.migrate import migrate
from gateway.storage.partitions import ensure
from gateway.storage.purge import Purger
from gateway.storage.queries import QUERIES
from gateway.storage.store import AttemptResult, EventRecord, Store, _result_columns

DAY0 = dt.date(2026, 11, 1)
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
POLICY = """
retention: {delivered: 2d, dead: 10d}
sources:
  gh: {}
  keep: {retention: {dead: forever}}
"""


def event(at: dt.datetime, source: str = "gh", targets=("billing",)) -> EventRecord:
    eid = event_id(at)
    return EventRecord(eid, source, None, at, "POST", "/in/x", "", [("A", "b")], b"{}", None,
                       [(delivery_id(eid, t), t) for t in targets])  # fmt: skip


async def where(conn: asyncpg.Connection, table: str, column: str, value) -> str:
    return await conn.fetchval(
        f"SELECT tableoid::regclass::text FROM hookgate.{table} WHERE {column} = $1", value
    )


async def make_days(conn: asyncpg.Connection, first: dt.date, last: dt.date) -> int:
    return await conn.fetchval("SELECT hookgate.ensure_partitions($1, $2)", first, last)


async def set_status(conn: asyncpg.Connection, record: EventRecord, status: str) -> None:
    await conn.execute("UPDATE hookgate.deliveries SET status = $1 WHERE event_id = $2",
                       status, record.id)  # fmt: skip
    await conn.execute(
        "INSERT INTO hookgate.attempts (delivery_id, event_id, attempt, worker, started_at)"
        " SELECT id, event_id, 1, 'w', $2 FROM hookgate.deliveries WHERE event_id = $1",
        record.id, record.received_at,
    )  # fmt: skip


async def test_rows_land_in_their_days_partition_and_others_in_the_default(store):
    inside, outside = event(T0), event(T0 - dt.timedelta(days=40))
    async with store.pool.acquire() as conn:
        await make_days(conn, DAY0, DAY0)
        await store.insert_events([inside, outside])
        await set_status(conn, inside, "delivered")

        assert await where(conn, "events", "id", inside.id) == "hookgate.events_p20261101"
        assert await where(conn, "deliveries", "event_id", inside.id) == (
            "hookgate.deliveries_p20261101"
        )
        assert await where(conn, "attempts", "event_id", inside.id) == (
            "hookgate.attempts_p20261101"
        )
        assert await where(conn, "events", "id", outside.id) == "hookgate.events_default"


async def test_days_are_made_ahead_once_and_take_their_rows_from_the_default(store):
    early = event(T0 + dt.timedelta(days=5))
    await store.insert_events([early])
    async with store.pool.acquire() as conn:
        assert await where(conn, "events", "id", early.id) == "hookgate.events_default"

        made = await ensure(conn, DAY0 + dt.timedelta(days=3))
        assert made == 3 * 3  # the 3 days after "today" (11-04), 3 tables each
        assert await ensure(conn, DAY0 + dt.timedelta(days=3)) == 0

        assert await where(conn, "events", "id", early.id) == "hookgate.events_p20261106"
        assert await where(conn, "deliveries", "event_id", early.id) == (
            "hookgate.deliveries_p20261106"
        )


async def test_retention_drops_a_whole_day_and_keeps_what_must_outlive_it(store):
    config = parse_config(POLICY, env={})
    done = [event(T0 + dt.timedelta(seconds=i)) for i in range(5)]
    pending, dead = event(T0 + dt.timedelta(seconds=10)), event(T0 + dt.timedelta(seconds=11))
    dead_forever = event(T0 + dt.timedelta(seconds=12), source="keep")
    next_day = event(T0 + dt.timedelta(days=1))
    async with store.pool.acquire() as conn:
        await make_days(conn, DAY0, DAY0 + dt.timedelta(days=1))
        await store.insert_events([*done, pending, dead, dead_forever, next_day])
        for record in done:
            await set_status(conn, record, "delivered")
        await set_status(conn, dead, "dead")
        await set_status(conn, dead_forever, "dead")
        await set_status(conn, next_day, "delivered")
    purger = Purger(store.pool)

    counts = await retention_pass(purger, config, T0 + dt.timedelta(days=2, hours=12), "t")

    assert (counts.events, counts.kept_open) == (5, 1)
    assert counts.days >= 1  # 11-01, and the template's empty January days
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass('hookgate.events_p20261101')") is None
        assert await conn.fetchval(  # detached, then dropped outside the lock
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'retired_%'"
        ) == 0  # fmt: skip
        assert await conn.fetchval("SELECT to_regclass('hookgate.events_p20261102')")
        kept = {r["id"] for r in await conn.fetch("SELECT id FROM hookgate.events_default")}
        assert kept == {pending.id, dead.id, dead_forever.id}
        assert await conn.fetchval(
            "SELECT count(*) FROM hookgate.deliveries_default WHERE event_id = ANY($1::uuid[])",
            list(kept),
        ) == 3  # fmt: skip
        assert await conn.fetchval("SELECT count(*) FROM hookgate.attempts_default") == 2
        assert await conn.fetchval("SELECT status FROM hookgate.deliveries WHERE event_id = $1",
                                   pending.id) == "pending"  # fmt: skip
        # The pass set the open floor (migration 0024): the pending delivery, moved to
        # the default partition with its old event id, holds it down to that id.
        floor = await conn.fetchrow("SELECT floor, valid_until FROM hookgate.open_floor")
        assert floor["valid_until"] > T0 + dt.timedelta(days=2, hours=12)
        assert floor["floor"] == pending.id
    store._floor = floor["floor"]  # as the relay's store learns it from its claims
    batch = await store.claim_batch({"billing": 10}, T0 + dt.timedelta(days=2, hours=12), 60.0, "w")
    assert [c.event_id for c in batch.claimed] == [pending.id]
    await store.unclaim(batch.claimed, T0 + dt.timedelta(days=2, hours=12), "w")  # as it was

    await retention_pass(purger, config, T0 + dt.timedelta(days=11), "t")

    async with store.pool.acquire() as conn:
        left = {r["id"] for r in await conn.fetch("SELECT id FROM hookgate.events")}
        assert left == {pending.id, dead_forever.id}  # dead after 10d; the next day after 2d
        assert await conn.fetchval("SELECT count(*) FROM hookgate.attempts") == 1


# Today's schema (migrations up to 0009), filled the way that code filled it.
FILL_0009 = """
INSERT INTO hookgate.events (id, source, event_type, received_at, method, path, query, headers,
                             body, peer, routes)
SELECT hookgate_test_id(t, n), CASE WHEN n % 2 = 0 THEN 'gh' ELSE 'shop' END, 'push', t,
       'POST', '/in/gh', 'a=1', '[["X-A", "1"]]', convert_to('{"n": ' || n || '}', 'UTF8'),
       '10.0.0.1', '{"matched": [0], "unmatched": []}'
FROM generate_series(1, 300) AS n,
     LATERAL (SELECT timestamptz '2026-10-20 00:00Z' + n * interval '97 minutes' AS t) AS s;
INSERT INTO hookgate.deliveries (id, event_id, target, status, attempts, due_at, created_at,
                                 updated_at, ordering_key, route, last_outcome)
SELECT gen_random_uuid(), e.id, tg, CASE WHEN tg = 'crm' THEN 'pending' ELSE 'delivered' END,
       1, e.received_at, e.received_at, e.received_at,
       CASE WHEN tg = 'crm' THEN 'cus_1' END, 0, 'HTTP_2XX'
FROM hookgate.events AS e, unnest(ARRAY['billing', 'crm']) AS tg
ORDER BY e.id, tg;
INSERT INTO hookgate.attempts (delivery_id, attempt, worker, started_at, duration_ms, outcome,
                               status_code, response_headers, response_body)
SELECT id, 1, 'w1', due_at, 12.5, 'HTTP_2XX', 200, '[["Server", "x"]]', '\\x6f6b'::bytea
FROM hookgate.deliveries;
INSERT INTO hookgate.dedupe (source, key, event_id, expires_at)
SELECT source, 'k' || id, id, received_at + interval '72 hours' FROM hookgate.events;
INSERT INTO hookgate.rejected (source, received_at, status, reason, method, path, query,
                               headers, body, peer)
VALUES ('gh', '2026-10-21Z', 401, 'bad signature', 'POST', '/in/gh', '', '[]', 'x', NULL);
"""
ID_FUNCTION = """
CREATE FUNCTION hookgate_test_id(t timestamptz, n integer) RETURNS uuid LANGUAGE sql AS $$
    SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7'
            || lpad(to_hex(n), 3, '0') || '8' || substr(md5(n::text), 1, 15))::uuid
$$;
"""
SNAPSHOT = {  # every column 0009 had; later migrations only add (key_id, event_id, and
    # 0011's budget_from and released_key: a replay's fresh retry budget, a released FIFO key;
    # 0020's traceparent)
    "events": "SELECT to_jsonb(e) - 'key_id' - 'traceparent' FROM hookgate.events AS e ORDER BY id",
    "deliveries": """SELECT to_jsonb(d) - 'budget_from' - 'released_key'
                     FROM hookgate.deliveries AS d ORDER BY id""",
    "attempts": """SELECT to_jsonb(a) - 'event_id' FROM hookgate.attempts AS a
                   ORDER BY delivery_id, attempt""",
    "dedupe": "SELECT to_jsonb(k) FROM hookgate.dedupe AS k ORDER BY source, key",
    "rejected": "SELECT to_jsonb(r) - 'key_id' FROM hookgate.rejected AS r ORDER BY id",
}


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[str]]:
    return {name: [r[0] for r in await conn.fetch(sql)] for name, sql in SNAPSHOT.items()}


FINISHED = """
SELECT d.status, (SELECT count(*) FROM hookgate.attempts AS a
                  WHERE a.delivery_id = d.id AND a.event_id = d.event_id) AS attempts
FROM hookgate.deliveries AS d WHERE d.id = $1
"""


async def finish_rolled_back(conn: asyncpg.Connection, claimed, event_ids) -> tuple:
    """Finish `claimed` (delivered) with `event_ids` in a transaction rolled back after:
    the deliveries it kept, and each one's status and attempts then."""
    now = T0 + dt.timedelta(days=10)
    results = [
        AttemptResult(c.id, c.attempt, 1.0, "HTTP_2XX", 200, [], b"", None, "delivered", now,
                      target=c.target, worker="w", event_id=e)
        for c, e in zip(claimed, event_ids, strict=True)
    ]  # fmt: skip
    columns = [*_result_columns(results), *health_columns(()), [r.event_id for r in results]]
    transaction = conn.transaction()
    await transaction.start()
    try:
        rows = await conn.fetch(QUERIES["finish_attempts"], now, *columns)
        states = [tuple(await conn.fetchrow(FINISHED, c.id)) for c in claimed]
    finally:
        await transaction.rollback()
    return {r["out_delivery"] for r in rows if r["out_delivery"]}, states


async def test_a_result_is_finished_with_its_events_id_or_without_it(store):
    """Results carry their event's id, the deliveries' partition key (0021), so finishing
    joins on the whole key; a result without it (an older caller) is looked up by id."""
    async with store.pool.acquire() as conn:
        await make_days(conn, DAY0, DAY0 + dt.timedelta(days=5))
        records = [event(T0 + dt.timedelta(days=n)) for n in range(6)]
        await store.insert_events(records)
        for record in records[:2] + records[3:]:
            await set_status(conn, record, "delivered")
        claimed = await store.claim({"billing": 10}, T0 + dt.timedelta(days=10), 60.0, "w")
        assert [c.event_id for c in claimed] == [records[2].id]

        for event_ids in ([claimed[0].event_id], [None]):
            kept, states = await finish_rolled_back(conn, claimed, event_ids)
            assert kept == {claimed[0].id}
            assert states == [("delivered", 1)]
        # A wrong event id finds nothing: the lease is not taken as held.
        kept, states = await finish_rolled_back(conn, claimed, [records[3].id])
        assert kept == set()
        assert states == [("in_flight", 0)]


@pytest.mark.timeout(120)
async def test_an_existing_database_is_partitioned_in_place_and_loses_nothing(
    empty_database_url,
):
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, until=9)
        await conn.execute(ID_FUNCTION)
        await conn.execute(FILL_0009)
        before = await snapshot(conn)
        last_seq = await conn.fetchval("SELECT max(seq) FROM hookgate.deliveries")

        await migrate(conn)

        assert await snapshot(conn) == before
        assert len(before["events"]) == 300 and len(before["attempts"]) == 600
        days = await conn.fetchval(
            "SELECT count(DISTINCT tableoid) FROM hookgate.events WHERE tableoid <> "
            "'hookgate.events_default'::regclass"
        )
        assert days == await conn.fetchval(
            "SELECT count(DISTINCT (received_at AT TIME ZONE 'UTC')::date) FROM hookgate.events"
        )
        assert await conn.fetchval("SELECT count(*) FROM hookgate.events_default") == 0
        assert await conn.fetchval(
            "SELECT count(*) FROM hookgate.attempts AS a JOIN hookgate.deliveries AS d"
            " ON d.id = a.delivery_id AND d.event_id = a.event_id"
        ) == 600  # fmt: skip
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(empty_database_url, min_size=1, max_size=2)
    try:
        fresh = event(dt.datetime.now(dt.UTC))
        await Store(pool).insert_events([fresh])
        seq = await pool.fetchval("SELECT seq FROM hookgate.deliveries WHERE event_id = $1",
                                  fresh.id)  # fmt: skip
        assert seq > last_seq  # FIFO order continues after the old rows
    finally:
        await pool.close()
