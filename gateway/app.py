"""`create_app(config)`: the aiohttp application and its long-lived resources.

Each resource is one cleanup context, entered in this order and left in reverse:
database (embedded server, migrations, pool) → ingest writer → HTTP client and relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from gateway import keys
from gateway.admin import setup as admin
from gateway.alerting import alerting_for
from gateway.clock import Clock, SystemClock
from gateway.config import Config
from gateway.contract.httpclient import HttpClient, Pool
from gateway.ingress import routes
from gateway.ingress.guard import Rejections, build_guards
from gateway.ingress.live import Live, Snapshot
from gateway.ingress.passthrough import PassThrough
from gateway.lifecycle import purge_forever
from gateway.logging import quiet_libraries
from gateway.metrics import Metrics
from gateway.middleware import handle_errors
from gateway.plugins import Registry, Resources, load_registry
from gateway.relay.lanes import build_lanes
from gateway.relay.listener import listen
from gateway.relay.worker import Relay, worker_name
from gateway.storage.batch import GroupCommit
from gateway.storage.connect import open_pool
from gateway.storage.embedded import embedded_postgres
from gateway.storage.migrate import migrate
from gateway.storage.notify import Notifier
from gateway.storage.purge import Purger
from gateway.storage.sealing import Sealer, check_keys
from gateway.storage.store import RELAY_SESSION, ProxyAnswer, Store, translated
from gateway.storage.writers import Connections
from gateway.tracing import Tracing, from_environment

log = structlog.get_logger("hookgate.app")
RELAY_CONNECTIONS = 3  # two claims under way, results; a pause or a release now and then


def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    registry: Registry | None = None,
    ingress: bool = True,
    tracing: Tracing | None = None,
) -> web.Application:
    """The gateway: public ingress (unless `ingress` is False) and the relay.

    `relay.enabled` governs a process with ingress; one without ingress (`hookgate
    worker`) exists to relay, and always does. Traces go to `tracing` if given, else
    to the OTLP endpoint the environment names, if any (gateway/tracing.py).
    """
    quiet_libraries()  # also when mounted in another app that set up logging its own way
    front = ingress and config.upstream is not None
    clock = clock or SystemClock()
    access = admin.access_for(config, clock)
    app = web.Application(
        middlewares=[handle_errors, *admin.middlewares(config, access)],
        # After a 413 aiohttp keeps reading (and dropping) the rest of the body for
        # lingering_time seconds; 1 s lets the client read the answer, then we close.
        # auto_decompress: hookgate stores and verifies the bytes on the wire; it
        # inflates a copy itself, bounded, where routing needs the JSON.
        handler_args={"max_field_size": 16384, "lingering_time": 1.0, "auto_decompress": False},
    )
    app[keys.CONFIG] = config
    app[keys.CLOCK] = clock
    app[keys.REGISTRY] = registry or load_registry()
    app[keys.METRICS] = Metrics()
    tracing = tracing or from_environment()
    if tracing is not None:
        app[keys.TRACING] = tracing
        app.on_cleanup.append(_close_tracing)
    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(http_client)
    if ingress:
        app.cleanup_ctx.append(ingest_writer)
        app.cleanup_ctx.append(housekeeping)
        if front:
            app.cleanup_ctx.append(upstream_client)
        routes.setup(app)
    if config.relay.enabled or not ingress:
        app.cleanup_ctx.append(relay)
    if ingress:
        admin.setup(app, config, access)
    if front:
        routes.add_pass_through(app)  # last: it catches whatever no other route matched
    return app


async def _close_tracing(app: web.Application) -> None:
    await app[keys.TRACING].close()


async def database(app: web.Application) -> AsyncIterator[None]:
    """The pool, after starting the embedded server if needed and migrating."""
    config = app[keys.CONFIG].database
    async with contextlib.AsyncExitStack() as stack:
        dsn: str = config.url or ""
        if not dsn:
            dsn = await stack.enter_async_context(embedded_postgres(config.data_dir))
        pool = await open_pool(dsn, config.pool_size, config.connect_timeout)
        stack.push_async_callback(pool.close)
        encryption = app[keys.CONFIG].encryption
        sealer = Sealer(encryption.keys, encryption.active)
        async with translated(), pool.acquire() as conn:
            await migrate(conn)
            await check_keys(conn, sealer, dt.datetime.now(dt.UTC))
        app[keys.DSN] = dsn
        app[keys.STORE] = Store(pool, sealer)
        yield


async def http_client(app: web.Application) -> AsyncIterator[None]:
    """The one client session (verifiers that fetch keys) and the one delivery client
    (http targets: keep-alive pools, a fraction of a session's CPU per request)."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=60)
    # No cookie jar: a cookie one target sets must not go out with later deliveries.
    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        client = HttpClient()
        app[keys.HTTP] = session
        app[keys.RESOURCES] = Resources(session, app[keys.CLOCK], client)
        try:
            yield
        finally:
            await client.close()


async def upstream_client(app: web.Application) -> AsyncIterator[None]:
    """The pass-through's own keep-alive pool to the upstream (gateway/contract/httpclient.py:
    bytes pass unchanged), and an aiohttp session for its websockets."""
    config = app[keys.CONFIG]
    assert config.upstream is not None
    pool = Pool(config.upstream.url, connections=config.upstream.connections)
    connector = aiohttp.TCPConnector(limit=config.upstream.connections, ttl_dns_cache=60)
    timeout = aiohttp.ClientTimeout(total=None)  # the pass-through bounds its own waits
    async with aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        app[keys.UPSTREAM] = PassThrough(
            config.upstream,
            pool,
            session,
            config.server.trusted_proxies,
            body_timeout=config.server.body_timeout,
        )
        try:
            yield
        finally:
            await pool.close()


async def ingest_writer(app: web.Application) -> AsyncIterator[None]:
    """Source guards, group commit, the relay wake-ups, and the rejected-request log."""
    config = app[keys.CONFIG]
    guards = build_guards(config, app[keys.REGISTRY], app[keys.RESOURCES])
    app[keys.LIVE] = Live(Snapshot(config, guards))
    # The writers' and the notifier's own connections: no pool acquire, no reset.
    connections = Connections(app[keys.DSN])
    own = app[keys.STORE].through(connections)
    notifier = Notifier(own)
    rejections = Rejections(app[keys.STORE], config.rejected, app[keys.CLOCK])
    writer = GroupCommit.for_ingest(own, config.ingest, notifier, app[keys.METRICS].committed)
    answers = _proxy_answers(app[keys.STORE])
    for part in (notifier, rejections, writer, answers):
        part.start()
    app[keys.REJECTIONS] = rejections
    app[keys.INGEST] = writer
    app[keys.PROXY_ANSWERS] = answers
    yield
    for part in (writer, answers, rejections, notifier):
        await part.stop()
    await connections.close()


def _proxy_answers(store: Store) -> GroupCommit[ProxyAnswer, None]:
    worker = f"proxy:{worker_name()}"
    return GroupCommit.for_writes(lambda answers: store.insert_proxy_answers(answers, worker))


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Retention: events, refused requests and dedupe keys past their time."""
    purger = Purger(app[keys.STORE].pool, app[keys.STORE].reveal)
    actor = f"retention:{worker_name()}"
    task = asyncio.create_task(
        purge_forever(purger, app[keys.CONFIG], app[keys.CLOCK], actor), name="housekeeping"
    )
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def relay(app: web.Application) -> AsyncIterator[None]:
    """The relay loop and its LISTEN connection."""
    config = app[keys.CONFIG]
    lanes = build_lanes(config, app[keys.REGISTRY], app[keys.RESOURCES])
    # The relay's own few connections, without the pool's reset query on release: every
    # claim and every batch of results is one statement, so one round trip, not two. By
    # default they commit without waiting for the WAL flush (relay.synchronous_commit):
    # the claims' advisory locks and the targets' rows are then held for the statement
    # only, and a database crash costs a duplicate delivery, never a lost one.
    commit = "on" if config.relay.synchronous_commit else "off"
    settings = {**RELAY_SESSION, "synchronous_commit": commit}
    pool = await open_pool(app[keys.DSN], RELAY_CONNECTIONS, config.database.connect_timeout,
                           reset=False, settings=settings)  # fmt: skip
    store = Store(pool, app[keys.STORE].sealer)
    alerting = alerting_for(config, store, app[keys.METRICS])
    worker = Relay(
        store,
        lanes,
        config.relay,
        app[keys.CLOCK],
        metrics=app[keys.METRICS],
        alerting=alerting,
        tracing=app.get(keys.TRACING),
    )
    app[keys.RELAY] = worker
    tasks = [
        asyncio.create_task(worker.run(), name="relay"),
        asyncio.create_task(listen(app[keys.DSN], worker.wake), name="relay-listener"),
    ]
    if alerting is not None:  # backlog thresholds, and breakers other relays opened
        watch = alerting.watch(sorted(lanes), app[keys.CLOCK], worker.saw_open_breakers)
        tasks.append(asyncio.create_task(watch, name="relay-alert-check"))
    log.info("relay_started", worker=worker.worker, targets=sorted(lanes))
    yield
    await worker.stop(config.server.shutdown_timeout)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await worker.close_lanes()  # those a reload swapped in, and any it replaced
    await pool.close()
