"""Sampled log lines: one per kind per window, with a count, however many events."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from gateway.logging import Sampled

log = structlog.get_logger("test")


def lines(logs):
    return [(e["event"], e["reason"], e["count"]) for e in logs]


def test_a_flood_is_one_line_at_once_and_one_count_when_its_minute_is_over():
    sampled = Sampled(log, "request_rejected")
    with capture_logs() as logs:
        for second in range(2000):
            sampled.hit(6000 + second * 0.01, source="gh", reason="bad signature")
        sampled.hit(6001, source="gh", reason="too old")
        assert lines(logs) == [
            ("request_rejected", "bad signature", 1),
            ("request_rejected", "too old", 1),
        ]
        sampled.tick(6059)  # still the same minute
        assert len(logs) == 2
        sampled.tick(6060)
    assert lines(logs)[2:] == [("request_rejected", "bad signature", 1999)]


def test_the_next_window_starts_afresh_and_flush_logs_what_is_left():
    sampled = Sampled(log, "batch_write_failed", level="warning")
    with capture_logs() as logs:
        for now in (0.0, 1.0, 2.0, 61.0, 62.0):
            sampled.hit(now, reason="down")
        sampled.flush()
        sampled.flush()
    assert [(e["log_level"], e["count"]) for e in logs] == [
        ("warning", 1),  # first at 0
        ("warning", 2),  # the rest of minute 0, when minute 1 began
        ("warning", 1),  # first at 61
        ("warning", 1),  # flushed
    ]
