"""Retention and erasure on a real Postgres: what goes, what stays, and the audit trail."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import asyncpg
import orjson

from gateway.cli import main
from gateway.config import parse_config
from gateway.ids import delivery_id, event_id
from gateway.lifecycle import Erasure, Match, erase, retention_pass
from gateway.storage.purge import PURGE_LOCK, Purger
from gateway.storage.store import EventRecord, RejectedRecord

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
POLICY = """
retention: {delivered: 2d, dead: 10d, rejected: 1d}
sources:
  gh: {}
  shop: {retention: {delivered: 20d, dead: forever}}
"""


def rejected(at: dt.datetime, source: str = "gh") -> RejectedRecord:
    return RejectedRecord(
        source, at, 401, "signature does not match", "POST", "/in/gh", "", [], b"x", None
    )


def event(at: dt.datetime, source: str = "gh", body: bytes = b"{}", targets=("billing",),
          headers=(), key: str | None = None) -> EventRecord:  # fmt: skip
    eid = event_id(at)
    return EventRecord(
        eid, source, None, at, "POST", f"/in/{source}", "", list(headers), body, None,
        [(delivery_id(eid, t), t) for t in targets],
        dedupe_key=key, dedupe_until=at + dt.timedelta(hours=1) if key else None,
    )  # fmt: skip


async def stored(store, *records: EventRecord, status: str = "delivered") -> list[EventRecord]:
    await store.insert_events(list(records))
    async with store.pool.acquire() as conn:
        await conn.execute(
            "UPDATE hookgate.deliveries SET status = $1 WHERE event_id = ANY($2::uuid[])",
            status,
            [r.id for r in records],
        )
    return list(records)


async def remaining(store) -> set:
    async with store.pool.acquire() as conn:
        return {row["id"] for row in await conn.fetch("SELECT id FROM hookgate.events")}


async def count(store, table: str) -> int:
    async with store.pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM hookgate.{table}"))


def policy():
    return parse_config(POLICY, env={})


async def test_a_finished_event_goes_after_its_retention_and_takes_its_rows_with_it(store):
    await stored(store, event(T0))
    (young,) = await stored(store, event(T0 + 2 * DAY))
    async with store.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO hookgate.attempts"
            " (delivery_id, event_id, attempt, worker, started_at, outcome)"
            " SELECT id, event_id, 1, 'w', $1, 'HTTP_2XX' FROM hookgate.deliveries", T0
        )  # fmt: skip

    counts = await retention_pass(Purger(store.pool), policy(), T0 + 3 * DAY, "test")

    assert counts.events == 1
    assert await remaining(store) == {young.id}
    assert await count(store, "deliveries") == 1
    assert await count(store, "attempts") == 1


async def test_an_event_with_a_pending_or_in_flight_delivery_is_never_purged(store):
    pending = await stored(store, event(T0), status="pending")
    in_flight = await stored(store, event(T0 + dt.timedelta(seconds=1)), status="in_flight")
    mixed = event(T0 + dt.timedelta(seconds=2), targets=("billing", "crm"))
    await stored(store, mixed, status="delivered")
    async with store.pool.acquire() as conn:
        await conn.execute("UPDATE hookgate.deliveries SET status = 'pending' WHERE target = 'crm'")

    counts = await retention_pass(Purger(store.pool), policy(), T0 + 400 * DAY, "test")

    assert (counts.events, counts.kept_open) == (0, 3)
    assert await remaining(store) == {pending[0].id, in_flight[0].id, mixed.id}


async def test_dead_events_keep_their_own_retention_and_forever_keeps_them(store):
    (dead_gh,) = await stored(store, event(T0), status="dead")
    (dead_shop,) = await stored(store, event(T0, source="shop"), status="dead")
    (done_shop,) = await stored(store, event(T0, source="shop"))
    (no_deliveries,) = await stored(store, event(T0, targets=()))
    purger = Purger(store.pool)

    await retention_pass(purger, policy(), T0 + 5 * DAY, "test")
    assert await remaining(store) == {dead_gh.id, dead_shop.id, done_shop.id}

    await retention_pass(purger, policy(), T0 + 25 * DAY, "test")
    assert await remaining(store) == {dead_shop.id}  # shop: dead forever
    assert no_deliveries.id not in await remaining(store)


async def test_sources_no_longer_configured_follow_the_global_policy(store):
    (gone,) = await stored(store, event(T0, source="retired"))

    await retention_pass(Purger(store.pool), policy(), T0 + 3 * DAY, "test")

    assert gone.id not in await remaining(store)


async def test_refused_requests_and_dedupe_keys_are_purged_after_their_time(store):
    config = policy()
    await store.insert_rejected([rejected(T0), rejected(T0 + 2 * DAY), rejected(T0, "shop")])
    await stored(store, event(T0 + 2 * DAY, key="old"))
    await stored(store, event(T0 + 2 * DAY + dt.timedelta(hours=2), key="new"))

    counts = await retention_pass(
        Purger(store.pool), config, T0 + 2 * DAY + dt.timedelta(hours=2), "test"
    )

    assert (counts.rejected, counts.dedupe_keys, counts.events) == (2, 1, 0)
    assert await count(store, "rejected") == 1
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT key FROM hookgate.dedupe") == "new"


async def test_a_dry_run_counts_deletes_nothing_and_is_audited(store):
    await stored(store, event(T0), event(T0 + dt.timedelta(seconds=1)))

    counts = await retention_pass(
        Purger(store.pool), policy(), T0 + 3 * DAY, "ops@box", dry_run=True
    )

    assert counts.events == 2
    assert len(await remaining(store)) == 2
    async with store.pool.acquire() as conn:
        audit = await conn.fetchrow("SELECT * FROM hookgate.purges")
    assert (audit["kind"], audit["actor"], audit["dry_run"], audit["events"]) == (
        "retention", "ops@box", True, 2
    )  # fmt: skip


async def test_a_pass_walks_every_batch(store):
    records = [event(T0 + dt.timedelta(milliseconds=i)) for i in range(25)]
    await stored(store, *records)

    counts = await retention_pass(Purger(store.pool, batch=4), policy(), T0 + 3 * DAY, "test")

    assert counts.events == 25
    assert await remaining(store) == set()


async def test_only_one_replica_runs_a_pass_at_a_time(store, database_url):
    await stored(store, event(T0))
    other = await asyncpg.connect(database_url)
    try:
        await other.execute("SELECT pg_advisory_lock($1)", PURGE_LOCK)
        assert await retention_pass(Purger(store.pool), policy(), T0 + 3 * DAY, "t") is None
        assert len(await remaining(store)) == 1
    finally:
        await other.close()


async def test_erasure_by_json_field_and_header_removes_only_matches_and_audits_a_hash(store):
    email = "ann@example.com"
    wanted = event(T0, body=orjson.dumps({"customer": {"email": email}}), headers=[("X-Shop", "a")])
    other_shop = event(T0 + dt.timedelta(seconds=1), body=wanted.body, headers=[("X-Shop", "b")])
    someone_else = event(T0 + dt.timedelta(seconds=2), body=b'{"customer": {"email": "bo@x"}}',
                         headers=[("x-shop", "a")])  # fmt: skip
    not_json = event(T0 + dt.timedelta(seconds=3), body=b"\xff\x00", headers=[("X-Shop", "a")])
    pending = event(T0 + dt.timedelta(seconds=4), body=wanted.body, headers=[("x-SHOP", "a")])
    await stored(store, wanted, other_shop, someone_else, not_json)
    await stored(store, pending, status="pending")
    erasure = Erasure(T0 + DAY, "gh", (Match.parse(f"json:customer.email={email}"),
                                       Match.parse("header:x-shop=a")))  # fmt: skip

    counts = await erase(Purger(store.pool, batch=2), erasure, T0 + DAY, "cli ops@box")

    assert (counts.events, counts.kept_open) == (1, 1)
    assert await remaining(store) == {other_shop.id, someone_else.id, not_json.id, pending.id}
    async with store.pool.acquire() as conn:
        criteria = orjson.loads(await conn.fetchval("SELECT criteria FROM hookgate.purges"))
    digest = hashlib.sha256(email.encode()).hexdigest()
    assert criteria["match"][0] == f"json:customer.email=sha256:{digest}"
    assert email not in str(criteria)


async def test_erasure_by_source_and_date(store):
    old_gh, young_gh = event(T0), event(T0 + 2 * DAY)
    old_shop = event(T0, source="shop")
    await stored(store, old_gh, young_gh, old_shop, status="dead")

    counts = await erase(Purger(store.pool), Erasure(T0 + DAY, "gh"), T0 + 3 * DAY, "t")

    assert counts.events == 1
    assert await remaining(store) == {young_gh.id, old_shop.id}


async def test_purge_command_runs_one_pass_now(store, database_url, tmp_path, capsys):
    now = dt.datetime.now(dt.UTC)
    old = event(now - dt.timedelta(seconds=30))
    fresh = event(now)
    await stored(store, old, fresh)
    path = tmp_path / "hookgate.yaml"
    path.write_text(f"database: {{url: '{database_url}'}}\nretention: {{delivered: 10s}}\n")

    assert await asyncio.to_thread(main, ["purge", "--config", str(path)]) == 0

    assert await remaining(store) == {fresh.id}
    assert "purged 1 events" in capsys.readouterr().out


async def test_purge_command_erases_with_match_and_dry_run(store, database_url, tmp_path, capsys):
    target = event(T0, body=b'{"customer": {"email": "a@b"}}')
    await stored(store, target, event(T0))
    path = tmp_path / "hookgate.yaml"
    path.write_text(f"database: {{url: '{database_url}'}}\n")
    argv = [
        "purge",
        "-c",
        str(path),
        "--before",
        "2026-12-01",
        "--match",
        "json:customer.email=a@b",
    ]

    assert await asyncio.to_thread(main, [*argv, "--dry-run"]) == 0
    assert "would purge 1 events" in capsys.readouterr().out
    assert len(await remaining(store)) == 2

    assert await asyncio.to_thread(main, argv) == 0
    assert target.id not in await remaining(store)
    assert await count(store, "purges") == 2
