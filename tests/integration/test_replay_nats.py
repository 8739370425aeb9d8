"""A replay to a NATS JetStream target: the same Nats-Msg-Id inside the stream's duplicate
window is dropped by the server; with new_key it is a new message."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import suppress

import nats
import orjson
import pytest
from conftest import make_config, relay_for
from nats.js.errors import NotFoundError

from gateway.admin.model import AdminModel
from gateway.clock import FrozenClock
from gateway.config import Config
from gateway.ids import delivery_id, event_id
from gateway.storage.store import EventRecord, Store


@pytest.fixture
async def jetstream(nats_url: str) -> AsyncIterator[tuple[str, str, object]]:
    tag = uuid.uuid4().hex[:12]
    client = await nats.connect(nats_url)
    js = client.jetstream()
    name, prefix = f"HG_{tag}", f"hg.{tag}"
    await js.add_stream(name=name, subjects=[f"{prefix}.>"], duplicate_window=120.0)
    yield name, prefix, js
    with suppress(NotFoundError):
        await js.delete_stream(name)
    await client.close()


async def send_due(store: Store, config: Config, clock: FrozenClock) -> None:
    async with relay_for(store, config, clock) as relay:
        assert await relay.run_once() == 1
        await relay.drain()


async def test_a_replay_to_nats_is_deduplicated_unless_it_gets_a_new_key(
    database_url, store, clock, jetstream, nats_url
):
    name, prefix, js = jetstream
    config = make_config(database_url, f"""
relay: {{enabled: false}}
sources: {{shop: {{}}}}
targets:
  events: {{type: nats, url: "{nats_url}", subject: "{prefix}.{{source}}", stream: {name}}}
routes: [{{source: shop, targets: [events]}}]
""")  # fmt: skip
    new_id = event_id(clock.now())
    key = delivery_id(new_id, "events")
    await store.insert_events([EventRecord(new_id, "shop", None, clock.now(), "POST", "/in/shop",
                                           "", [], b"{}", None, [(key, "events")])])  # fmt: skip
    model = AdminModel(store, config, clock)
    await send_due(store, config, clock)

    clock.advance(1)
    await model.replay_event(new_id, "ops")
    await send_due(store, config, clock)  # sent again with the same Nats-Msg-Id: dropped
    info = await js.stream_info(name)
    assert info.state.messages == 1
    (delivery,) = (await model.event(new_id)).deliveries
    assert (delivery.id, delivery.status, delivery.attempts) == (key, "delivered", 2)
    assert [a.outcome for a in delivery.history] == ["ACKED", "ACKED"]
    acks = [orjson.loads(a.response.raw()) for a in delivery.history]
    assert [ack["duplicate"] for ack in acks] == [False, True]

    clock.advance(1)
    await model.replay_event(new_id, "ops", new_key=True)
    await send_due(store, config, clock)
    info = await js.stream_info(name)
    assert info.state.messages == 2
    ids = [(await js.get_msg(name, seq)).headers["Nats-Msg-Id"] for seq in (1, 2)]
    (renewed,) = (await model.event(new_id)).deliveries
    assert ids == [str(key), str(renewed.id)] and renewed.id != key
