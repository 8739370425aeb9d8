"""Relay wake-ups after ingest commits: coalesced, at most one NOTIFY per interval."""

from __future__ import annotations

import asyncio

import asyncpg

from gateway.relay.listener import CHANNEL
from gateway.storage.notify import Notifier


async def test_a_burst_of_commits_sends_one_notify_and_one_for_the_rest(database_url, store):
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[2]))
    notifier = Notifier(store, interval=0.2)
    notifier.start()
    try:
        notifier.poke()
        await asyncio.wait_for(heard.get(), 10)  # the first commit wakes the relays at once
        for _ in range(50):  # commits during the interval share one NOTIFY after it
            notifier.poke()
        await asyncio.wait_for(heard.get(), 10)
        await notifier.stop()
        assert heard.empty()
    finally:
        await conn.close()


async def test_stop_sends_the_notify_still_owed(database_url, store):
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[2]))
    notifier = Notifier(store, interval=30)
    notifier.start()
    try:
        notifier.poke()
        await asyncio.wait_for(heard.get(), 10)
        notifier.poke()  # owed: the interval has not passed
        await notifier.stop()
        await asyncio.wait_for(heard.get(), 10)
    finally:
        await conn.close()
