"""Small admin parts without I/O: the stream's memory, feeder windows, bodies, cursors."""

from __future__ import annotations

import uuid

import pytest

from gateway.admin.feeder import windows
from gateway.admin.records import Body, decode_int_cursor, decode_uuid_cursor, encode_cursor
from gateway.admin.stream import Seen
from gateway.config import parse_config
from gateway.errors import AdminError


def test_seen_remembers_a_bounded_number_of_keys():
    seen = Seen(size=2)
    assert seen.add("a") and not seen.add("a")
    assert seen.add("b") and seen.add("c")
    assert seen.add("a")  # forgotten: only the last two are kept


def test_a_replay_window_is_twice_the_concurrency():
    config = parse_config(
        "targets: {a: {url: 'http://x', concurrency: 8}, b: {url: 'http://y', concurrency: 1}}"
    )
    assert windows(config) == {"a": 16, "b": 2}


def test_a_body_is_text_when_it_decodes_and_base64_otherwise():
    assert Body.of(b'{"a": 1}') == Body('{"a": 1}', None, 8)
    binary = Body.of(b"\xff\x00<script>")
    assert binary.text is None and binary.raw() == b"\xff\x00<script>"


def test_cursors_round_trip_and_forgeries_are_400():
    key = uuid.uuid4()
    assert decode_uuid_cursor(encode_cursor(key)) == key
    assert decode_int_cursor(encode_cursor(42)) == 42
    assert decode_uuid_cursor(None) is None
    with pytest.raises(AdminError, match="cursor"):
        decode_uuid_cursor("bm90LWEtdXVpZA")
    with pytest.raises(AdminError, match="cursor"):
        decode_int_cursor("!!")
