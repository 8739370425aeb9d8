"""The `hookgate` command line: serve, worker, migrate, reload, check, send, pause, resume,
targets."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from aiohttp import web

from gateway import keys, lifecycle_cli, serving
from gateway import logging as hg_logging
from gateway.admin import cli as admin_cli
from gateway.alerting import alerting_for, set_paused
from gateway.app import database
from gateway.clock import SystemClock
from gateway.config import Config, load_config
from gateway.errors import ConfigError, HookgateError
from gateway.metrics import Metrics
from gateway.reload import signal_server
from gateway.storage.store import Store

DEFAULT_CONFIG = "hookgate.yaml"
DESCRIPTION = """\
hookgate: a self-hosted inbound webhook gateway. Providers POST to /in/<source>;
hookgate verifies each request, stores it in PostgreSQL before answering 202, and
relays it to your targets (HTTP, Redis Streams, NATS JetStream, RabbitMQ) with
retries, dead letters and a stable idempotency key."""
EPILOG = """\
start with:  hookgate check config/example.yaml
             hookgate serve --config config/example.yaml
"hookgate COMMAND --help" describes each command."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hookgate` console script."""
    args = _parser().parse_args(argv)
    if args.run not in (_check, _send):
        hg_logging.configure(args.log_level, json=args.log_json)
    try:
        code: int = args.run(args)
        return code
    except ConfigError as exc:
        for line in exc.lines():
            print(f"hookgate: {line}", file=sys.stderr)
        return 1
    except HookgateError as exc:
        print(f"hookgate: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _version() -> str:
    try:
        return version("hookgate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookgate",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hookgate {_version()}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the least severe log lines written (default: %(default)s)",
    )
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="JSON log lines on stderr (default: JSON unless stderr is a terminal)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND", title="commands")
    _add_runners(commands)
    _add_send(commands)
    _add_target_commands(commands)
    check = _command(
        commands,
        "check",
        _check,
        "validate a config file, print every problem, exit 0 (valid) or 1",
    )
    check.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help=f"the config file (default: {DEFAULT_CONFIG})",
    )
    _config_option(check, default=None)
    lifecycle_cli.register(commands, DEFAULT_CONFIG)
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: Callable[[argparse.Namespace], int],
    text: str,
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=text, description=text)
    command.set_defaults(run=run)
    return command


def _config_option(command: argparse.ArgumentParser, default: str | None = DEFAULT_CONFIG) -> None:
    command.add_argument(
        "--config",
        "-c",
        default=default,
        type=Path,
        metavar="FILE",
        help=f"the config file (default: {DEFAULT_CONFIG})",
    )


