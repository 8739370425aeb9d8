"""Encryption config and sealing, without a database: keys, round trips, tampering."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from gateway.cli import main
from gateway.config import parse_config
from gateway.errors import ConfigError, EncryptionKeyMissing, StorageError
from gateway.storage.sealing import Sealer, event_row

K1, K2 = os.urandom(32), os.urandom(32)
HEADERS = (("Content-Type", "application/json"), ("X-Email", "ann@example.com"))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, env={})
    return list(raised.value.problems)


def test_encryption_is_off_unless_configured():
    assert not parse_config("server: {}", env={}).encryption.enabled


def test_keys_and_the_active_one_are_read():
    config = parse_config(f"encryption: {{keys: {{k2: '{b64(K2)}', k1: '{b64(K1)}'}}, active: k2}}",
                          env={}).encryption  # fmt: skip
    assert (config.active, dict(config.keys)) == ("k2", {"k2": K2, "k1": K1})
    assert b64(K2) not in repr(config)


def test_key_mistakes_are_reported_by_path_without_echoing_the_key():
    short = b64(os.urandom(16))
    found = problems(
        f"encryption: {{keys: {{k1: '{short}', 'bad id': '{b64(K1)}', k3: 'not base64!'}}, "
        "active: k9, colour: red}"
    )
    assert found == [
        "encryption.keys.k1: expected 32 bytes in base64, got 16 bytes",
        "encryption.keys.bad id: a key id may use letters, digits, '_' and '-' (32 at most)",
        "encryption.keys.k3: expected base64 (hookgate keygen prints a key)",
        'encryption.active: no key named "k9" in encryption.keys',
        "encryption.colour: unknown key",
    ]
    assert short not in "\n".join(found)


def test_an_active_key_is_required():
    assert problems(f"encryption: {{keys: {{k1: '{b64(K1)}'}}}}") == [
        "encryption.active: is required"
    ]


def test_keygen_prints_32_random_bytes_in_base64(capsys):
    assert main(["keygen"]) == 0
    first = capsys.readouterr().out.strip()
    main(["keygen"])
    assert len(base64.b64decode(first)) == 32
    assert capsys.readouterr().out.strip() != first


def test_a_sealed_row_opens_to_exactly_what_was_written_and_hides_it():
    sealer, row = Sealer({"k1": K1}, "k1"), event_row(uuid.uuid4())
    key_id, headers, body = sealer.seal(row, HEADERS, b'{"email": "ann@example.com"}')
    assert key_id == "k1"
    assert b"ann@example.com" not in body and "ann@example.com" not in headers
    assert "Content-Type" in headers  # names stay in the clear
    assert sealer.open(row, key_id, headers, body) == (HEADERS, b'{"email": "ann@example.com"}')


def test_rows_sealed_with_an_old_key_open_after_rotation():
    old = Sealer({"k1": K1}, "k1")
    row = event_row(uuid.uuid4())
    stored = old.seal(row, HEADERS, b"body")
    rotated = Sealer({"k1": K1, "k2": K2}, "k2")
    assert rotated.open(row, *stored) == (HEADERS, b"body")
    assert rotated.seal(row, HEADERS, b"body")[0] == "k2"


def test_a_missing_key_is_an_error_never_an_empty_body():
    stored = Sealer({"k1": K1}, "k1").seal(event_row(uuid.uuid4()), HEADERS, b"body")
    with pytest.raises(EncryptionKeyMissing):
        Sealer({"k2": K2}, "k2").open(event_row(uuid.uuid4()), *stored)


def test_a_body_moved_to_another_row_does_not_open():
    sealer = Sealer({"k1": K1}, "k1")
    key_id, headers, body = sealer.seal(event_row(uuid.uuid4()), HEADERS, b"body")
    with pytest.raises(StorageError):
        sealer.open(event_row(uuid.uuid4()), key_id, headers, body)


def test_without_encryption_rows_are_stored_as_they_came():
    key_id, headers, body = Sealer().seal(b"row", HEADERS, b"body")
    assert (key_id, body) == (None, b"body")
    assert Sealer().open(b"row", None, headers, body) == (HEADERS, b"body")
