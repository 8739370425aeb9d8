"""The data lifecycle commands, registered from cli.py by `register`: ``hookgate purge``
(retention now, or erasure), ``hookgate keygen`` and ``hookgate rekey`` (encryption at rest)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import getpass
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from gateway import keys
from gateway.app import database
from gateway.clock import SystemClock
from gateway.config import Config, load_config
from gateway.encryption import KEY_BYTES
from gateway.lifecycle import Erasure, Match, erase, retention_pass
from gateway.storage.purge import PurgeCounts, Purger
from gateway.storage.rekey import Rekeyed, rekey
from gateway.storage.store import Store


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str
) -> None:
    """Add the lifecycle subcommands to the `hookgate` parser."""
    purge = commands.add_parser(
        "purge",
        help="run one retention pass now, or erase events by source, date and content",
        description="Without --source, --before or --match: one retention pass, as the "
        "background task runs it. With any of them: erase those events (deliveries and "
        "attempts with them), whatever the retention, except any with a delivery pending.",
    )
    _config_option(purge, default_config)
    purge.add_argument("--source", help="only this source's events (default: every source)")
    purge.add_argument(
        "--before", type=_date, help="received before this ISO date or time, UTC (default: now)"
    )
    purge.add_argument(
        "--match",
        type=_match,
        action="append",
        default=[],
        metavar="json:PATH=VALUE|header:NAME=VALUE",
        help="the body field or header must equal VALUE; repeat it and all must "
        "(default: no condition on content)",
    )
    purge.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    purge.set_defaults(run=_purge)
    text = "print a new encryption key (32 random bytes, base64) for encryption.keys"
    keygen = commands.add_parser("keygen", help=text, description=text)
    keygen.set_defaults(run=_keygen)
    text = "re-encrypt every stored request with encryption.active, then exit"
    rekey = commands.add_parser("rekey", help=text, description=text)
    _config_option(rekey, default_config)
    rekey.add_argument(
        "--batch", type=int, default=500, help="rows per statement (default: %(default)s)"
    )
    rekey.set_defaults(run=_rekey)


def _config_option(command: argparse.ArgumentParser, default: str) -> None:
    command.add_argument("--config", "-c", default=default, type=Path, metavar="FILE",
                         help=f"the config file (default: {default})")  # fmt: skip


def _keygen(args: argparse.Namespace) -> int:
    print(base64.b64encode(os.urandom(KEY_BYTES)).decode())
    return 0


def _rekey(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not config.encryption.enabled:
        print("hookgate: encryption is off in this config (no encryption.active)", file=sys.stderr)
        return 1
    found: list[Rekeyed] = []

    async def run(store: Store) -> None:
        found.append(await rekey(store.pool, store.sealer, args.batch))

    asyncio.run(with_store(config, run))
    print(f"hookgate: {found[0].events} events and {found[0].rejected} refused requests now "
          f"on key {config.encryption.active}")  # fmt: skip
    return 0


def _date(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date like 2026-11-30 or 2026-11-30T12:00Z, got {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _match(text: str) -> Match:
    try:
        return Match.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _actor() -> str:
    return f"cli {getpass.getuser()}@{socket.gethostname()}"


def _purge(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = SystemClock().now()
    explicit = args.source is not None or args.before is not None or args.match
    found: list[PurgeCounts | None] = []

    async def run(store: Store) -> None:
        purger = Purger(store.pool, store.reveal)
        if explicit:
            erasure = Erasure(args.before or now, args.source, tuple(args.match))
            found.append(await erase(purger, erasure, now, _actor(), args.dry_run))
        else:
            found.append(await retention_pass(purger, config, now, _actor(), args.dry_run))

    asyncio.run(with_store(config, run))
    print(_summary(found[0], args.dry_run))
    return 0


def _summary(counts: PurgeCounts | None, dry_run: bool) -> str:
    if counts is None:
        return "hookgate: another replica is purging right now; nothing done"
    verb = "would purge" if dry_run else "purged"
    return (
        f"hookgate: {verb} {counts.events} events, {counts.rejected} refused requests, "
        f"{counts.dedupe_keys} dedupe keys; kept {counts.kept_open} events whose "
        f"deliveries are still pending"
    )


async def with_store(config: Config, work: Callable[[Store], Awaitable[None]]) -> None:
    """Open the database (migrating it, starting the embedded one if needed) for `work`."""
    app = web.Application()
    app[keys.CONFIG] = config
    async for _ in database(app):
        await work(app[keys.STORE])
