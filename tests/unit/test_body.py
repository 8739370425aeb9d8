"""A body's JSON is parsed once for all the extractors and filters of one request."""

from __future__ import annotations

from gateway.body import NOT_JSON, parsed


def test_the_same_body_is_parsed_once():
    body = b'{"type": "order.paid", "data": {"amount": 5}}'
    assert parsed(body) is parsed(body)
    assert parsed(body) == {"type": "order.paid", "data": {"amount": 5}}


def test_another_body_is_never_mistaken_for_the_last_one():
    first = b'{"n": 1}'
    assert parsed(first) == {"n": 1}
    assert parsed(b'{"n": 2}') == {"n": 2}
    assert parsed(bytes(bytearray(b'{"n": 1}'))) == {"n": 1}  # equal bytes, another object


def test_a_body_that_is_not_json_is_said_so():
    assert parsed(b"\xff not json") is NOT_JSON
