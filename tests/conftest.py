"""Shared fixtures: a real PostgreSQL, a migrated template database, recording targets.

The server is `HOOKGATE_TEST_DATABASE_URL` when set, else the one the PG* variables
describe when PGHOST is set, else an embedded PostgreSQL (pgserver) started for the
session. Migrations run once into a template; each test gets its own database copied
from it, so commits are real and visible across connections.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import keys
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.config import Config, parse_config
from gateway.plugins import Registry, Resources, load_registry
from gateway.relay.lanes import build_lanes
from gateway.relay.shares import SHARE_RENEW
from gateway.relay.worker import Relay
from gateway.server import GatewayRunner
from gateway.storage.migrate import migrate
from gateway.storage.store import Store


def with_database(dsn: str, name: str) -> str:
    """`dsn` pointing at database `name` (socket directories in the query are kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def require_service(name: str, url: str) -> str:
    """`url` if its host:port answers; otherwise skip, or fail when CI=true (CI must run it)."""
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 0), timeout=2
        ).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} at {url} is not reachable, and CI must run this test")
        pytest.skip(f"{name} at {url} is not reachable")
    return url


@pytest.fixture
def redis_url() -> str:
    return require_service(
        "Redis", os.environ.get("HOOKGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )


@pytest.fixture
def nats_url() -> str:
    return require_service(
        "NATS", os.environ.get("HOOKGATE_TEST_NATS_URL", "nats://127.0.0.1:4222")
    )


@pytest.fixture
def rabbitmq_url() -> str:
    return require_service(
        "RabbitMQ",
        os.environ.get("HOOKGATE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A DSN to a maintenance database on a real server we may create databases on."""
    if url := os.environ.get("HOOKGATE_TEST_DATABASE_URL"):
        yield url
    elif os.environ.get("PGHOST"):
        yield f"postgresql:///{os.environ.get('PGDATABASE', 'postgres')}"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            with tempfile.TemporaryDirectory(prefix="hookgate-test-pg-") as tmp:
                server = pgserver.get_server(Path(tmp), cleanup_mode="stop")
                try:
                    yield str(server.get_uri())
                finally:
                    server.cleanup()


async def _admin(server_dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(server_dsn: str) -> Iterator[str]:
    """The name of a database holding the migrated schema, created once per session."""
    name = f"hookgate_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def create() -> None:
        await _admin(server_dsn, f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(server_dsn, name))
        try:
            await migrate(conn)
            # The day partitions around FrozenClock's start, as the gateway's housekeeping
            # would make them: each test's app then finds them made instead of attaching
            # partitions while the test writes.
            await conn.execute("SELECT hookgate.ensure_partitions('2025-12-31', '2026-01-10')")
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(server_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test alone."""
    name = f"hookgate_t_{uuid.uuid4().hex[:12]}"
    await _admin(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield with_database(server_dsn, name)
    await _admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_database_url(server_dsn: str) -> AsyncIterator[str]:
    """A database with no hookgate schema at all."""
    name = f"hookgate_e_{uuid.uuid4().hex[:12]}"
    await _admin(server_dsn, f'CREATE DATABASE "{name}"')
    yield with_database(server_dsn, name)
    await _admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    yield Store(pool)
    await pool.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@dataclass
class Recorder:
    """A fake internal service: records every request; answers from a script, then 200."""

    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # when set on a test's behalf, requests wait for it
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self._arrived:
            self.requests.append((dict(request.headers), body))
            self._arrived.notify_all()
        if self.hold is not None:
            await self.hold.wait()
        status, headers, text = self.script.pop(0) if self.script else (200, {}, b"ok")
        return web.Response(status=status, headers=headers, body=text)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until `count` requests have arrived (fails the test after `timeout` seconds)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)


@dataclass
class Target:
    recorder: Recorder
    url: str


@pytest.fixture
def target(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> Callable[[], Awaitable[Target]]:
    """Start a recording target server: `t = await target(); t.url; t.recorder`."""

    async def start() -> Target:
        recorder = Recorder()
        app = web.Application(handler_args={"auto_decompress": False})  # record the wire bytes
        app.router.add_route("*", "/hook", recorder.handle)
        server = await aiohttp_server(app)
        return Target(recorder, str(server.make_url("/hook")))

    return start


def make_config(database_url: str, yaml_text: str = "", **env: str) -> Config:
    """A config from YAML text (sources/targets/routes), on `database_url`."""
    text = f"database: {{url: '{database_url}'}}\n" + yaml_text
    return parse_config(text, env=env)


class GatewayTestServer(TestServer):
    """The app on a real socket, served as `hookgate serve` serves it (`GatewayRunner`)."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        # Production never cancels a handler when its client leaves: neither do tests.
        kwargs.pop("handler_cancellation", None)
        return GatewayRunner(self.app, self.app[keys.CONFIG].server, **kwargs)


@pytest.fixture
def gateway(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], clock: FrozenClock
) -> Callable[[Config], Awaitable[TestClient[Any, Any]]]:
    """Run the whole app (ingress and relay) on the test's clock: `client = await gateway(cfg)`."""

    async def start(config: Config) -> TestClient[Any, Any]:
        return await aiohttp_client(GatewayTestServer(create_app(config, clock=clock)))

    return start


@asynccontextmanager
async def relay_for(
    store: Store,
    config: Config,
    clock: FrozenClock,
    worker: str = "w1",
    registry: Registry | None = None,
    **options: Any,
) -> AsyncIterator[Relay]:
    """A relay over `config`'s targets (their plugins from `registry`, the built-ins by
    default) with its own client session (jitter fixed at the middle); stopped, in-flight
    sends released and its lanes closed on exit. `options` go to `Relay` (metrics,
    alerting, ...)."""
    async with aiohttp.ClientSession() as session:
        lanes = build_lanes(config, registry or load_registry(), Resources(session, clock))
        relay = Relay(store, lanes, config.relay, clock, worker=worker, rand=lambda: 0.5,
                      **options)  # fmt: skip
        try:
            yield relay
        finally:
            await relay.stop(grace=5)
            await relay.close_lanes()


async def settle_shares(clock: FrozenClock, *relays: Relay) -> None:
    """Relays started together take their shares of each target's concurrency: the first
    takes all of it, and gives the others their parts at its next renewal (within
    SHARE_RENEW + SHARE_SOON in production). Call it while nothing is due."""
    for _ in range(3):
        for relay in relays:
            await relay.run_once()
        clock.advance(SHARE_RENEW)


@asynccontextmanager
async def hookgate_process(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`hookgate --log-json ARGS` as a real process (stdout and stderr piped), killed on
    exit if it is still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "--log-json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(
    port: int,
    timeout: float = 30,  # noqa: ASYNC109
    check: Callable[[], None] | None = None,
) -> None:
    """Until a hookgate on 127.0.0.1:`port` answers /readyz with 200; `check` runs before
    each try (to fail at once when the process has exited, say)."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            if check is not None:
                check()
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """`query`'s rows on a connection of its own: what any other client sees committed."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def until(check: Callable[[], Any], what: str) -> None:
    """Poll `check` (sync or async), bounded, until it is true: the relay is asynchronous."""
    for _ in range(500):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")
