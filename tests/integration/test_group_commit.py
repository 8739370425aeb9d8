"""Group commit: concurrent writes share transactions; a failed batch fails only its callers.

Batching is made deterministic by queueing every write (`asyncio.gather` schedules them
all before a writer task runs again) and bounding batches with `max_batch_rows`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from structlog.testing import capture_logs

from gateway.config import IngestConfig
from gateway.errors import StorageError, StorageUnavailable
from gateway.ids import delivery_id, event_id
from gateway.ingress.request import event_type
from gateway.sources import Extractor
from gateway.storage.batch import GroupCommit
from gateway.storage.store import EventRecord, Store, Stored

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def record(kind: str | None = "order.paid") -> EventRecord:
    new_id = event_id(NOW)
    return EventRecord(
        id=new_id,
        source="shop",
        event_type=kind,
        received_at=NOW,
        method="POST",
        path="/in/shop",
        query="",
        headers=[("Content-Type", "application/json")],
        body=b'{"type": "order.paid"}',
        peer="203.0.113.7",
        deliveries=[
            (delivery_id(new_id, "billing"), "billing"),
            (delivery_id(new_id, "audit"), "audit"),
        ],
    )


async def count(store: Store, query: str) -> int:
    async with store.pool.acquire() as conn:
        value: int = await conn.fetchval(query)
        return value


async def test_concurrent_writes_share_transactions(store):
    writer = GroupCommit.for_ingest(store, IngestConfig(writers=2))
    writer.start()
    try:
        await asyncio.gather(*(writer.write(record()) for _ in range(200)))
    finally:
        await writer.stop()

    assert await count(store, "SELECT count(*) FROM hookgate.events") == 200
    assert await count(store, "SELECT count(*) FROM hookgate.deliveries") == 400
    transactions = await count(store, "SELECT count(DISTINCT xmin::text) FROM hookgate.events")
    assert transactions < 200


async def test_a_row_the_database_rejects_fails_only_its_own_caller(store):
    writer = GroupCommit.for_ingest(store, IngestConfig(writers=1, max_batch_rows=5))
    bad = record("order.\x00paid")  # text columns reject NUL: written as-is, it must fail
    batch = [record(), record(), bad, record(), record()]
    kept = [record() for _ in range(5)]
    writer.start()
    try:
        results = await asyncio.gather(
            *(writer.write(r) for r in [*batch, *kept]), return_exceptions=True
        )
    finally:
        await writer.stop()

    assert isinstance(results[2], StorageError)
    stored_ids = [r.id for i, r in enumerate([*batch, *kept]) if i != 2]
    assert [r for i, r in enumerate(results) if i != 2] == [Stored(i) for i in stored_ids]
    async with store.pool.acquire() as conn:
        stored = {row["id"] for row in await conn.fetch("SELECT id FROM hookgate.events")}
        orphans = await conn.fetchval(
            "SELECT count(*) FROM hookgate.deliveries AS d"
            " WHERE NOT EXISTS (SELECT FROM hookgate.events AS e WHERE e.id = d.event_id)"
        )
        deliveries = await conn.fetchval("SELECT count(*) FROM hookgate.deliveries")
    assert stored == {r.id for r in [*batch, *kept] if r is not bad}
    assert orphans == 0
    assert deliveries == 18  # two per stored event, none for the refused one


MARK = "Sekr1tMarker"  # in a body a crashing write quotes: never in a log line


async def test_a_crashed_batch_is_logged_once_by_type_and_place_never_by_its_message(capsys):
    async def write_with_a_bug(records: list[EventRecord]) -> list[Stored]:
        raise RuntimeError(f"cannot write {records[-1].body!r}")

    writer = GroupCommit(write_with_a_bug, writers=1)
    marked = dataclasses.replace(record(), body=f'{{"token": "{MARK}"}}'.encode())
    writer.start()
    try:
        with capture_logs() as logs:
            results = await asyncio.gather(
                writer.write(record()), writer.write(marked), return_exceptions=True
            )
        capsys.readouterr()
        with pytest.raises(StorageError):  # again, through the renderer
            await writer.write(marked)
    finally:
        await writer.stop()
    rendered = capsys.readouterr()
    assert [type(r) for r in results] == [StorageError, StorageError]  # both callers told
    assert {str(r) for r in results} == {"batch write failed: RuntimeError"}
    crashed = [e for e in logs if e["event"] == "batch_write_crashed"]
    assert [(e["log_level"], e["rows"]) for e in crashed] == [("error", 2)]  # one per batch
    (line,) = crashed
    assert line["error"] == "builtins.RuntimeError"
    assert line["frames"][-1].endswith(" in write_with_a_bug")
    assert "exc_info" not in line  # no rendered traceback: it would carry the message
    assert MARK not in repr(logs)
    assert "batch_write_crashed" in rendered.out + rendered.err
    assert MARK not in rendered.out + rendered.err


async def test_a_write_after_stop_is_refused_not_left_waiting(store):
    writer = GroupCommit.for_ingest(store, IngestConfig(writers=1))
    writer.start()
    await writer.stop()
    with pytest.raises(StorageUnavailable):
        await writer.write(record())


async def test_stop_answers_every_queued_caller(store):
    writer = GroupCommit.for_ingest(store, IngestConfig(writers=1, max_batch_rows=7))
    writer.start()
    writes = [asyncio.create_task(writer.write(record())) for _ in range(50)]
    await asyncio.sleep(0)  # not a wait for time: lets every write queue up

    await writer.stop()

    assert all(task.done() for task in writes)
    assert all(task.result().duplicate is False for task in writes)
    assert await count(store, "SELECT count(*) FROM hookgate.events") == 50


@pytest.mark.parametrize("writers", [1, 3])
async def test_stop_with_nothing_queued_returns(store, writers):
    writer = GroupCommit.for_ingest(store, IngestConfig(writers=writers))
    writer.start()
    async with asyncio.timeout(5):
        await writer.stop()
    assert await count(store, "SELECT count(*) FROM hookgate.events") == 0


async def test_a_json_event_type_holding_u0000_is_stored_with_its_batch(store):
    kind = event_type(Extractor("json", "type"), {}, b'{"type": "order.\\u0000paid"}')
    writer = GroupCommit.for_ingest(store, IngestConfig(writers=1))
    records = [record(), record(kind), record()]
    writer.start()
    try:
        results = await asyncio.gather(*(writer.write(r) for r in records), return_exceptions=True)
    finally:
        await writer.stop()

    assert results == [Stored(r.id) for r in records]
    assert await count(store, "SELECT count(*) FROM hookgate.events") == 3


async def test_two_replicas_batches_sharing_dedupe_keys_queue_instead_of_deadlocking(store):
    """Two ingest processes' batches carrying the same provider ids in opposite orders:
    each key is taken once and Postgres reports no deadlock."""

    def keyed(key: str) -> EventRecord:
        return dataclasses.replace(record(), dedupe_key=key, dedupe_until=NOW + HOUR)

    async def deadlocks() -> int:
        return await count(store, "SELECT deadlocks FROM pg_stat_database "
                                  "WHERE datname = current_database()")  # fmt: skip

    before = await deadlocks()
    for round_ in range(4):
        keys = [f"evt_{round_}_{n:03d}" for n in range(500)]
        forward, backward = [keyed(k) for k in keys], [keyed(k) for k in reversed(keys)]
        refused = await asyncio.gather(store.insert_events(forward), store.insert_events(backward))
        assert len(refused[0]) + len(refused[1]) == len(keys)  # each key has one holder
    assert await count(store, "SELECT count(*) FROM hookgate.dedupe") == 2000
    assert await deadlocks() == before
