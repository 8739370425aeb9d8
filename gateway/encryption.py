"""The ``encryption:`` part of hookgate.yaml: request bodies and header values at rest.

    encryption:
      keys: {k2: "${HOOKGATE_KEY_2}", k1: "${HOOKGATE_KEY_1}"}   # 32 random bytes, base64
      active: k2                                                # new rows use this one

Off when the section is absent. Every key that rows were written with must stay listed
until ``hookgate rekey`` has moved those rows to the active key.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.section import Section, show

KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True, slots=True)
class EncryptionConfig:
    keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # never printed
    active: str | None = None  # None: encryption off

    @property
    def enabled(self) -> bool:
        return self.active is not None


def decode_key(value: object) -> bytes:
    """A key as written in the config: base64 of 32 random bytes."""
    if not isinstance(value, str):
        raise ValueError(f"expected base64 text (hookgate keygen prints a key), got {show(value)}")
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected base64 (hookgate keygen prints a key)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"expected {KEY_BYTES} bytes in base64, got {len(key)} bytes")
    return key


def parse_encryption(s: Section) -> EncryptionConfig:
    if not s.data:
        s.done()
        return EncryptionConfig()
    keys_section = s.section("keys")
    keys: dict[str, bytes] = {}
    for key_id, _ in keys_section.items():
        if not _KEY_ID.match(key_id):
            keys_section.fail("a key id may use letters, digits, '_' and '-' (32 at most)", key_id)
            continue
        key = keys_section.get(key_id, decode_key, None)  # never echoes the value
        if key is not None:
            keys[key_id] = key
    if not keys_section.data:
        s.fail("at least one key is required", "keys")
    active = s.text("active")
    if active and keys_section.data and active not in keys_section.data:
        s.fail(f"no key named {show(active)} in encryption.keys", "active")
    s.done()
    return EncryptionConfig(keys, active or None)
