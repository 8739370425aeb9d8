"""Retention: refused requests and dedupe keys are purged after their time."""

from __future__ import annotations

import datetime as dt

from gateway.ids import event_id
from gateway.storage.store import EventRecord, RejectedRecord

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def rejected(at: dt.datetime) -> RejectedRecord:
    return RejectedRecord(
        "gh", at, 401, "signature does not match", "POST", "/in/gh", "", [], b"x", None
    )


def keyed(at: dt.datetime, key: str) -> EventRecord:
    return EventRecord(
        event_id(at), "gh", None, at, "POST", "/in/gh", "", [], b"{}", None, [],
        dedupe_key=key, dedupe_until=at + dt.timedelta(hours=1),
    )  # fmt: skip


async def test_purge_removes_only_what_is_past_its_time(store):
    await store.insert_rejected([rejected(T0), rejected(T0 + dt.timedelta(days=8))])
    await store.insert_events([keyed(T0, "old")])
    await store.insert_events([keyed(T0 + dt.timedelta(hours=2), "new")])

    now = T0 + dt.timedelta(days=8, minutes=1)
    counts = await store.purge(now - dt.timedelta(days=7), T0 + dt.timedelta(hours=2))

    assert counts == (1, 1)
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM hookgate.rejected") == 1
        assert await conn.fetchval("SELECT key FROM hookgate.dedupe") == "new"
        assert await conn.fetchval("SELECT count(*) FROM hookgate.events") == 2  # events stay
