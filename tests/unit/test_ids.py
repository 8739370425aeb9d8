"""Event and delivery identifiers."""

from __future__ import annotations

import datetime as dt

from gateway.ids import delivery_id, event_id

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def test_event_ids_are_uuid7_ordered_by_time():
    ids = [event_id(T0 + dt.timedelta(milliseconds=n)) for n in range(50)]
    assert all(u.version == 7 for u in ids)
    assert ids == sorted(ids)
    assert int(ids[0].hex[:12], 16) == int(T0.timestamp() * 1000)


def test_a_delivery_id_is_stable_for_an_event_and_target():
    event = event_id(T0)
    assert delivery_id(event, "billing") == delivery_id(event, "billing")
    assert delivery_id(event, "billing") != delivery_id(event, "audit")
    assert delivery_id(event, "billing") != delivery_id(event_id(T0), "billing")


def test_delivery_ids_are_valid_uuid7_ordered_like_their_events():
    events = [event_id(T0 + dt.timedelta(milliseconds=n)) for n in range(50)]
    deliveries = [delivery_id(e, "billing") for e in events]
    assert all(d.version == 7 and d.variant == "specified in RFC 4122" for d in deliveries)
    assert deliveries == sorted(deliveries)
