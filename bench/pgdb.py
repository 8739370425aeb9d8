"""Which PostgreSQL the benchmark's hookgate uses, and dropping what it created.

In order of preference:

1. ``HOOKGATE_BENCH_DATABASE_URL``, used as it is (nothing created or dropped);
2. a fresh database ``bench_<pid>`` on the local server (``LOCAL_ADMIN_URL``),
   dropped at the end;
3. the embedded PostgreSQL (no ``database.url``; hookgate starts it under
   ``data_dir``, inside the benchmark's temporary directory).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Database:
    url: str | None  # None: the embedded server
    data_dir: Path
    label: str


@contextmanager
def bench_database(tmp: Path) -> Iterator[Database]:
    """The database to benchmark against; a database created here is dropped after."""
    if url := os.environ.get("HOOKGATE_BENCH_DATABASE_URL"):
        yield Database(url, tmp / "data", "HOOKGATE_BENCH_DATABASE_URL")
        return
    name = f"bench_{os.getpid()}"
    version = asyncio.run(_create(LOCAL_ADMIN_URL, name))
    if version is None:
        yield Database(None, tmp / "data", "embedded PostgreSQL (pgserver) under a temp dir")
        return
    try:
        url = LOCAL_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        yield Database(url, tmp / "data", f"local PostgreSQL {version}, fresh database {name}")
    finally:
        asyncio.run(_drop(LOCAL_ADMIN_URL, name))


async def _create(admin_url: str, name: str) -> str | None:
    """Create `name`; the server's version, or None if the server cannot be reached."""
    try:
        conn = await asyncpg.connect(admin_url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return None
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # a name made here, not input
        version: str = await conn.fetchval("SHOW server_version")
        return version.split()[0]
    finally:
        await conn.close()


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=3)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
