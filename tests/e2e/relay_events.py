"""Events to put straight into the store for relay tests that run real processes."""

from __future__ import annotations

import datetime as dt

from gateway.config import Config
from gateway.ids import delivery_id, event_id
from gateway.storage.store import EventRecord


def shop_events(config: Config, count: int) -> list[EventRecord]:
    """`count` events to source `shop`, due now (real time), routed by `config`."""
    now = dt.datetime.now(dt.UTC)
    events = []
    for n in range(count):
        new_id = event_id(now)
        targets = config.targets_for("shop", None)
        events.append(
            EventRecord(
                new_id,
                "shop",
                None,
                now,
                "POST",
                "/in/shop",
                "",
                [],
                b'{"n": %d}' % n,
                None,
                [(delivery_id(new_id, t), t) for t in targets],
            )
        )
    return events
