import datetime
from collections.abc import Callable

import pytest

from gateway.contract.outcome import (
    RETRYABLE,
    Outcome,
    RetryPolicy,
    classify_status,
    parse_retry_after,
)

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
PERMANENT = sorted(set(Outcome) - RETRYABLE)


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0, Outcome.HTTP_5XX),
        (100, Outcome.HTTP_5XX),
        (199, Outcome.HTTP_5XX),
        (200, Outcome.HTTP_2XX),
        (204, Outcome.HTTP_2XX),
        (299, Outcome.HTTP_2XX),
        (300, Outcome.HTTP_3XX),
        (301, Outcome.HTTP_3XX),
        (399, Outcome.HTTP_3XX),
        (400, Outcome.HTTP_4XX_PERMANENT),
        (404, Outcome.HTTP_4XX_PERMANENT),
        (407, Outcome.HTTP_4XX_PERMANENT),
        (408, Outcome.TIMEOUT),
        (409, Outcome.HTTP_4XX_PERMANENT),
        (428, Outcome.HTTP_4XX_PERMANENT),
        (429, Outcome.RATE_LIMITED),
        (430, Outcome.HTTP_4XX_PERMANENT),
        (499, Outcome.HTTP_4XX_PERMANENT),
        (500, Outcome.HTTP_5XX),
        (503, Outcome.HTTP_5XX),
        (599, Outcome.HTTP_5XX),
        (600, Outcome.HTTP_5XX),
        (999, Outcome.HTTP_5XX),
    ],
)
def test_classify_status_maps_each_class_boundary(status: int, expected: Outcome) -> None:
    assert classify_status(status) is expected


def test_informational_status_is_retried_not_dropped() -> None:
    assert classify_status(102) in RETRYABLE


def test_outcome_values_are_their_names() -> None:
    assert [o.value for o in Outcome] == [o.name for o in Outcome]


def test_only_success_redirect_and_client_error_are_not_retryable() -> None:
    assert set(Outcome) - RETRYABLE == {
        Outcome.HTTP_2XX,
        Outcome.ACKED,
        Outcome.HTTP_3XX,
        Outcome.HTTP_4XX_PERMANENT,
        Outcome.TRANSFORM_ERROR,
        Outcome.GONE,
    }


def test_default_policy_gives_eight_attempts() -> None:
    policy = RetryPolicy()
    assert policy.schedule == DEFAULT_SCHEDULE
    assert policy.total_attempts() == 8


