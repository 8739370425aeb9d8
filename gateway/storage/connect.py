"""Connecting to PostgreSQL at start-up: where, how long to keep trying, and why it failed.

A server that is not up yet (a container starting beside us, a failover) is retried for
`database.connect_timeout`, each failed attempt logged with the seconds left, so a
waiting process says what it waits for. A refusal that retrying cannot fix (a wrong
password, no such role or database) fails at once with the server's own message.
Where the database is, is always shown as host:port/db, never with its password.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import asyncpg
import structlog

from gateway.errors import StorageError, StorageUnavailable
from gateway.storage.store import ACQUIRE_TIMEOUT, SESSION, UNAVAILABLE

log = structlog.get_logger("hookgate.storage")

RETRY_EVERY = 2.0  # seconds between attempts while the server cannot be reached


def describe(dsn: str) -> str:
    """`host:port/db` (or `socket DIR/db`) of a PostgreSQL URL, without user or password."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    database = parts.path.lstrip("/") or (query.get("dbname") or [""])[0]
    host = parts.hostname or (query.get("host") or [""])[0]
    if host.startswith("/"):
        return f"socket {host}/{database}" if database else f"socket {host}"
    port = _port(parts.netloc) or (query.get("port") or ["5432"])[0]
    where = f"[{host}]:{port}" if ":" in host else f"{host or 'localhost'}:{port}"
    return f"{where}/{database}" if database else where


def _port(netloc: str) -> str | None:
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):  # [::1]:5432
        return host_port.partition("]:")[2] or None
    return host_port.partition(":")[2] or None


async def open_pool(
    dsn: str,
    size: int,
    wait: float = 30.0,
    *,
    reset: bool = True,
    settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """A pool to `dsn`, trying for up to `wait` seconds while the server cannot be reached.

    Without `reset`, a released connection goes back as it is (no reset query, no round
    trip): for callers that run single statements and change no session state.
    `settings` are session settings on top of `SESSION`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    where = describe(dsn)
    while True:
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn, min_size=min(2, size), max_size=size, timeout=ACQUIRE_TIMEOUT,
                server_settings={**SESSION, **(settings or {})},
                reset=None if reset else _as_it_is,
            )  # fmt: skip
            # The pool's reset on release stays: its round trip is also what finds a
            # connection the server cut off mid-answer (asyncpg then replaces it).
            return pool
        except UNAVAILABLE as exc:
            left = deadline - loop.time()
            if left <= 0:
                raise StorageUnavailable(
                    f"cannot reach PostgreSQL at {where} after {wait:g} s: {_reason(exc)} "
                    "(database.connect_timeout sets how long to try)"
                ) from exc
            pause = min(RETRY_EVERY, left)
            log.warning("database_connect_failed", database=where, error=_reason(exc),
                        retry_in=round(pause, 1), gives_up_in=round(left))  # fmt: skip
            await asyncio.sleep(pause)
        except asyncpg.PostgresError as exc:
            raise StorageError(f"PostgreSQL at {where} refused the connection: {exc}") from exc


async def _as_it_is(conn: asyncpg.Connection) -> None:
    """No reset query: asyncpg still rolls back a transaction left open, and replaces a
    connection that closed, before it goes back to the pool."""


def _reason(exc: BaseException) -> str:
    """A short cause: "connection refused", the server's message, or the error's name."""
    if isinstance(exc, OSError) and exc.errno:
        # By its number: asyncio's loop says "Connect call failed ('host', port)" where
        # uvloop (serve, worker) says "Connection refused"; every command says the same.
        return os.strerror(exc.errno).lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc)
    return text if text else type(exc).__name__
