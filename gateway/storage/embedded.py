"""The embedded PostgreSQL used when no database.url is configured (the `pgserver` wheel).

pgserver keeps the ids of the processes using a data directory in
`<pgdata>/.handle_pids.json` and stops the server when the last of them lets go. A
process killed with SIGKILL never takes its id off that list, so the next process
would adopt the still-running server but, seeing the dead one still listed, never
stop it. Ids of processes that no longer exist are dropped before joining: the
process that adopts a server stops it like one it started.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import structlog

log = structlog.get_logger("hookgate.storage")

HANDLES = ".handle_pids.json"  # pgserver's list of the processes using a data directory


@asynccontextmanager
async def embedded_postgres(data_dir: Path) -> AsyncIterator[str]:
    """Start (or join) a PostgreSQL under `data_dir`/pg and yield its DSN; stop it after."""
    server = await asyncio.to_thread(_start, data_dir / "pg")
    log.info("embedded_postgres_started", data_dir=str(data_dir / "pg"))
    try:
        yield str(server.get_uri())
    finally:
        # pgserver stops the server only when no other process of ours still uses it.
        await asyncio.to_thread(server.cleanup)


def _start(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless.
        warnings.simplefilter("ignore")
        # imported here: it is only needed without database.url
        from pgserver.postgres_server import PostgresServer, get_server

        pgdata.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:  # the lock pgserver holds while it edits the list
            dropped = forget_dead_handles(pgdata.resolve() / HANDLES)
        if dropped:
            log.info("embedded_postgres_adopted", data_dir=str(pgdata), dead_pids=dropped)
        return get_server(pgdata, cleanup_mode="stop")


def forget_dead_handles(handles: Path) -> list[int]:
    """Remove ids of processes that no longer run from a pgserver handle list; the removed."""
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(pids, list):
        return []
    dead = [pid for pid in pids if not _running(pid)]
    if dead:
        handles.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead


def _running(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
