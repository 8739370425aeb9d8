"""Encryption at rest on a real Postgres: sealed rows, every reader gets plaintext,
rotation, rekey, and refusing to start without a key rows still use."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os

import asyncpg
import pytest

from gateway.cli import main
from gateway.errors import EncryptionKeyMissing
from gateway.ids import delivery_id, event_id
from gateway.lifecycle import Erasure, Match, erase
from gateway.storage.purge import Purger
from gateway.storage.rekey import rekey
from gateway.storage.sealing import Sealer, check_keys
from gateway.storage.store import EventRecord, RejectedRecord, Store

K1, K2 = os.urandom(32), os.urandom(32)
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SECRET = b'{"customer": {"email": "ann@example.com"}}'


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def event(at: dt.datetime, body: bytes = SECRET) -> EventRecord:
    eid = event_id(at)
    return EventRecord(eid, "shop", "order", at, "POST", "/in/shop", "", [("X-Email", "ann")],
                       body, None, [(delivery_id(eid, "billing"), "billing")])  # fmt: skip


@pytest.fixture
async def pool(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def raw(pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT key_id, headers, body FROM hookgate.events ORDER BY id")


async def test_stored_rows_are_sealed_and_every_reader_gets_plaintext(pool):
    store = Store(pool, Sealer({"k1": K1}, "k1"))
    record = event(T0)
    await store.insert_events([record])
    await store.insert_rejected([RejectedRecord("shop", T0, 401, "bad", "POST", "/in/shop", "",
                                                [("X-Email", "ann")], SECRET, None)])  # fmt: skip

    (row,) = await raw(pool)
    assert row["key_id"] == "k1"
    assert b"ann@example.com" not in row["body"] and '"ann"' not in row["headers"]
    rejected = await pool.fetchrow("SELECT key_id, body FROM hookgate.rejected")
    assert rejected["key_id"] == "k1" and b"ann@example.com" not in rejected["body"]

    stored = await store.event(record.id)
    assert (stored["body"], stored["headers"]) == (SECRET, (("X-Email", "ann"),))
    (claimed,) = await store.claim({"billing": 10}, T0, 60.0, "w")
    assert (claimed.body, claimed.headers) == (SECRET, (("X-Email", "ann"),))


async def test_rotation_then_rekey_moves_every_row_to_the_active_key(pool):
    old = Store(pool, Sealer({"k1": K1}, "k1"))
    plain, sealed_old = event(T0, b"written before encryption"), event(T0 + dt.timedelta(seconds=1))
    await Store(pool).insert_events([plain])
    async with pool.acquire() as conn:
        await check_keys(conn, old.sealer, T0)
    await old.insert_events([sealed_old])
    rotated = Sealer({"k1": K1, "k2": K2}, "k2")
    new = Store(pool, rotated)
    sealed_new = event(T0 + dt.timedelta(seconds=2))
    await new.insert_events([sealed_new])
    assert [r["key_id"] for r in await raw(pool)] == [None, "k1", "k2"]

    async with pool.acquire() as conn:
        await check_keys(conn, rotated, T0)
        with pytest.raises(EncryptionKeyMissing):  # rows still on k1
            await check_keys(conn, Sealer({"k2": K2}, "k2"), T0)

    done = await rekey(pool, rotated, batch=2)

    assert done.events == 2  # the plaintext one and the k1 one
    assert [r["key_id"] for r in await raw(pool)] == ["k2", "k2", "k2"]
    only_k2 = Store(pool, Sealer({"k2": K2}, "k2"))
    async with pool.acquire() as conn:
        await check_keys(conn, only_k2.sealer, T0)  # k1 may go now
    assert (await only_k2.event(plain.id))["body"] == b"written before encryption"
    assert (await only_k2.event(sealed_old.id))["body"] == SECRET


async def test_erasure_matches_inside_encrypted_bodies(pool):
    store = Store(pool, Sealer({"k1": K1}, "k1"))
    wanted, other = event(T0), event(T0 + dt.timedelta(seconds=1), b'{"customer": {}}')
    await store.insert_events([wanted, other])
    await pool.execute("UPDATE hookgate.deliveries SET status = 'delivered'")
    erasure = Erasure(T0 + dt.timedelta(days=1), None,
                      (Match.parse("json:customer.email=ann@example.com"),))  # fmt: skip

    counts = await erase(Purger(pool, store.reveal), erasure, T0, "t")

    assert counts.events == 1
    assert [r["id"] for r in await pool.fetch("SELECT id FROM hookgate.events")] == [other.id]


async def test_rekey_command_reseals_rows_with_the_active_key(pool, database_url, tmp_path, capsys):
    await Store(pool, Sealer({"k1": K1}, "k1")).insert_events([event(T0)])
    path = tmp_path / "hookgate.yaml"
    path.write_text(
        f"database: {{url: '{database_url}'}}\n"
        f"encryption: {{keys: {{k1: '{b64(K1)}', k2: '{b64(K2)}'}}, active: k2}}\n"
    )

    assert await asyncio.to_thread(main, ["rekey", "--config", str(path)]) == 0

    assert "1 events and 0 refused requests now on key k2" in capsys.readouterr().out
    assert [r["key_id"] for r in await raw(pool)] == ["k2"]
    assert await pool.fetchval("SELECT array_agg(key_id) FROM hookgate.encryption_keys") == ["k2"]
