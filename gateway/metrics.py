"""Prometheus metrics: one registry per app, counted where things happen, read at /metrics.

The hot paths (an ingest request, a delivery attempt) touch pre-bound label children
kept in a dict, not `labels()` (a lock and a tuple of strings per call). An ingest
request touches less still: plain numbers per source (`_Pending`), added to the
request counter and latency histogram when /metrics is read, so the exposition is the
same and a request costs a dict lookup and a bisect instead of two locked updates. Queue depths
are not counted in process: N workers share a database, so `/metrics` reads them from
it, with one query, at scrape time (`gateway.storage.stats.queue_gauges`).

Names (all prefixed `hookgate_`) are listed in README "Operations"; the dashboard in
docs/grafana-dashboard.json and the rules in docs/prometheus-alerts.yaml use them.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
END_TO_END = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0)
ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
UNKNOWN_SOURCE = "_unknown"  # a 404 for a source no config names: one label, not one per path
# What a verifier's message says, reduced to a few classes (the label stays bounded).
_REASONS = (
    ("missing", "missing"),
    ("expired", "timestamp"),
    ("timestamp", "timestamp"),
    ("too old", "timestamp"),
    ("malformed", "malformed"),
    ("not match", "mismatch"),
    ("signature", "mismatch"),
)


def reason_class(message: str) -> str:
    """`missing`, `timestamp`, `malformed`, `mismatch` or `other`."""
    lowered = message.lower()
    return next((kind for word, kind in _REASONS if word in lowered), "other")


class _Pending:
    """One source's requests since /metrics was last read: answers by result, latencies
    by `LATENCY` bucket (the last one is +Inf) and their sum."""

    __slots__ = ("buckets", "results", "seconds")

    def __init__(self) -> None:
        self.results: dict[str, int] = {}
        self.buckets = [0] * (len(LATENCY) + 1)
        self.seconds = 0.0


class Metrics:
    """Every metric of one app, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._ingest_metrics()
        self._relay_metrics()
        self._queue_metrics()
        self._children: dict[tuple[Any, ...], Any] = {}
        self._pending: dict[str, _Pending] = {}

    def _ingest_metrics(self) -> None:
        r = self.registry
        self.requests = Counter(
            "hookgate_ingest_requests",
            "Requests to sources, by answer",
            ["source", "result"],
            registry=r,
        )
        self.verify_failures = Counter(
            "hookgate_ingest_verification_failures",
            "Requests whose verification failed, by reason class",
            ["source", "reason"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "hookgate_ingest_duration_seconds",
            "Time to answer a source's request",
            ["source"],
            buckets=LATENCY,
            registry=r,
        )
        self.batch_rows = Histogram(
            "hookgate_ingest_commit_batch_rows", "Events per group commit", buckets=ROWS, registry=r
        )
        self.commit_seconds = Histogram(
            "hookgate_ingest_commit_duration_seconds",
            "Time a group commit took",
            buckets=LATENCY,
            registry=r,
        )

    def _relay_metrics(self) -> None:
        r = self.registry
        self.attempts = Counter(
            "hookgate_relay_attempts",
            "Delivery attempts, by outcome",
            ["target", "outcome"],
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "hookgate_relay_attempt_duration_seconds",
            "Time a delivery attempt took",
            ["target"],
            buckets=LATENCY,
            registry=r,
        )
        self.end_to_end = Histogram(
            "hookgate_relay_end_to_end_seconds",
            "From receipt to successful delivery",
            ["target"],
            buckets=END_TO_END,
            registry=r,
        )
        self.dead = Counter(
            "hookgate_relay_dead", "Deliveries that went dead", ["target"], registry=r
        )
        self.alerts = Counter(
            "hookgate_alerts", "Failure alerts, sent or suppressed", ["kind", "result"], registry=r
        )

    def _queue_metrics(self) -> None:
        r = self.registry
        self.queue = Gauge(
            "hookgate_queue_deliveries",
            "Deliveries by state, from the database",
            ["target", "state"],
            registry=r,
        )
        self.oldest_due = Gauge(
            "hookgate_queue_oldest_due_age_seconds",
            "How long the oldest due delivery has waited",
            ["target"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "hookgate_target_breaker_open", "1 while the breaker is open", ["target"], registry=r
        )
        self.paused = Gauge(
            "hookgate_target_paused", "1 while the target is paused", ["target"], registry=r
        )

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, source: str, result: str, seconds: float) -> None:
        """One answered request to a source: `result` is its status, or `duplicate`."""
        pending = self._pending.get(source)
        if pending is None:
            pending = self._pending[source] = _Pending()
        pending.results[result] = pending.results.get(result, 0) + 1
        pending.buckets[bisect.bisect_left(LATENCY, seconds)] += 1  # le: the first bound >= it
        pending.seconds += seconds

    def _add_pending(self) -> None:
        """The requests counted since the last read, into their counter and histogram."""
        pending, self._pending = self._pending, {}
        for source, counted in pending.items():
            for result, n in counted.results.items():
                self._child(self.requests, source, result).inc(n)
            histogram = self._child(self.ingest_seconds, source)
            # prometheus-client has no public "n observations in this bucket": its
            # histogram child keeps one value per bucket (+Inf last) and the sum.
            for bucket, n in zip(histogram._buckets, counted.buckets, strict=True):
                if n:
                    bucket.inc(n)
            histogram._sum.inc(counted.seconds)

    def verification_failed(self, source: str, message: str) -> None:
        self._child(self.verify_failures, source, reason_class(message)).inc()

    def committed(self, rows: int, seconds: float) -> None:
        self.batch_rows.observe(rows)
        self.commit_seconds.observe(seconds)

    def attempt(self, target: str, outcome: str, seconds: float) -> None:
        self._child(self.attempts, target, outcome).inc()
        self._child(self.attempt_seconds, target).observe(seconds)

    def delivered(self, target: str, received_at: dt.datetime, now: dt.datetime) -> None:
        self._child(self.end_to_end, target).observe(max(0.0, (now - received_at).total_seconds()))

    def went_dead(self, target: str) -> None:
        self._child(self.dead, target).inc()

    def alerted(self, kind: str, result: str) -> None:
        """An alert of type `kind` was `sent` or `suppressed` (by its minimum interval)."""
        self._child(self.alerts, kind, result).inc()

    def set_queue(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """The gauges from `gateway.storage.stats.queue_gauges` rows (one per configured target)."""
        for row in rows:
            name = str(row["name"])
            for state in ("pending", "due", "in_flight", "dead"):
                self._child(self.queue, name, state).set(row[state])
            self._child(self.oldest_due, name).set(row["oldest_due_age"] or 0.0)
            self._child(self.breaker_open, name).set(1 if row["breaker_open"] else 0)
            self._child(self.paused, name).set(1 if row["paused"] else 0)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        self._add_pending()
        return generate_latest(self.registry)
