"""Identifiers: time-ordered event ids and delivery ids derived from (event, target)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid


def event_id(now: dt.datetime) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then randomness."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    return uuid.UUID(int=value)


def delivery_id(event: uuid.UUID, target: str) -> uuid.UUID:
    """The same for every retry and replay of `event` to `target`: the idempotency key.

    It keeps the event's first 64 bits (its time and version 7), so delivery ids are
    time-ordered like event ids and their index grows at one edge; the last 62 bits
    are a hash of (event, target).
    """
    digest = hashlib.sha256(event.bytes + target.encode()).digest()
    low = int.from_bytes(digest[:8], "big") & ((1 << 62) - 1)
    return uuid.UUID(int=(event.int >> 64 << 64) | (0b10 << 62) | low)
