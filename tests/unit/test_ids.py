"""Event and delivery identifiers."""

from __future__ import annotations

import datetime as dt
import uuid

from gateway.ids import delivery_id, event_id, legacy_delivery_id

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


def test_a_delivery_id_is_the_same_after_a_round_trip_through_text():
    event = event_id(T0)
    made = delivery_id(event, "billing")
    assert uuid.UUID(str(made)) == made
    assert hash(uuid.UUID(str(made))) == hash(made)
    assert delivery_id(uuid.UUID(str(event)), "billing") == made


def test_the_legacy_derivation_is_kept_as_the_record_of_older_ids():
    event = uuid.UUID("01a2333c-564f-7d35-8b5e-89a21ec420b3")
    assert legacy_delivery_id(event, "billing") == uuid.UUID("01a2333c-564f-7d35-b07f-686df7b72501")


def test_event_ids_differ_even_within_one_millisecond():
    assert len({event_id(T0) for _ in range(2000)}) == 2000
