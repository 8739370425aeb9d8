"""The relay wakes on NOTIFY, not on its poll, and its LISTEN connection comes back."""

from __future__ import annotations

import asyncio

import asyncpg
from conftest import make_config

from gateway.app import create_app

SLOW_POLL = """
relay: {{poll_interval: 50s}}
sources:
  shop: {{}}
targets:
  billing: {{url: "{url}"}}
routes:
  - {{source: shop, targets: [billing]}}
"""


async def kill_listener(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'hookgate-listener' AND datname = current_database()"
            )
        )
    finally:
        await conn.close()


async def kill_listener_once_connected(database_url: str) -> None:
    for _ in range(200):  # polls a server-side state for up to ~10 s
        if await kill_listener(database_url):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no hookgate listener connected within 10 s")


async def test_a_new_event_is_relayed_on_notify_without_waiting_for_the_poll(
    database_url, target, gateway
):
    sink = await target()
    client = await gateway(make_config(database_url, SLOW_POLL.format(url=sink.url)))
    await asyncio.sleep(0)  # let the relay reach its first wait
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    await sink.recorder.wait_for(1, timeout=10)  # the 50 s poll would be far too late


async def test_the_listener_reconnects_after_its_connection_is_killed(
    database_url, target, gateway
):
    sink = await target()
    client = await gateway(make_config(database_url, SLOW_POLL.format(url=sink.url)))
    await kill_listener_once_connected(database_url)
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    await sink.recorder.wait_for(1, timeout=10)
    await kill_listener_once_connected(database_url)  # it is listening again


async def test_a_burst_larger_than_concurrency_keeps_the_server_responsive(
    database_url, target, gateway
):
    sink = await target()
    sink.recorder.hold = asyncio.Event()  # every slot of the target stays busy
    config = make_config(
        database_url,
        f"""
sources: {{shop: {{}}}}
targets: {{billing: {{url: "{sink.url}", concurrency: 2}}}}
routes: [{{source: shop, targets: [billing]}}]
""",
    )
    client = await gateway(config)
    for _ in range(6):
        assert (await client.post("/in/shop", data=b"{}")).status == 202
    await sink.recorder.wait_for(2)
    async with asyncio.timeout(5):  # the relay waits for a free slot instead of spinning
        assert (await client.get("/healthz")).status == 200
        assert (await client.post("/in/shop", data=b"{}")).status == 202
    assert len(sink.recorder.requests) == 2
    sink.recorder.hold.set()
    await sink.recorder.wait_for(7)


FIFO_SLOW_POLL = """
relay: {{poll_interval: 50s}}
sources: {{shop: {{}}}}
targets:
  billing: {{url: "{url}", {extra}}}
routes: [{{source: shop, targets: [billing]}}]
"""


async def test_a_finish_that_frees_a_fifo_key_starts_the_next_without_waiting_for_the_poll(
    database_url, target, gateway
):
    sink = await target()
    extra = 'ordering: {key: "json:customer"}'
    client = await gateway(
        make_config(database_url, FIFO_SLOW_POLL.format(url=sink.url, extra=extra))
    )
    for n in range(3):
        body = b'{"customer": "cus_1", "n": %d}' % n
        assert (await client.post("/in/shop", data=body)).status == 202
    await sink.recorder.wait_for(3, timeout=10)  # one per poll would take 100 s
    assert [body for _, body in sink.recorder.requests] == [
        b'{"customer": "cus_1", "n": %d}' % n for n in range(3)
    ]


async def test_a_retry_goes_out_when_due_not_at_the_next_poll(database_url, target, aiohttp_client):
    sink = await target()
    sink.recorder.script.append((500, {}, b"down"))
    extra = "retry: {schedule: [200ms]}"
    config = make_config(database_url, FIFO_SLOW_POLL.format(url=sink.url, extra=extra))
    client = await aiohttp_client(create_app(config))  # the wall clock: the retry comes due
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    await sink.recorder.wait_for(2, timeout=10)  # the 50 s poll would be far too late