@pytest.mark.parametrize(("attempt", "base"), list(enumerate(DEFAULT_SCHEDULE, start=1)))
@pytest.mark.parametrize(("sample", "factor"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_delay_is_schedule_entry_with_jitter(
    attempt: int, base: float, sample: float, factor: float
) -> None:
    delay = RetryPolicy().next_delay(attempt, Outcome.HTTP_5XX, rand=fixed(sample))
    assert delay == pytest.approx(base * factor, rel=1e-5)


@pytest.mark.parametrize("sample", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999])
def test_jitter_stays_within_twenty_percent(sample: float) -> None:
    policy = RetryPolicy()
    for attempt, base in enumerate(DEFAULT_SCHEDULE, start=1):
        delay = policy.next_delay(attempt, Outcome.TIMEOUT, rand=fixed(sample))
        assert delay is not None
        assert 0.8 * base <= delay < 1.2 * base


def test_zero_jitter_returns_exact_schedule() -> None:
    policy = RetryPolicy(jitter=0.0)
    delays = [policy.next_delay(n, Outcome.HTTP_5XX) for n in range(1, 8)]
    assert delays == list(DEFAULT_SCHEDULE)


def test_last_scheduled_attempt_is_still_retried() -> None:
    assert RetryPolicy().next_delay(7, Outcome.HTTP_5XX, rand=fixed(0.5)) == 36000


def test_schedule_is_exhausted_at_attempt_len_plus_one() -> None:
    policy = RetryPolicy()
    assert policy.next_delay(policy.total_attempts(), Outcome.HTTP_5XX) is None
    assert policy.next_delay(policy.total_attempts() + 1, Outcome.HTTP_5XX) is None


def test_custom_schedule_is_exhausted_after_its_own_length() -> None:
    policy = RetryPolicy(schedule=(1, 2), jitter=0.0)
    assert policy.total_attempts() == 3
    assert [policy.next_delay(n, Outcome.CONNECT_ERROR) for n in (1, 2, 3)] == [1, 2, None]


def test_exhausted_schedule_ignores_retry_after() -> None:
    assert RetryPolicy().next_delay(8, Outcome.RATE_LIMITED, retry_after=10) is None


@pytest.mark.parametrize("outcome", sorted(RETRYABLE))
def test_every_retryable_outcome_gets_a_delay(outcome: Outcome) -> None:
    assert RetryPolicy().next_delay(1, outcome, rand=fixed(0.5)) == 5


@pytest.mark.parametrize("outcome", PERMANENT)
def test_permanent_outcomes_end_the_delivery(outcome: Outcome) -> None:
    assert RetryPolicy().next_delay(1, outcome, retry_after=60) is None


def test_attempt_zero_is_rejected() -> None:
    with pytest.raises(ValueError, match="1-based"):
        RetryPolicy().next_delay(0, Outcome.HTTP_5XX)


@pytest.mark.parametrize("kwargs", [{"jitter": -0.1}, {"jitter": 1.5}, {"schedule": (5, -1)}])
def test_invalid_policy_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, 5.0),  # no header: the schedule alone
        (2.0, 5.0),  # asked for less than the schedule: the schedule wins
        (120.0, 120.0),  # asked for more: never retry earlier than asked
        (3600.0, 3600.0),
        (86400.0, 3600.0),  # capped by max_retry_after
        (float("inf"), 3600.0),
    ],
)
def test_retry_after_is_a_floor_capped_by_max_retry_after(
    retry_after: float | None, expected: float
) -> None:
    delay = RetryPolicy().next_delay(1, Outcome.RATE_LIMITED, retry_after, rand=fixed(0.5))
    assert delay == expected


def test_retry_after_cap_never_shortens_the_schedule() -> None:
    policy = RetryPolicy(max_retry_after=60)
    assert policy.next_delay(3, Outcome.HTTP_5XX, retry_after=600, rand=fixed(0.5)) == 1800


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("  120\t", 120.0),
        ("007", 7.0),
    ],
)
def test_retry_after_delta_seconds_is_parsed(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 01 May 2024 12:01:30 GMT",  # IMF-fixdate
        "Wednesday, 01-May-24 12:01:30 GMT",  # obsolete RFC 850
        "Wed May  1 12:01:30 2024",  # obsolete asctime, no zone: GMT
        "Wed, 01 May 2024 14:01:30 +0200",  # numeric zone, same instant
    ],
)
def test_retry_after_http_date_is_honoured(value: str) -> None:
    assert parse_retry_after(value, NOW) == 90.0


def test_retry_after_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0


def test_retry_after_with_naive_now_is_taken_as_utc() -> None:
    naive_now = NOW.replace(tzinfo=None)
    assert parse_retry_after("Wed, 01 May 2024 12:01:30 GMT", naive_now) == 90.0


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "1.5",
        "+120",
        "12abc",
        "1e3",
        "\u0661\u0662\u0660",  # Arabic-Indic digits: float() takes them, HTTP does not
        "Wed, 99 Foo 2024 12:00:00 GMT",
        "Wed, 21 Oct 2015 25:28:00 GMT",
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 +9999",
    ],
)
def test_retry_after_garbage_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_huge_retry_after_is_capped_end_to_end() -> None:
    retry_after = parse_retry_after("9" * 400, NOW)
    delay = RetryPolicy().next_delay(1, Outcome.RATE_LIMITED, retry_after, rand=fixed(0.5))
    assert delay == 3600.0
