"""The dashboard's bar charts: counts per bucket in, stacked rectangles out."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.ui.charts import bar_chart, nice_ceiling

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def minutes(count: int) -> list[dt.datetime]:
    return [T0 + dt.timedelta(minutes=i) for i in range(count)]


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (99, 100), (4001, 5000)],
)
def test_nice_ceiling_rounds_up_to_1_2_5(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


def test_the_tallest_bucket_fills_the_height_it_rounds_to() -> None:
    chart = bar_chart(minutes(4), {"in": [0, 5, 10, 0]}, width=40, height=100)
    assert chart.top == 10
    assert [(b.x, b.y, b.height) for b in chart.bars] == [(10.0, 50.0, 50.0), (20.0, 0.0, 100.0)]
    assert all(b.width == 9.0 for b in chart.bars)


def test_series_stack_with_the_first_at_the_bottom() -> None:
    chart = bar_chart(minutes(1), {"ok": [6], "failed": [4]}, width=10, height=100)
    ok, failed = chart.bars
    assert (ok.series, ok.y, ok.height) == ("ok", 40.0, 60.0)
    assert (failed.series, failed.y, failed.height) == ("failed", 0.0, 40.0)
    assert chart.total == {"ok": 6, "failed": 4}


def test_each_bar_says_its_time_and_count() -> None:
    chart = bar_chart(minutes(2), {"delivered": [0, 3]})
    assert [b.title for b in chart.bars] == ["12:01 delivered: 3"]


def test_an_empty_hour_draws_no_bars_but_keeps_its_time_axis() -> None:
    chart = bar_chart(minutes(60), {"in": [0] * 60})
    assert chart.bars == ()
    assert [t.label for t in chart.ticks] == ["12:00", "12:15", "12:30", "12:45"]
    assert chart.top == 1


def test_a_series_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="2 counts for 3 buckets"):
        bar_chart(minutes(3), {"in": [1, 2]})
