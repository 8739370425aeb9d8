"""Identifiers: time-ordered event ids and delivery ids derived from (event, target)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import uuid

_VERSION_7 = 0x7000_0000_0000_0000_0000
_VARIANT = 0x8000_0000_0000_0000  # RFC 9562 variant bits 0b10 at bit 62
_LOW_62 = 0x3FFF_FFFF_FFFF_FFFF
_pool = b""
_used = 0


def _random_bits() -> int:
    """80 random bits from a pool refilled 4,000 bytes at a time (one system call per
    400 ids instead of one each)."""
    global _pool, _used
    if _used + 10 > len(_pool):
        _pool, _used = os.urandom(4000), 0
    start, _used = _used, _used + 10
    return int.from_bytes(_pool[start:_used], "big")


_new, _set, _UNKNOWN = object.__new__, object.__setattr__, uuid.SafeUUID.unknown


def _uuid(value: int) -> uuid.UUID:
    """`uuid.UUID(int=value)` without its checks: `value` is built in range here."""
    made = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", _UNKNOWN)
    return made


def event_id(now: dt.datetime) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then randomness."""
    millis = int(now.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    rand = _random_bits()
    # 12 random bits after the version, 62 after the variant.
    value = (millis << 80) | _VERSION_7 | ((rand >> 62) & 0xFFF) << 64
    return _uuid(value | _VARIANT | (rand & _LOW_62))


@functools.lru_cache(maxsize=4096)
def _target_bits(target: str) -> int:
    """62 bits that stand for `target` (computed once per name)."""
    digest = hashlib.sha256(b"hookgate-target:" + target.encode()).digest()
    return int.from_bytes(digest[:8], "big") & _LOW_62


def delivery_id(event: uuid.UUID, target: str) -> uuid.UUID:
    """The same for every retry and replay of `event` to `target`: the idempotency key.

    It keeps the event's first 64 bits (its time and version 7), so delivery ids are
    time-ordered like event ids and their index grows at one edge; the last 62 bits are
    the event's own, mixed (XOR) with bits that stand for the target: distinct per
    target, and as unlikely to collide across events as the events' random bits.

    Deliveries stored before this derivation (hookgate before migration 0010) have ids
    made from ``sha256(event.bytes + target)``'s first 62 bits instead (`legacy_delivery_id`).
    Ids are stored and never recomputed for an existing delivery, so those keep their
    ids through every retry and replay.
    """
    low = (event.int ^ _target_bits(target)) & _LOW_62
    return _uuid((event.int >> 64 << 64) | _VARIANT | low)


def legacy_delivery_id(event: uuid.UUID, target: str) -> uuid.UUID:
    """The id `delivery_id` gave before migration 0010, kept as the record of how the
    deliveries stored then were named."""
    digest = hashlib.sha256(event.bytes + target.encode()).digest()
    low = int.from_bytes(digest[:8], "big") & _LOW_62
    return uuid.UUID(int=(event.int >> 64 << 64) | (0b10 << 62) | low)


def first_id_at(at: dt.datetime) -> uuid.UUID:
    """The smallest UUIDv7 of `at`'s millisecond: ids below it were made before `at`."""
    millis = max(0, int(at.timestamp() * 1000)) & ((1 << 48) - 1)
    return uuid.UUID(int=millis << 80)
