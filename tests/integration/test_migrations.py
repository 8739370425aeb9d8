"""Migrations against an empty database: apply once, apply concurrently, refuse a newer schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from gateway.errors import SchemaTooNew
from gateway.storage.migrate import LOCK_ID, available, migrate

KNOWN = [migration.version for migration in available()]


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def versions(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch("SELECT version FROM hookgate.migrations ORDER BY version")
    return [row["version"] for row in rows]


async def test_migrations_apply_to_an_empty_database(empty_database_url):
    async with connected(empty_database_url) as conn:
        assert await conn.fetchval("SELECT to_regnamespace('hookgate')") is None

        assert await migrate(conn) == KNOWN

        for relation in ("events", "deliveries", "attempts", "deliveries_claim_idx"):
            assert await conn.fetchval("SELECT to_regclass($1)", f"hookgate.{relation}")
        assert await versions(conn) == KNOWN


async def test_applying_migrations_again_applies_nothing(empty_database_url):
    async with connected(empty_database_url) as conn:
        await migrate(conn)
        assert await migrate(conn) == []
        assert await versions(conn) == KNOWN


async def test_concurrent_migrations_apply_each_version_once(empty_database_url):
    async with (
        connected(empty_database_url) as a,
        connected(empty_database_url) as b,
        connected(empty_database_url) as c,
        connected(empty_database_url) as d,
    ):
        applied = await asyncio.gather(*(migrate(conn) for conn in (a, b, c, d)))

        assert sorted(applied) == [[], [], [], KNOWN]
        assert await versions(a) == KNOWN


async def test_a_database_ahead_of_the_code_is_refused(empty_database_url):
    async with connected(empty_database_url) as conn:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO hookgate.migrations (version, name) VALUES ($1, 'from_the_future')",
            KNOWN[-1] + 1,
        )

    async with connected(empty_database_url) as conn:
        with pytest.raises(SchemaTooNew):
            await migrate(conn)
        # The refusal let go of the migration lock: other replicas are not left waiting.
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_ID) is True
        assert await versions(conn) == [*KNOWN, KNOWN[-1] + 1]


def test_two_migrations_with_one_number_are_refused(tmp_path, monkeypatch):
    package = tmp_path / "numbered"
    package.mkdir()
    (package / "0001_first.sql").write_text("SELECT 1;")
    (package / "0002_second.sql").write_text("SELECT 2;")
    monkeypatch.setattr("gateway.storage.migrate.files", lambda _: package)
    assert [m.version for m in available()] == [1, 2]

    (package / "0002_other.sql").write_text("SELECT 3;")
    with pytest.raises(RuntimeError, match="two migrations numbered 0002"):
        available()
