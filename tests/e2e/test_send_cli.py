"""`hookgate send`, the real command, against the whole app: two samples are two events;
the same `--id` twice is one event and a duplicate."""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg
from conftest import make_config

SECRET = "whsec_test_secret"


async def send(url: str, *extra: str) -> tuple[int, dict[str, object]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "send", "stripe", url, "--secret", SECRET, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    status, _, answer = out.decode().partition(" ")
    assert process.returncode == 0, err.decode()
    return int(status), json.loads(answer)


async def test_two_sends_are_two_events_and_a_pinned_id_is_a_duplicate(
    database_url, aiohttp_server
):
    from gateway.app import create_app

    config = make_config(
        database_url,
        f"sources: {{stripe: {{verify: {{type: stripe, secret: {SECRET}}}, event_type: json:type}}}}\n",
    )
    server = await aiohttp_server(create_app(config))
    url = str(server.make_url("/in/stripe"))
    first, second = await send(url), await send(url)
    assert (first[0], second[0]) == (202, 202)
    assert first[1]["id"] != second[1]["id"]

    pinned = await send(url, "--id", "evt_same")
    again = await send(url, "--id", "evt_same")
    assert pinned[0] == 202
    assert again == (200, {"id": pinned[1]["id"], "duplicate": True})
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM hookgate.events") == 3
    finally:
        await conn.close()
