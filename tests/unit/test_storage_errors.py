"""Driver errors are translated inside storage: an outage is `StorageUnavailable` (503)."""

from __future__ import annotations

import asyncpg
import pytest

from gateway.errors import StorageError, StorageUnavailable
from gateway.storage.store import translated


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress"),
        asyncpg.exceptions.ProtocolError("unexpected message"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        ConnectionResetError(),
        FileNotFoundError(),  # the server's socket is gone
    ],
)
async def test_connection_trouble_is_unavailable(error):
    with pytest.raises(StorageUnavailable) as raised:
        async with translated():
            raise error
    assert "cannot switch" not in raised.value.message  # the class, not the driver's words


async def test_a_refused_statement_is_a_storage_error_not_unavailable():
    with pytest.raises(StorageError) as raised:
        async with translated():
            raise asyncpg.UniqueViolationError("duplicate key")
    assert not isinstance(raised.value, StorageUnavailable)
