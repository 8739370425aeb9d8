"""Ingest requests are counted in plain numbers and added to the counter and histogram
when /metrics is read: the exposition is what inc() and observe() per request give."""

from __future__ import annotations

import random

from gateway.metrics import LATENCY, Metrics


def samples(metrics: Metrics) -> list[str]:
    """The exposition's lines, but the creation times (they differ between registries),
    with sums to 9 digits (added in another order, floats differ in the last ones)."""
    lines = []
    for line in metrics.exposition().decode().splitlines():
        if "_created" in line:
            continue
        if "_sum{" in line:
            name, value = line.rsplit(" ", 1)
            line = f"{name} {float(value):.9g}"
        lines.append(line)
    return sorted(lines)


def test_requests_read_at_scrape_time_expose_what_observing_each_would():
    rng = random.Random(8)
    edges = [*LATENCY, 0.0, 11.0]  # on each bucket's bound (le), below all and above all
    requests = [
        (rng.choice(["shop", "_unknown"]), rng.choice(["202", "401", "duplicate"]),
         rng.choice(edges) if rng.random() < 0.3 else rng.expovariate(40))
        for _ in range(3000)
    ]  # fmt: skip
    each, pending = Metrics(), Metrics()
    for source, result, seconds in requests[:1000]:
        each._child(each.requests, source, result).inc()
        each._child(each.ingest_seconds, source).observe(seconds)
        pending.request(source, result, seconds)
    assert samples(pending) == samples(each)

    for source, result, seconds in requests[1000:]:  # after a read: added to what was there
        each._child(each.requests, source, result).inc()
        each._child(each.ingest_seconds, source).observe(seconds)
        pending.request(source, result, seconds)
    assert samples(pending) == samples(each)
    assert any(line.startswith('hookgate_ingest_requests_total{result="duplicate"')
               for line in samples(pending))  # fmt: skip
