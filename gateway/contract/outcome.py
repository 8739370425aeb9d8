"""How a delivery attempt ended, and when (if ever) to try again.

`Outcome` and the status and Retry-After helpers are part of the plugin contract (a
target reports its result with them); `RetryPolicy` is the relay's, and lives here so
the config can build it without importing the relay.

Pure functions and values only: no I/O and no clock of its own, so callers pass `now`
and a random source, and tests can pin both.
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DELIVERED",
    "RETRYABLE",
    "Outcome",
    "RetryPolicy",
    "classify_status",
    "parse_retry_after",
]


class Outcome(enum.StrEnum):
    """How one delivery attempt ended; values are stored, so they never change."""

    HTTP_2XX = "HTTP_2XX"
    ACKED = "ACKED"  # a broker target confirmed it has the message
    HTTP_3XX = "HTTP_3XX"
    HTTP_5XX = "HTTP_5XX"
    HTTP_4XX_PERMANENT = "HTTP_4XX_PERMANENT"
    GONE = "GONE"  # 410: the target says it is gone for good; the target is paused
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    CONNECT_ERROR = "CONNECT_ERROR"
    DNS_ERROR = "DNS_ERROR"
    TLS_ERROR = "TLS_ERROR"
    TARGET_ERROR = "TARGET_ERROR"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    RELEASED = "RELEASED"  # handed back unfinished at shutdown; the next claim tries again
    TRANSFORM_ERROR = "TRANSFORM_ERROR"  # a middleware could not build the message: permanent


DELIVERED: frozenset[Outcome] = frozenset({Outcome.HTTP_2XX, Outcome.ACKED})
"""Outcomes that end a delivery as delivered."""

RETRYABLE: frozenset[Outcome] = frozenset(
    {
        Outcome.HTTP_5XX,
        Outcome.RATE_LIMITED,
        Outcome.TIMEOUT,
        Outcome.CONNECT_ERROR,
        Outcome.DNS_ERROR,
        Outcome.TLS_ERROR,
        Outcome.TARGET_ERROR,
        Outcome.LEASE_EXPIRED,
        Outcome.RELEASED,
    }
)
"""Outcomes followed by another attempt while the schedule lasts; all others are final."""

_DELTA_SECONDS = re.compile(r"[0-9]+")


def classify_status(status: int) -> Outcome:
    """Map an HTTP status code from the target to an `Outcome`.

    429 is `RATE_LIMITED` and 408 is `TIMEOUT` (both retried); 410 is `GONE` (the relay
    pauses the target); other 4xx are permanent.
    1xx and codes outside 100-599 are not a final answer from a sane server, so they
    count as `HTTP_5XX` and are retried rather than silently dropped.
    """
    if 200 <= status <= 299:
        return Outcome.HTTP_2XX
    if 300 <= status <= 399:
        return Outcome.HTTP_3XX
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 408:
        return Outcome.TIMEOUT
    if status == 410:
        return Outcome.GONE
    if 400 <= status <= 499:
        return Outcome.HTTP_4XX_PERMANENT
    return Outcome.HTTP_5XX


def parse_retry_after(value: str | None, now: datetime.datetime) -> float | None:
    """Return the seconds from `now` that a `Retry-After` header value asks us to wait.

    Accepts delta-seconds (a non-negative integer, surrounding whitespace allowed) and
    an HTTP-date (IMF-fixdate or anything `email.utils.parsedate_to_datetime` reads;
    a date without a zone is taken as UTC, as RFC 9110 dates are always GMT). Dates in
    the past give 0.0. Absent or unparseable values give None; this never raises, since
    the header is untrusted input. `now` should be an aware datetime (naive means UTC).
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        # float() of an absurdly long digit string is inf, which callers cap anyway.
        return float(text)
    when = _parse_http_date(text)
    if when is None:
        return None
    return max(0.0, (when - _as_utc(now)).total_seconds())


def _parse_http_date(text: str) -> datetime.datetime | None:
    try:
        return _as_utc(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a delivery: a fixed schedule of delays with symmetric jitter.

    `schedule[i]` is the base delay in seconds after attempt `i + 1` fails, so a
    delivery gets `len(schedule) + 1` attempts in all. `jitter` is the fraction each
    delay may move either way (0.2 means ±20%). `max_retry_after` caps how long a
    target's `Retry-After` can hold a delivery back.
    """

    schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    jitter: float = 0.2
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")
        if any(delay < 0 for delay in self.schedule):
            raise ValueError(f"schedule delays must be >= 0, got {self.schedule!r}")
        if self.max_retry_after < 0:
            raise ValueError(f"max_retry_after must be >= 0, got {self.max_retry_after!r}")

    def total_attempts(self) -> int:
        """Return how many attempts a delivery gets before it is dead."""
        return len(self.schedule) + 1

    def next_delay(
        self,
        attempt: int,
        outcome: Outcome,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Return seconds to wait before the next attempt, or None if the delivery ends.

        `attempt` is the 1-based number of the attempt that just finished with `outcome`.
        None means: it succeeded (`HTTP_2XX`), failed permanently (not in `RETRYABLE`),
        or was the last attempt (`attempt > len(schedule)`).

        The delay is `schedule[attempt - 1]` scaled by `1 + jitter * (2 * rand() - 1)`,
        with `rand()` in [0, 1). A `retry_after` (seconds, from the target's header) is a
        floor, never a ceiling: we do not retry earlier than the target asked, but we do
        not wait longer than `max_retry_after` for it either, so the delay is
        `max(jittered, min(retry_after, max_retry_after))`. It is honoured for any
        retryable outcome; only HTTP answers (429, 503, ...) can carry one.
        """
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt!r}")
        if outcome not in RETRYABLE or attempt > len(self.schedule):
            return None
        delay = self._jittered(self.schedule[attempt - 1], rand())
        if retry_after is None:
            return delay
        return max(delay, min(retry_after, self.max_retry_after))

    def _jittered(self, base: float, sample: float) -> float:
        return base * (1 + self.jitter * (2 * sample - 1))
