"""The `hookgate` command: serve, worker, migrate, check."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import getpass
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from gateway import keys
from gateway import logging as hg_logging
from gateway.app import create_app, database
from gateway.clock import SystemClock
from gateway.config import Config, load_config
from gateway.errors import HookgateError
from gateway.server import serve
from gateway.storage.store import Store

DEFAULT_CONFIG = "hookgate.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hookgate` console script."""
    args = _parser().parse_args(argv)
    if args.run not in (_check, _send):
        hg_logging.configure(args.log_level, json=args.log_json)
    try:
        code: int = args.run(args)
        return code
    except HookgateError as exc:
        print(f"hookgate: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookgate", description=__doc__)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-json", action=argparse.BooleanOptionalAction, default=None)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for name, run, text in [
        ("serve", _serve, "run ingress and (unless relay.enabled is false) the relay"),
        ("worker", _worker, "run the relay alone"),
        ("migrate", _migrate, "bring the database schema up to date, then exit"),
    ]:
        command = commands.add_parser(name, help=text)
        command.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
        command.set_defaults(run=run)
    serve = commands.choices["serve"]
    serve.add_argument("--host", help="overrides server.host")
    serve.add_argument("--port", type=int, help="overrides server.port")
    send = commands.add_parser("send", help="sign a sample webhook as a provider would and POST it")
    send.add_argument("type", help="verifier type, e.g. stripe, github, slack")
    send.add_argument("url", help="e.g. http://127.0.0.1:8080/in/stripe")
    send.add_argument("--secret", action="append", default=[], help="the shared secret")
    send.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                      help="another verify option, e.g. -o verify_token=abc")  # fmt: skip
    send.add_argument(
        "--body", help="a file with the body to send, - for stdin (default: a sample)"
    )
    send.add_argument("--content-type")
    send.set_defaults(run=_send)
    for name, run, text in [
        (
            "pause",
            _pause,
            "stop relaying to a target (its deliveries wait, keeping their attempts)",
        ),
        ("resume", _resume, "relay to a paused target again"),
    ]:
        command = commands.add_parser(name, help=text)
        command.add_argument("target")
        command.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
        if name == "pause":
            command.add_argument("--reason", help="shown in `hookgate targets` and the logs")
        command.set_defaults(run=run)
    targets = commands.add_parser("targets", help="each target: active or paused, and its backlog")
    targets.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    targets.set_defaults(run=_targets)
    check = commands.add_parser("check", help="validate a config file and print every problem")
    check.add_argument("config", nargs="?", default=DEFAULT_CONFIG, type=Path)
    check.set_defaults(run=_check)
    return parser


def _send(args: argparse.Namespace) -> int:
    from gateway import send

    options: dict[str, object] = dict(item.split("=", 1) for item in args.option if "=" in item)
    if len(args.secret) == 1:
        options["secret"] = args.secret[0]
    elif args.secret:
        options["secrets"] = list(args.secret)
    request = send.SendRequest(
        args.type, args.url, options, send.read_body(args.body), args.content_type
    )
    return send.run(request)


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except HookgateError as exc:
        for line in exc.message.splitlines():
            print(f"{args.config}: {line}", file=sys.stderr)
        return 1
    print(
        f"{args.config}: ok: {len(config.sources)} sources, {len(config.targets)} targets, "
        f"{len(config.routes)} routes"
    )
    return 0


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


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _install_uvloop()
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    asyncio.run(serve(_production(create_app(config)), config.server, host, port))
    return 0


def _worker(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _install_uvloop()
    asyncio.run(_run_until_signal(_production(create_app(config, ingress=False))))
    return 0


async def _run_until_signal(app: web.Application) -> None:
    """Start the app's resources without a listening socket; stop on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _migrate(args: argparse.Namespace) -> int:
    asyncio.run(_with_store(load_config(args.config), lambda store: asyncio.sleep(0)))
    print("hookgate: schema up to date")
    return 0


async def _with_store(config: Config, work: Callable[[Store], Awaitable[object]]) -> None:
    """Open the database (migrating it, starting the embedded one if needed) for `work`."""
    app = web.Application()
    app[keys.CONFIG] = config
    async for _ in database(app):
        await work(app[keys.STORE])


def _pause(args: argparse.Namespace) -> int:
    return _set_paused(args, paused=True)


def _resume(args: argparse.Namespace) -> int:
    return _set_paused(args, paused=False)


def _set_paused(args: argparse.Namespace, paused: bool) -> int:
    config = load_config(args.config)
    if args.target not in config.targets:
        print(f"hookgate: no target named {args.target!r} in {args.config}", file=sys.stderr)
        return 1
    reason = args.reason if paused else None
    by = f"cli {getpass.getuser()}@{socket.gethostname()}"
    now = SystemClock().now()
    asyncio.run(_with_store(config, lambda s: s.set_paused(args.target, paused, reason, now, by)))
    print(f"hookgate: {args.target} {'paused' if paused else 'resumed'}")
    return 0


def _targets(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    states: list[dict[str, object]] = []

    async def read(store: Store) -> None:
        states.extend(await store.target_states(list(config.targets)))

    asyncio.run(_with_store(config, read))
    now = SystemClock().now()
    for state in states:
        paused = f"paused ({state['reason'] or 'no reason given'})" if state["paused"] else "active"
        line = f"{state['name']}\t{paused}\tbacklog {state['backlog']}"
        until = state["breaker_until"]
        if isinstance(until, dt.datetime) and until > now:
            line += f"\tbreaker open until {until.isoformat()} ({state['breaker_reason']})"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
