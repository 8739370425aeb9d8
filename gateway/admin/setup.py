"""Mounting the admin surface: on the public listener under /admin, or on its own.

Without any token nothing is mounted and start-up says so once. With `admin.port` the
public application serves no /admin route at all; a second application on
`admin.host:admin.port` does, sharing the gateway's pool, config and clock, and serves
/metrics too (without a token: see gateway/ingress/scrape.py).
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway import keys
from gateway.admin import api, login
from gateway.admin.auth import Access, admin_guard
from gateway.admin.feeder import ReplayFeeder
from gateway.admin.model import AdminModel
from gateway.admin.stream import Stream
from gateway.alerting import alerting_for
from gateway.clock import Clock
from gateway.config import Config
from gateway.errors import HookgateError
from gateway.ingress import scrape
from gateway.middleware import handle_errors
from gateway.server import GatewayRunner
from gateway.storage.replay import Replays
from gateway.ui import pages

log = structlog.get_logger("hookgate.admin")


def access_for(config: Config, clock: Clock) -> Access | None:
    admin = config.admin
    if not admin.enabled:
        return None
    return Access(admin.tokens, clock, admin.session_ttl, admin.login_attempts)


def middlewares(config: Config, access: Access | None) -> list[Middleware]:
    """What the public application needs in front of its routes for the admin surface."""
    if access is None or config.admin.port is not None:
        return []
    return [admin_guard(access, config.server.trusted_proxies, config.server.body_timeout)]


def add_routes(app: web.Application) -> None:
    """Every /admin route: login and logout, the JSON API, then the inspector's pages
    (which also render the login form)."""
    router = app.router
    router.add_get("/admin/login", login.login_page)
    router.add_post("/admin/login", login.login)
    router.add_post("/admin/logout", login.logout)
    api.add_routes(router)
    pages.add_pages(app)
    app[keys.LOGIN_FORM] = pages.login_page


def setup(app: web.Application, config: Config, access: Access | None) -> None:
    """Mount the admin surface on `app` or on its own listener (see the module docstring).
    The replay feeder runs either way, so replays queued earlier always drain."""
    app.cleanup_ctx.append(replay_feeder)
    if access is None:
        app.on_startup.append(_say_disabled)
        return
    app[keys.ADMIN_ACCESS] = access
    app.cleanup_ctx.append(admin_model)
    app.on_shutdown.append(_end_streams)
    if config.admin.port is None:
        add_routes(app)
    else:
        app.cleanup_ctx.append(admin_listener)


async def _end_streams(app: web.Application) -> None:
    """Open /admin/api/stream answers end when shutdown starts, not after its timeout."""
    await app[keys.ADMIN_STREAM].close()


async def _say_disabled(app: web.Application) -> None:
    log.info("admin_disabled", reason="no admin token configured (admin.tokens)")


async def admin_model(app: web.Application) -> AsyncIterator[None]:
    """The model over the gateway's store, and the live stream's poller."""
    feeder = app[keys.REPLAY_FEEDER]
    config = app[keys.CONFIG]
    alerting = alerting_for(config, app[keys.STORE], app[keys.METRICS])
    model = AdminModel(
        app[keys.STORE], config, app[keys.CLOCK], feeder.wake, app[keys.REGISTRY], alerting
    )
    app[keys.ADMIN_MODEL] = model
    app[keys.ADMIN_STREAM] = Stream(model.store, app[keys.CLOCK])
    yield
    await app[keys.ADMIN_STREAM].close()


async def replay_feeder(app: web.Application) -> AsyncIterator[None]:
    """The task that lets bulk-replayed deliveries into the queue (gateway/admin/feeder.py)."""
    feeder = ReplayFeeder(Replays(app[keys.STORE].pool), app[keys.CONFIG], app[keys.CLOCK])
    app[keys.REPLAY_FEEDER] = feeder
    task = asyncio.create_task(feeder.run(), name="replay-feeder")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def admin_listener(app: web.Application) -> AsyncIterator[None]:
    """A second application serving only /admin and /metrics, on admin.host:admin.port."""
    config = app[keys.CONFIG]
    access = app[keys.ADMIN_ACCESS]
    admin_app = web.Application(
        middlewares=[
            handle_errors,
            admin_guard(access, config.server.trusted_proxies, config.server.body_timeout),
        ],
        handler_args={"max_field_size": 16384, "lingering_time": 1.0},
    )
    admin_app[keys.CONFIG] = config
    admin_app[keys.CLOCK] = app[keys.CLOCK]
    admin_app[keys.STORE] = app[keys.STORE]
    admin_app[keys.ADMIN_ACCESS] = access
    admin_app[keys.ADMIN_MODEL] = app[keys.ADMIN_MODEL]
    admin_app[keys.ADMIN_STREAM] = app[keys.ADMIN_STREAM]
    admin_app[keys.REPLAY_FEEDER] = app[keys.REPLAY_FEEDER]
    add_routes(admin_app)
    admin_app.router.add_get("/metrics", scrape.metrics_of(app))
    # The public listener's protections (connection cap, slow-client timeouts) apply here too.
    runner = GatewayRunner(admin_app, config.server, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.admin.host, config.admin.port).start()
    except OSError as exc:
        await runner.cleanup()
        where = f"{config.admin.host}:{config.admin.port}"
        raise HookgateError(f"cannot listen on {where}: {_bind_reason(exc)}") from None
    log.info("admin_listening", host=config.admin.host, port=config.admin.port)
    yield
    await runner.cleanup()


def _bind_reason(exc: OSError) -> str:
    """Said as `serve` says it of its own port (asyncio's text repeats the address)."""
    if exc.errno == errno.EADDRINUSE:
        return (
            "the address is already in use (another hookgate? choose another port with admin.port)"
        )
    return f"{os.strerror(exc.errno).lower() if exc.errno else str(exc)} (admin.port)"
