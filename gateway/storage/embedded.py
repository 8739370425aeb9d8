"""The embedded PostgreSQL used when no database.url is configured (the `pgserver` wheel)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("hookgate.storage")


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
        warnings.simplefilter("ignore")
        # imported here: it is only needed without database.url
        from pgserver.postgres_server import get_server

    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless.
        warnings.simplefilter("ignore")
        return get_server(pgdata, cleanup_mode="stop")
