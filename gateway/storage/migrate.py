"""Numbered, append-only migrations applied under an advisory lock.

Several replicas may start at once: the first takes the lock and migrates, the others
wait and then find nothing to do. Each migration runs in its own transaction. A database
migrated by a newer hookgate is refused rather than used with a schema we do not know.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files

import asyncpg
import structlog

from gateway.errors import SchemaTooNew

log = structlog.get_logger("hookgate.storage")

LOCK_ID = 0x686F6F6B67617465  # "hookgate"
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS hookgate;
CREATE TABLE IF NOT EXISTS hookgate.migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with this hookgate, in order.

    Two files with one number would leave one of them unapplied on every database that
    ran the other (a database records versions, not names), so that is refused here."""
    found: dict[int, Migration] = {}
    for entry in files("gateway.storage.migrations").iterdir():
        match = _FILE.match(entry.name)
        if not match:
            continue
        migration = Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"))
        if (other := found.get(migration.version)) is not None:
            raise RuntimeError(f"two migrations numbered {migration.version:04d}: "
                               f"{other.name} and {migration.name}")  # fmt: skip
        found[migration.version] = migration
    return [found[version] for version in sorted(found)]


@functools.cache
def latest_version() -> int:
    """The schema version this hookgate's migrations bring a database to."""
    known = available()
    return known[-1].version if known else 0


async def migrate(conn: asyncpg.Connection, until: int | None = None) -> list[int]:
    """Bring the schema up to date (or to version `until`, for upgrade tests); returns
    the versions applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
    try:
        await conn.execute(_BOOTSTRAP)
        return await _apply_missing(conn, until)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)


async def _apply_missing(conn: asyncpg.Connection, until: int | None) -> list[int]:
    current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM hookgate.migrations")
    known = available()
    if current > (known[-1].version if known else 0):
        raise SchemaTooNew(f"the database is at schema {current}; this hookgate knows up to "
                           f"{known[-1].version}: upgrade hookgate")  # fmt: skip
    applied = []
    for migration in known:
        if migration.version <= current or (until is not None and migration.version > until):
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO hookgate.migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        log.info("migration_applied", version=migration.version, name=migration.name)
        applied.append(migration.version)
    return applied
