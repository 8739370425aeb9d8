"""Encryption at rest: request bodies and header values sealed with AES-256-GCM.

A sealed row carries its key id (``key_id``; NULL: stored in the clear). Its body is
``nonce || ciphertext+tag``; its headers column keeps the names in the clear and all
the values in one sealed blob, ``{"names": [...], "values": "<base64>"}`` (one AES
operation per row, not one per header). The associated data binds each blob to its
row's id and column, so a sealed body cannot be moved to another row unnoticed.

The store seals on write and opens on read, so every reader (relay, replay, inspector,
erasure) gets plaintext. A row whose key is not configured is an error, never an empty
body; `check_keys` refuses to start when such rows may exist.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import EncryptionKeyMissing, StorageError
from gateway.storage.queries import QUERIES

NONCE = 12
Headers = tuple[tuple[str, str], ...]


class Sealer:
    """Seals with the active key (None: writes in the clear); opens with any known key."""

    def __init__(self, keys: Mapping[str, bytes] | None = None, active: str | None = None):
        self._keys = {key_id: AESGCM(key) for key_id, key in (keys or {}).items()}
        self.active = active
        self.known = frozenset(self._keys)

    def seal(
        self, row: bytes, headers: Sequence[tuple[str, str]], body: bytes
    ) -> tuple[str | None, str, bytes]:
        """(key id, headers JSON, body) as stored; `row` identifies the row (its id)."""
        if self.active is None:
            return None, orjson.dumps(headers).decode(), body
        aead = self._keys[self.active]
        values = orjson.dumps([v for _, v in headers])
        sealed = {"names": [k for k, _ in headers],
                  "values": base64.b64encode(_seal(aead, values, row + b"h")).decode()}  # fmt: skip
        return self.active, orjson.dumps(sealed).decode(), _seal(aead, body, row + b"b")

    def open(
        self, row: bytes, key_id: str | None, headers: str | None, body: bytes
    ) -> tuple[Headers, bytes]:
        """Plaintext headers and body of a stored row."""
        if key_id is None:
            pairs = orjson.loads(headers) if headers else []
            return tuple((k, v) for k, v in pairs), bytes(body)
        aead = self._keys.get(key_id)
        if aead is None:
            raise EncryptionKeyMissing(f"a row is encrypted with key {key_id!r}, which is not "
                                       "in encryption.keys")  # fmt: skip
        sealed: dict[str, Any] = orjson.loads(headers) if headers else {}
        values = orjson.loads(_open(aead, base64.b64decode(sealed["values"]), row + b"h"))
        names: list[str] = sealed["names"]
        return tuple(zip(names, values, strict=True)), _open(aead, bytes(body), row + b"b")


def event_row(event_id: UUID) -> bytes:
    return event_id.bytes


def rejected_row(source: str) -> bytes:
    """Refused requests get their id from the database: bound to their source instead."""
    return b"rejected:" + source.encode()


def _seal(aead: AESGCM, data: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + aead.encrypt(nonce, data, associated)


def _open(aead: AESGCM, blob: bytes, associated: bytes) -> bytes:
    try:
        return aead.decrypt(blob[:NONCE], blob[NONCE:], associated)
    except InvalidTag:
        raise StorageError("a stored row does not decrypt: wrong key, or it was altered") from None


async def check_keys(conn: asyncpg.Connection, sealer: Sealer, now: object) -> None:
    """Register the active key; refuse to start when a key rows may use is not known."""
    if sealer.active is not None:
        await conn.execute(QUERIES["register_key"], sealer.active, now)
    used = {row["key_id"] for row in await conn.fetch(QUERIES["registered_keys"])}
    missing = sorted(used - sealer.known)
    if missing:
        raise EncryptionKeyMissing(
            f"encryption.keys: rows are encrypted with {', '.join(map(repr, missing))}, "
            "not configured here; add the key back (hookgate rekey moves rows off a key)"
        )
