"""The ingest writers' own connections: outside the pool, kept across batches, replaced
when the server cut one off (an outage's error, never a data error), kept after a
statement refused for its data."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from gateway.config import IngestConfig
from gateway.errors import StorageError, StorageUnavailable
from gateway.ids import delivery_id, event_id
from gateway.storage.batch import GroupCommit
from gateway.storage.store import EventRecord, Stored
from gateway.storage.writers import Connections

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PID = "SELECT pg_backend_pid() AS pid"


def record(kind: str = "order.paid") -> EventRecord:
    new_id = event_id(NOW)
    return EventRecord(
        id=new_id, source="shop", event_type=kind, received_at=NOW, method="POST",
        path="/in/shop", query="", headers=[("Content-Type", "application/json")],
        body=b'{"type": "order.paid"}', peer="203.0.113.7",
        deliveries=[(delivery_id(new_id, "billing"), "billing")],
    )  # fmt: skip


async def count(store, query: str) -> int:
    async with store.pool.acquire() as conn:
        return int(await conn.fetchval(query))


@pytest.fixture
async def connections(database_url):
    connections = Connections(database_url)
    yield connections
    await connections.close()


async def pid_of(connections: Connections) -> int:
    (row,) = await connections.fetch(PID)
    return int(row["pid"])


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll `condition` until it holds (a bound of 10 s, not a measurement)."""
    for _ in range(1000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def _gone(store, pid: int) -> bool:
    async with store.pool.acquire() as conn:
        return not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)


async def terminate(store, pid: int) -> None:
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)


async def test_batches_go_through_one_connection_of_their_own(store, connections):
    writer = GroupCommit.for_ingest(store.through(connections), IngestConfig(writers=1))
    writer.start()
    try:
        first = await writer.write(record())
        pid = await pid_of(connections)
        results = await asyncio.gather(*(writer.write(record()) for _ in range(20)))
    finally:
        await writer.stop()

    assert first.duplicate is False and all(r.duplicate is False for r in results)
    assert await pid_of(connections) == pid  # the same connection, batch after batch
    async with store.pool.acquire() as conn:
        in_pool = await conn.fetchval("SELECT pg_backend_pid()")
    assert pid != in_pool
    assert await count(store, "SELECT count(*) FROM hookgate.events") == 21


async def test_a_connection_cut_off_mid_statement_is_an_outage_then_replaced(store, connections):
    pid = await pid_of(connections)
    sleeping = asyncio.create_task(connections.fetch("SELECT pg_sleep(30)"))
    await until(lambda: _active(store, pid))  # the statement runs
    await terminate(store, pid)

    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(sleeping, 10)
    writer = GroupCommit.for_ingest(store.through(connections), IngestConfig(writers=1))
    writer.start()
    try:
        stored = await writer.write(rec := record())
    finally:
        await writer.stop()

    assert stored == Stored(rec.id)
    assert await pid_of(connections) != pid


async def _active(store, pid: int) -> bool:
    async with store.pool.acquire() as conn:
        state = await conn.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
    return bool(state == "active")


async def test_an_idle_connection_the_server_closed_costs_at_most_one_503(store, connections):
    pid = await pid_of(connections)
    await terminate(store, pid)
    await until(lambda: _gone(store, pid))

    outcomes: list[object] = []
    writer = GroupCommit.for_ingest(store.through(connections), IngestConfig(writers=1))
    writer.start()
    try:
        for _ in range(3):
            try:
                outcomes.append(await writer.write(record()))
            except StorageError as exc:
                outcomes.append(exc)
    finally:
        await writer.stop()

    failed = [o for o in outcomes if isinstance(o, StorageError)]
    assert len(failed) <= 1 and all(isinstance(o, StorageUnavailable) for o in failed)
    assert isinstance(outcomes[-1], Stored)
    assert await pid_of(connections) != pid


async def test_a_row_refused_for_its_data_keeps_the_connection(store, connections):
    pid = await pid_of(connections)
    writer = GroupCommit.for_ingest(store.through(connections), IngestConfig(writers=1))
    writer.start()
    try:
        with pytest.raises(StorageError) as refused:
            await writer.write(record("order.\x00paid"))  # text cannot hold NUL
        assert (await writer.write(rec := record())) == Stored(rec.id)
    finally:
        await writer.stop()

    assert not isinstance(refused.value, StorageUnavailable)
    assert await pid_of(connections) == pid
