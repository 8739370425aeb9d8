"""What is stored of a credential: its shape, never its secret."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from gateway.ingress.redact import Redaction, redact_value
from gateway.storage.store import EventRecord


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("Authorization", "Bearer tok_123", "Bearer [redacted]"),
        ("Authorization", "basic dXNlcjpwYXNz", "basic [redacted]"),
        ("Authorization", "tok_123", "[redacted]"),
        ("Authorization", "tok 123 with spaces", "[redacted]"),  # not a known scheme: all of it
        ("X-API-Key", "Bearer", "[redacted]"),
        ("Cookie", "session=abc; theme=dark", "session=[redacted]; theme=[redacted]"),
        ("cookie", "abc", "abc=[redacted]"),
        ("Cookie", ";", "[redacted]"),
    ],
)
def test_a_redacted_value_keeps_its_shape_and_loses_its_secret(name, value, stored):
    assert redact_value(name, value) == stored


def test_named_headers_and_query_parameters_are_redacted_case_as_http_says():
    redaction = Redaction.of(["authorization", "X-Api-Key"], ["key", "hub.verify_token"])
    record = EventRecord(
        id=uuid.uuid4(),
        source="s",
        event_type=None,
        received_at=dt.datetime.now(dt.UTC),
        method="POST",
        path="/in/s",
        query="a=1&key=tok_1&Key=kept&hub%2Everify_token=tok_2&key",
        headers=[
            ("AUTHORIZATION", "Bearer tok_3"),
            ("x-api-key", "tok_4"),
            ("X-Hub-Signature-256", "sha256=abc"),
        ],
        body=b"tok_5",
        peer=None,
        deliveries=[],
    )
    stored = redaction.apply(record)
    assert stored.query == "a=1&key=[redacted]&Key=kept&hub%2Everify_token=[redacted]&key"
    assert stored.headers == [
        ("AUTHORIZATION", "Bearer [redacted]"),
        ("x-api-key", "[redacted]"),
        ("X-Hub-Signature-256", "sha256=abc"),  # a signature stays: it re-verifies the body
    ]
    assert stored.body == b"tok_5"  # the body is the event: kept byte for byte
