"""Connections of the ingest writers' own, outside the pool.

The group commit's writers (gateway/storage/batch.py) write one batch after another.
Through the pool each batch paid an acquire and, on release, a reset: a round trip of
its own, about a tenth of the ingest's CPU per request. Each writer keeps a connection
here instead, opened when first needed, and nothing resets it: a batch is one
statement in its own implicit transaction, so no session state is left behind.

A connection that failed in a way that may have left it broken (cut off, timed out,
cancelled mid-statement, the server shutting down) is closed and never used again; the
next batch opens a new one, so a connection the server cut off mid-answer cannot
answer the next batch with an error that is not an outage's. A statement the server
refused for its data leaves the connection as good as before.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.storage.store import ACQUIRE_TIMEOUT, SESSION, UNAVAILABLE, translated


class Connections:
    """As many connections as callers use at once (the writers), each used by one at a time."""

    def __init__(self, dsn: str, timeout: float = ACQUIRE_TIMEOUT) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._idle: list[asyncpg.Connection] = []
        self._closed = False

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run `query` on an idle connection (a new one if none is); errors translated."""
        async with translated():
            conn = await self._take()
            try:
                rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            except asyncpg.PostgresError as exc:
                self._put(conn, broken=isinstance(exc, UNAVAILABLE))
                raise
            except BaseException:
                self._put(conn, broken=True)
                raise
            self._put(conn)
            return rows

    async def close(self) -> None:
        """Close the idle connections; any in use is closed when it is given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await conn.close(timeout=self._timeout)
            except (*UNAVAILABLE, asyncpg.PostgresError):
                conn.terminate()

    async def _take(self) -> asyncpg.Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():  # the server may have closed it while it was idle
                return conn
        connection: asyncpg.Connection = await asyncpg.connect(
            self._dsn, timeout=self._timeout, server_settings=SESSION
        )
        return connection

    def _put(self, conn: asyncpg.Connection, broken: bool = False) -> None:
        if broken or self._closed or conn.is_closed():
            conn.terminate()
        else:
            self._idle.append(conn)
