"""How the inspector shows times, sizes, delivery states and bodies."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.ui.format import absolute, duration, pill, relative, show_body, size

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("seconds_ago", "text"),
    [
        (0, "just now"),
        (5, "5 s ago"),
        (59, "59 s ago"),
        (60, "1 min ago"),
        (3599, "59 min ago"),
        (7200, "2 h ago"),
        (90000, "1 d ago"),
        (-30, "in 30 s"),
    ],
)
def test_relative_time(seconds_ago: int, text: str) -> None:
    assert relative(NOW - dt.timedelta(seconds=seconds_ago), NOW) == text


def test_absolute_time_is_utc_to_the_millisecond() -> None:
    moment = dt.datetime(2026, 1, 1, 13, 2, 3, 456789, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert absolute(moment) == "2026-01-01 12:02:03.456 UTC"
    assert absolute(None) == "" and relative(None, NOW) == "—"


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 1024**2, "3.0 MiB"), (None, "—")],
)
def test_size(count: int | None, text: str) -> None:
    assert size(count) == text


def test_duration() -> None:
    assert (duration(12.4), duration(1250), duration(None)) == ("12 ms", "1.25 s", "—")


@pytest.mark.parametrize(
    ("status", "attempts", "tone", "word"),
    [
        ("delivered", 1, "ok", "delivered"),
        ("pending", 0, "wait", "pending"),
        ("pending", 2, "wait", "retrying"),
        ("in_flight", 1, "wait", "sending"),
        ("dead", 7, "bad", "dead"),
        ("filtered", 0, "off", "filtered"),
    ],
)
def test_every_pill_has_a_word_and_an_icon_beside_its_colour(
    status: str, attempts: int, tone: str, word: str
) -> None:
    shown = pill(status, attempts)
    assert (shown.tone, shown.word) == (tone, word)
    assert shown.icon


def test_an_unknown_status_is_shown_by_its_name() -> None:
    assert pill("mystery").word == "mystery"


def test_json_bodies_are_pretty_printed_and_kept_raw() -> None:
    body = show_body('{"a":[1,2],"b":"é"}')
    assert body.encoding == "utf-8"
    assert body.raw == '{"a":[1,2],"b":"é"}'
    assert body.pretty == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "é"\n}'


def test_text_that_is_not_json_has_no_pretty_form() -> None:
    assert show_body("a=1&b=2").pretty is None
    assert show_body("{not json").pretty is None


def test_bytes_that_are_not_utf8_are_shown_as_base64() -> None:
    body = show_body(None, "//48c2NyaXB0Pg==")
    assert (body.encoding, body.raw, body.pretty) == ("base64", "//48c2NyaXB0Pg==", None)
