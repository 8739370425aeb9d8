"""Running `hookgate serve` and `hookgate worker` until SIGTERM or SIGINT (SIGHUP reloads).

`serve` binds its listening sockets before anything else starts, so a port in use is
one clear line (and exit 1) rather than a traceback after the database came up. Once
started, each process prints what a person starting it needs: one line per listener,
the database in use (never its password), and the admin URL when the app has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from gateway import keys
from gateway.app import create_app
from gateway.config import Config
from gateway.errors import HookgateError
from gateway.ingress import scrape
from gateway.middleware import handle_errors
from gateway.reload import pid_file, reload
from gateway.server import GatewayRunner
from gateway.storage.connect import describe

log = structlog.get_logger("hookgate.serving")

ADMIN_PATH = "/admin"  # the inspector's entry page, wherever the admin surface is mounted


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int


def serve(
    config: Config,
    listen: Listen,
    announce: Callable[[str], None] | None = None,
    path: Path | None = None,
) -> int:
    """Ingress (and, if `relay.enabled`, the relay) on `listen`, until SIGTERM or SIGINT;
    SIGHUP reloads the config from `path`."""
    sockets = bind(listen)
    app = create_app(config)
    _install_uvloop()
    with _pid_file(config):
        asyncio.run(run(_production(app), config, sockets, announce or _print, path))
    return 0


def work(
    config: Config,
    announce: Callable[[str], None] | None = None,
    path: Path | None = None,
    metrics: Listen | None = None,
) -> int:
    """The relay alone, whatever `relay.enabled` says (that governs `serve`), until a signal;
    with `metrics`, its /metrics on that address (bound first, like `serve`'s port)."""
    announce = announce or _print
    sockets = bind(metrics, "--metrics-port") if metrics is not None else []
    app = create_app(config, ingress=False)
    if sockets:
        app.cleanup_ctx.append(_metrics_listener(sockets, announce))
    _install_uvloop()
    asyncio.run(run(_production(app), config, [], announce, path))
    return 0


def _metrics_listener(
    sockets: Sequence[socket.socket], announce: Callable[[str], None]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A worker's /metrics (its relay counters), on `sockets`, in an app of its own."""

    async def listener(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        metrics_app = web.Application(middlewares=[handle_errors])
        metrics_app[keys.CONFIG] = config
        metrics_app.router.add_get("/metrics", scrape.metrics_of(app, gauges=False))
        addresses = [sock.getsockname() for sock in sockets]
        runner = GatewayRunner(metrics_app, config.server, access_log=None)
        await runner.setup()
        try:
            for sock in sockets:
                await web.SockSite(runner, sock).start()
            for address in addresses:
                announce(f"metrics on {_url(address)} (GET /metrics)")
            yield
        finally:
            await runner.cleanup()
            for sock in sockets:
                sock.close()

    return listener


@contextlib.contextmanager
def _pid_file(config: Config) -> Iterator[None]:
    """`hookgate reload` finds this process by it; removed on the way out."""
    target = pid_file(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        yield
    finally:
        target.unlink(missing_ok=True)


def bind(listen: Listen, option: str = "server.port or --port") -> list[socket.socket]:
    """Bound sockets for every address `listen.host` resolves to; a clear error if taken."""
    try:
        infos = socket.getaddrinfo(
            listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise HookgateError(f"cannot listen on {listen.host}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sockets.append(_bound(family, kind, proto, address))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise HookgateError(_bind_problem(listen, exc, option)) from None
    return sockets


def _bound(family: int, kind: int, proto: int, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # as asyncio does: "::" must not also take 0.0.0.0
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address[:2])
    except OSError:
        sock.close()
        raise
    return sock


def _bind_problem(listen: Listen, exc: OSError, option: str) -> str:
    where = f"{listen.host}:{listen.port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the address is already in use (another hookgate? "
            f"choose another port with {option})"
        )
    return f"cannot listen on {where}: {(exc.strerror or str(exc)).lower()}"


async def run(
    app: web.Application,
    config: Config,
    sockets: Sequence[socket.socket],
    announce: Callable[[str], None],
    path: Path | None = None,
) -> None:
    """Start the app's resources and a site per socket, announce them, stop on a signal.

    SIGHUP reloads the config from `path`; without one (or before the app started) it is
    logged and ignored, never the default action (which would kill the process).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[bool]] = set()
    loop.add_signal_handler(signal.SIGHUP, _on_hangup, app, path, reloads)
    runner = GatewayRunner(
        app,
        config.server,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=75.0,
        shutdown_timeout=config.server.shutdown_timeout,
    )
    addresses = [sock.getsockname() for sock in sockets]  # uvloop takes the sockets over
    try:
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        for line in startup_lines(app, config, addresses):
            announce(line)
        await stop.wait()
    finally:
        await runner.cleanup()
        for sock in sockets:
            sock.close()


def _on_hangup(app: web.Application, path: Path | None, reloads: set[asyncio.Task[bool]]) -> None:
    if path is None or not app.frozen:
        log.warning(
            "config_reload_skipped", reason="no config file" if path is None else "starting"
        )
        return
    task = asyncio.get_running_loop().create_task(reload(app, path), name="reload")
    reloads.add(task)  # a reference until it ends, so it is not collected mid-way
    task.add_done_callback(reloads.discard)


def startup_lines(
    app: web.Application, config: Config, addresses: Sequence[tuple[str, int] | tuple[Any, ...]]
) -> list[str]:
    """What a started process tells the person who started it."""
    lines = [f"listening on {_url(address)}" for address in addresses]
    lines.append(f"database: {database_line(config)}")
    admin = admin_url(app, config, [_base(address) for address in addresses])
    if admin is not None:
        lines.append(f"admin: {admin}")
    if not addresses:
        lines.append(f"relaying to {len(config.targets)} targets (no listener: a worker)")
    return lines


def admin_url(app: web.Application, config: Config, urls: Sequence[str]) -> str | None:
    """Where the inspector is: its own listener (`admin.port`) or the first public one;
    None when the app has no admin surface (no admin token) or nothing serves it."""
    if keys.ADMIN_ACCESS not in app:
        return None
    if config.admin.port is not None:
        return f"{_base((config.admin.host, config.admin.port))}{ADMIN_PATH}"
    return f"{urls[0]}{ADMIN_PATH}" if urls else None


def database_line(config: Config) -> str:
    if config.database.url:
        return f"PostgreSQL at {describe(config.database.url)}"
    return f"embedded PostgreSQL under {(config.database.data_dir / 'pg').resolve()}"


def _url(address: tuple[Any, ...]) -> str:
    every = " (every interface)" if address[0] in ("0.0.0.0", "::") else ""
    return _base(address) + every


def _base(address: tuple[Any, ...]) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _print(line: str) -> None:
    # stdout: the logs go to stderr, as JSON when it is not a terminal.
    print(f"hookgate: {line}", flush=True)


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _freeze_heap(app: web.Application) -> None:
    """Full collections walked every long-lived object (pools, caches, modules) and
    stalled all requests for 20-30 ms at a time under load: freeze what exists once
    started, and collect the oldest generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def _production(app: web.Application) -> web.Application:
    app.on_startup.append(_freeze_heap)  # after the cleanup contexts have started
    return app
