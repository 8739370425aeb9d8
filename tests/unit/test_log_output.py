"""Log lines from inside the event loop are written together, in order, once per iteration;
a JSON line holds what structlog's processors would have put in it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from gateway.logging import _Gathered, configure, info


class Out:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def flush(self) -> None:
        pass


def test_lines_logged_in_one_loop_iteration_are_one_write_in_order():
    out = Out()
    gathered = _Gathered(out)  # type: ignore[arg-type]

    async def log_three() -> list[bytes]:
        for n in range(3):
            gathered.write(b"line %d\n" % n)
        before = list(out.writes)
        await asyncio.sleep(0)  # the iteration ends: the lines go out
        await asyncio.sleep(0)
        return before

    assert asyncio.run(log_three()) == []
    assert out.writes == [b"line 0\nline 1\nline 2\n"]


def test_outside_a_loop_each_line_is_written_at_once():
    out = Out()
    gathered = _Gathered(out)  # type: ignore[arg-type]
    gathered.write(b"one\n")
    gathered.write(b"two\n")
    assert out.writes == [b"one\n", b"two\n"]


def test_what_is_left_is_written_out_on_demand():
    out = Out()
    gathered = _Gathered(out)  # type: ignore[arg-type]

    async def log_and_leave() -> None:
        gathered.write(b"last\n")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(log_and_leave())
    loop.close()  # its scheduled write never ran
    gathered.write_out()  # what atexit does
    assert b"".join(out.writes) == b"last\n"


def _json_lines(capsys: pytest.CaptureFixture[str], log_calls: Callable[[Any], None]) -> list[Any]:
    configure("info", json=True)
    try:
        log_calls(structlog.get_logger("hookgate.test"))
    finally:
        structlog.reset_defaults()
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_json_line_holds_the_fields_then_event_level_and_utc_time(capsys):
    before = dt.datetime.now(dt.UTC)
    (line,) = _json_lines(capsys, lambda log: log.info("request_handled", status=202, peer=None))
    after = dt.datetime.now(dt.UTC)

    assert list(line) == ["status", "peer", "event", "level", "timestamp"]
    assert line | {"timestamp": None} == {
        "status": 202, "peer": None, "event": "request_handled", "level": "info", "timestamp": None
    }  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
    stamp = dt.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert before - dt.timedelta(microseconds=1) <= stamp <= after


def test_a_json_line_names_levels_and_renders_exceptions_as_structlog_does(capsys):
    def calls(log: Any) -> None:
        log.warning("one")
        log.debug("dropped: below the level")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("two")
        log.error("three", stack_info=True)

    one, two, three = _json_lines(capsys, calls)

    assert [one["level"], two["level"], three["level"]] == ["warning", "error", "error"]
    assert "exc_info" not in two and two["exception"].startswith("Traceback")
    assert "ValueError: boom" in two["exception"]
    assert "stack_info" not in three and "test_log_output.py" in three["stack"]


def test_the_request_line_written_directly_is_the_line_structlog_writes(capsys):
    def calls(log: Any) -> None:
        structlog.contextvars.bind_contextvars(target="sink")
        try:
            log.info("request_handled", status=202, peer=None, source="bench")
            info(log, "request_handled", {"status": 202, "peer": None, "source": "bench"})
        finally:
            structlog.contextvars.clear_contextvars()

    through_structlog, direct = _json_lines(capsys, calls)

    assert list(direct) == list(through_structlog)  # same keys, same order
    assert direct | {"timestamp": None} == through_structlog | {"timestamp": None}
    assert direct["target"] == "sink" and direct["event"] == "request_handled"


def test_the_direct_request_line_keeps_the_level(capsys):
    configure("warning", json=True)
    try:
        info(structlog.get_logger("hookgate.test"), "request_handled", {"status": 202})
    finally:
        structlog.reset_defaults()
    assert capsys.readouterr().err == ""


def test_captured_logs_still_see_the_request_line():
    configure("info", json=True)
    try:
        with structlog.testing.capture_logs() as captured:
            info(structlog.get_logger("hookgate.test"), "request_handled", {"status": 202})
    finally:
        structlog.reset_defaults()
    assert captured == [{"status": 202, "event": "request_handled", "log_level": "info"}]
