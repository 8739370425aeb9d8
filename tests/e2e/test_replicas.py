"""The scale model, proven with real processes: 2 `hookgate serve` (relay off) and 2
`hookgate worker` on one Postgres. Events go through both servers while one worker is
killed with SIGKILL and one server is restarted; then the database and the target are
reconciled: every 202'd event stored and delivered at least once, no attempt sent from
two places at once, attempt counts consistent, no lease left dangling."""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from test_lifecycle import free_port, wait_ready

EVENTS = 2000
SENDERS = 16


def config(path: Path, database_url: str, target_url: str, port: int, relay: bool) -> Path:
    path.write_text(
        f"""
database: {{url: "{database_url}", pool_size: 4}}
server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: 2s}}
relay: {{enabled: {str(relay).lower()}, lease: 3s, poll_interval: 100ms}}
sources:
  shop: {{event_type: "json:type", dedupe: {{key: "json:n", window: 1h}}}}
targets:
  billing:
    url: "{target_url}"
    timeout: 1s
    concurrency: 16
    retry: {{schedule: [100ms, 200ms, 500ms, 1s, 1s, 2s, 2s, 2s, 2s, 2s]}}
routes:
  - {{source: shop, targets: [billing]}}
"""
    )
    return path


@asynccontextmanager
async def process(log: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A hookgate process whose output goes to a file (a pipe nobody reads would block it)."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "--log-level", "warning", *args,
            stdout=out, stderr=out,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


class Provider:
    """Sends each event until some server answers 202 (or 200 for a duplicate), as a
    provider retries; remembers the event id it was given."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.accepted: dict[int, str] = {}
        self.retries = 0

    async def send(self, session: aiohttp.ClientSession, n: int) -> None:
        body = f'{{"type": "order.paid", "n": {n}}}'.encode()
        for attempt in range(200):
            port = self.ports[(n + attempt) % len(self.ports)]
            try:
                async with session.post(f"http://127.0.0.1:{port}/in/shop", data=body) as r:
                    if r.status in (200, 202):
                        self.accepted[n] = (await r.json())["id"]
                        return
            except aiohttp.ClientError:
                pass
            self.retries += 1
            await asyncio.sleep(0.05)
        raise AssertionError(f"event {n} was never accepted")

    async def send_all(self, numbers: range) -> None:
        queue = collections.deque(numbers)
        async with aiohttp.ClientSession() as session:

            async def sender() -> None:
                while queue:
                    await self.send(session, queue.popleft())

            await asyncio.gather(*(sender() for _ in range(SENDERS)))


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        return await proc.wait()


@pytest.mark.timeout(150)
async def test_two_servers_and_two_workers_survive_a_kill_and_a_restart(
    tmp_path, database_url, target
):
    sink = await target()
    ports = [free_port(), free_port()]
    serve = [config(tmp_path / f"serve{i}.yaml", database_url, sink.url, p, False)
             for i, p in enumerate(ports)]  # fmt: skip
    work = config(tmp_path / "worker.yaml", database_url, sink.url, free_port(), True)
    provider = Provider(ports)
    logs = tmp_path / "logs"
    logs.mkdir()
    async with (
        process(logs / "a.log", "serve", "--config", str(serve[0])) as a,
        process(logs / "b.log", "serve", "--config", str(serve[1])) as b,
        process(logs / "w1.log", "worker", "--config", str(work)) as w1,
        process(logs / "w2.log", "worker", "--config", str(work)) as w2,
    ):
        await asyncio.gather(*(wait_ready(p) for p in ports))
        await provider.send_all(range(0, EVENTS // 3))
        await sink.recorder.wait_for(50, timeout=60)
        # The rest is sent meanwhile: the first third may all be delivered already, and
        # the worker must be holding leases when it is killed.
        sending = asyncio.create_task(provider.send_all(range(EVENTS // 3, EVENTS)))
        survivor = await kill_while_sending(database_url, [w1, w2], sink.recorder)
        assert await stop(b) == 0  # restarted while the provider keeps sending
        async with process(logs / "b2.log", "serve", "--config", str(serve[1])) as b2:
            await wait_ready(ports[1])
            await sending
            await wait_until_delivered(database_url, EVENTS, timeout=90)
            assert await stop(b2) == 0
        assert await stop(survivor) == 0
        assert await stop(a) == 0
    await reconcile(database_url, provider, sink.recorder.requests)


async def poll(database_url: str, sql: str, *args, until, timeout: float):  # noqa: ASYNC109
    """`sql`'s value once it satisfies `until` (the test fails after `timeout` seconds)."""
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await conn.fetchval(sql, *args)
                if until(value):
                    return value
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def kill_while_sending(database_url: str, workers, recorder):
    """SIGKILL the first of `workers` seen holding leases (the target holds its answers
    meanwhile), so they must run out and those deliveries go again from the other
    worker; that other one. (Both share the target's concurrency, so the one that
    claimed first may hold every slot while the other waits.)"""
    recorder.hold = asyncio.Event()
    holder = (
        "SELECT worker FROM hookgate.deliveries WHERE status = 'in_flight' AND worker IS NOT NULL"
        " LIMIT 1"
    )
    name = await poll(database_url, holder, until=bool, timeout=30)
    (victim,) = [w for w in workers if f":{w.pid}:" in name]
    victim.kill()
    await victim.wait()
    recorder.hold.set()
    recorder.hold = None
    (survivor,) = [w for w in workers if w is not victim]
    return survivor


async def wait_until_delivered(database_url: str, events: int, timeout: float) -> None:  # noqa: ASYNC109
    done = "SELECT count(*) FROM hookgate.deliveries WHERE status = 'delivered'"
    await poll(database_url, done, until=lambda n: n >= events, timeout=timeout)


async def reconcile(database_url: str, provider: Provider, received: list) -> None:
    assert sorted(provider.accepted) == list(range(EVENTS))
    conn = await asyncpg.connect(database_url)
    try:
        stored = {str(r["id"]) for r in await conn.fetch("SELECT id FROM hookgate.events")}
        deliveries = await conn.fetch(
            "SELECT id, event_id, status, attempts FROM hookgate.deliveries"
        )
        attempts = await conn.fetch("SELECT delivery_id, attempt, outcome FROM hookgate.attempts")
    finally:
        await conn.close()
    assert set(provider.accepted.values()) == stored  # every 202 stored, nothing else
    assert len(deliveries) == EVENTS and {d["status"] for d in deliveries} == {"delivered"}
    assert "LEASE_EXPIRED" in {a["outcome"] for a in attempts}  # the kill cost leases
    by_delivery = collections.defaultdict(list)
    for a in attempts:
        by_delivery[str(a["delivery_id"])].append(a)
    for d in deliveries:  # attempts numbered 1..n, each closed, exactly one succeeded
        mine = sorted(by_delivery[str(d["id"])], key=lambda a: a["attempt"])
        assert [a["attempt"] for a in mine] == list(range(1, d["attempts"] + 1)), d
        assert None not in {a["outcome"] for a in mine}, mine  # no lease left dangling
        assert [a["outcome"] for a in mine][-1] == "HTTP_2XX", mine
    sent = collections.Counter(
        (h["X-Hookgate-Delivery-Id"], h["X-Hookgate-Attempt"]) for h, _ in received
    )
    assert max(sent.values()) == 1  # no attempt was ever in flight in two places
    delivered = {h["X-Hookgate-Event-Id"] for h, _ in received}
    assert delivered == stored  # each delivered at least once
    counts = {str(d["id"]): d["attempts"] for d in deliveries}
    for (delivery, attempt), _ in sent.items():
        assert int(attempt) <= counts[delivery]