def _add_runners(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = _command(
        commands,
        "serve",
        _serve,
        "receive webhooks at /in/<source> and, unless "
        "relay.enabled is false, relay them; applies pending migrations first",
    )
    _config_option(serve)
    serve.add_argument("--host", help="the address to listen on (default: server.host, 0.0.0.0)")
    serve.add_argument(
        "--port", type=_port, help="the port to listen on (default: server.port, 8080)"
    )
    worker = _command(
        commands,
        "worker",
        _worker,
        "relay stored deliveries to their targets, "
        "with no listener (relay.enabled is for serve); many may share a database",
    )
    _config_option(worker)
    worker.add_argument(
        "--metrics-port",
        type=_port,
        help="serve this worker's /metrics (its relay counters) on this port (default: none)",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="the address for --metrics-port (default: 127.0.0.1)",
    )
    migrate = _command(
        commands, "migrate", _migrate, "bring the database schema up to date, then exit"
    )
    _config_option(migrate)
    reload = _command(
        commands,
        "reload",
        _reload,
        "check the config, then have the running `hookgate serve` (found by its pid file "
        "under database.data_dir) reload it without a restart, as SIGHUP does",
    )
    _config_option(reload)


def _port(text: str) -> int:
    """A TCP port number (the socket layer would silently wrap 70000 to 4464)."""
    port = int(text) if text.isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return port


def _add_send(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = _command(
        commands,
        "send",
        _send,
        "sign a sample webhook as a provider would and "
        "POST it; each sample is a new event unless --id is given",
    )
    send.add_argument("type", help="the provider's verifier type, e.g. stripe, github, slack")
    send.add_argument("url", help="where to POST, e.g. http://127.0.0.1:8080/in/stripe")
    send.add_argument(
        "--secret",
        action="append",
        default=[],
        help="the shared secret the source verifies with (repeat for several)",
    )
    send.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another verify option, e.g. -o verify_token=abc (repeatable)",
    )
    send.add_argument(
        "--body",
        metavar="FILE",
        help="a file with the body to send, - for stdin (default: the provider's "
        "sample, with a fresh id)",
    )
    send.add_argument(
        "--content-type", help="the Content-Type header (default: the provider's own)"
    )
    send.add_argument(
        "--id",
        metavar="ID",
        help="the id to put in the sample and its id headers: send twice with one --id "
        "to see the second answered as a duplicate (default: a fresh id each time)",
    )


def _add_target_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pause = _command(
        commands,
        "pause",
        _pause,
        "stop relaying to a target (its deliveries wait, keeping their attempts)",
    )
    pause.add_argument("target", help="the target's name in the config")
    pause.add_argument("--reason", help="shown by `hookgate targets` and in the logs")
    _config_option(pause)
    resume = _command(commands, "resume", _resume, "relay to a paused target again")
    resume.add_argument("target", help="the target's name in the config")
    _config_option(resume)
    targets = _command(
        commands,
        "targets",
        _targets,
        "each target: active or paused, its backlog and dead deliveries, an open breaker",
    )
    _config_option(targets, default=None)
    admin_cli.add_targets_options(targets)  # --url: ask a running hookgate instead
    admin_cli.register(commands)  # events, show, replay, tail, listen


def _send(args: argparse.Namespace) -> int:
    from gateway import send

    options: dict[str, object] = dict(item.split("=", 1) for item in args.option if "=" in item)
    if len(args.secret) == 1:
        options["secret"] = args.secret[0]
    elif args.secret:
        options["secrets"] = list(args.secret)
    request = send.SendRequest(
        args.type, args.url, options, send.read_body(args.body), args.content_type, args.id
    )
    return send.run(request)


def _check(args: argparse.Namespace) -> int:
    path = args.config or args.file or Path(DEFAULT_CONFIG)
    try:
        config = load_config(path)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    print(
        f"{path}: ok: {len(config.sources)} sources, {len(config.targets)} targets, "
        f"{len(config.routes)} routes"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    return serving.serve(config, serving.Listen(host, port), path=args.config)


def _worker(args: argparse.Namespace) -> int:
    metrics = None
    if args.metrics_port is not None:
        metrics = serving.Listen(args.metrics_host, args.metrics_port)
    return serving.work(load_config(args.config), path=args.config, metrics=metrics)


def _reload(args: argparse.Namespace) -> int:
    """Check the file first: an invalid one is reported here, and nothing is signalled."""
    config = load_config(args.config)
    pid = signal_server(config)
    print(f"hookgate: asked process {pid} to reload {args.config} (its log says how it went)")
    return 0


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

    async def write(store: Store) -> None:  # the relays send the alert a pause writes
        alerts = alerting_for(config, store, Metrics())
        await set_paused(store, alerts, args.target, paused, reason, now, by)

    asyncio.run(_with_store(config, write))
    print(f"hookgate: {args.target} {'paused' if paused else 'resumed'}")
    return 0


def _targets(args: argparse.Namespace) -> int:
    if admin_cli.wants_api(args):
        return admin_cli.sync(admin_cli.targets)(args)
    config = load_config(args.config or DEFAULT_CONFIG)
    states: list[dict[str, object]] = []

    async def read(store: Store) -> None:
        states.extend(await store.target_states(list(config.targets)))

    asyncio.run(_with_store(config, read))
    now = SystemClock().now()
    for state in states:
        paused = f"paused ({state['reason'] or 'no reason given'})" if state["paused"] else "active"
        counts = f"backlog {state['backlog']}\tqueued {state['queued']}\tdead {state['dead']}"
        line = f"{state['name']}\t{paused}\t{counts}"
        until = state["breaker_until"]
        if isinstance(until, dt.datetime) and until > now:
            line += f"\tbreaker open until {until.isoformat()} ({state['breaker_reason']})"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
