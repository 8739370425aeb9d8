"""The relay against a real Postgres and real HTTP targets: retries, outcomes, leases, signing.

Each test builds its own `Relay` on the test's `FrozenClock` (with `rand` pinned to 0.5,
so the retry schedule has no jitter) and drives it with `run_once()` and `drain()`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Sequence
from email.utils import format_datetime
from typing import Any

from conftest import Recorder, make_config, relay_for
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook
from structlog.testing import capture_logs

from gateway.clock import FrozenClock
from gateway.config import Config, parse_config
from gateway.ids import delivery_id, event_id
from gateway.plugin import Message, SendResult
from gateway.plugins import load_registry
from gateway.relay.worker import Relay
from gateway.storage.store import AttemptResult, EventRecord, Store

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type": "order.paid", "id": "evt_1"}'


def relay_config(database_url: str, targets: dict[str, str]) -> Config:
    """Source `shop` routed to every target; `targets` maps a name to its flow-YAML options."""
    lines = "\n".join(f"  {name}: {{{options}}}" for name, options in targets.items())
    return make_config(
        database_url,
        f"""
relay: {{enabled: false}}
sources:
  shop: {{}}
targets:
{lines}
routes:
  - {{source: shop, targets: [{", ".join(targets)}]}}
""",
    )


def one_target(database_url: str, url: str, extra: str = "") -> Config:
    """Source `shop` routed to one target `t` at `url`, with `extra` flow-YAML options."""
    return relay_config(database_url, {"t": f'url: "{url}"' + (f", {extra}" if extra else "")})


def shop_event(
    clock: FrozenClock,
    targets: Sequence[str] = ("t",),
    headers: Sequence[tuple[str, str]] = (("Content-Type", "application/json"),),
    body: bytes = BODY,
) -> EventRecord:
    new_id = event_id(clock.now())
    return EventRecord(
        id=new_id,
        source="shop",
        event_type="order.paid",
        received_at=clock.now(),
        method="POST",
        path="/in/shop",
        query="",
        headers=list(headers),
        body=body,
        peer="203.0.113.7",
        deliveries=[(delivery_id(new_id, name), name) for name in targets],
    )


async def deliver_due(relay: Relay) -> int:
    """Claim what is due, wait for every send to be recorded; the number claimed."""
    claimed = await relay.run_once()
    await relay.drain()
    return claimed


async def the_delivery(store: Store, event: EventRecord) -> dict:
    (delivery,) = await store.deliveries(event.id)
    return delivery


def received(recorder: Recorder, index: int) -> CIMultiDict[str]:
    return CIMultiDict(recorder.requests[index][0])


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def test_retry_after_a_500_keeps_the_identity_and_waits_for_the_schedule(
    database_url, store, clock, target
):
    t = await target()
    t.recorder.script.append((500, {}, b"billing is down"))
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, one_target(database_url, t.url), clock) as relay:
        assert await deliver_due(relay) == 1
        first_try = clock.now()
        delivery = await the_delivery(store, event)
        assert delivery["status"] == "pending"
        assert delivery["due_at"] == first_try + dt.timedelta(seconds=5)

        assert await deliver_due(relay) == 0  # not due yet
        clock.advance(4.999)
        assert await deliver_due(relay) == 0
        clock.advance(0.001)
        assert await deliver_due(relay) == 1

    assert (await the_delivery(store, event))["status"] == "delivered"
    first, second = received(t.recorder, 0), received(t.recorder, 1)
    expected_id = str(delivery_id(event.id, "t"))
    for headers in (first, second):
        assert headers["Idempotency-Key"] == expected_id
        assert headers["X-Hookgate-Delivery-Id"] == expected_id
        assert headers["X-Hookgate-Event-Id"] == str(event.id)
    assert (first["X-Hookgate-Attempt"], second["X-Hookgate-Attempt"]) == ("1", "2")
    assert [body for _, body in t.recorder.requests] == [BODY, BODY]

    attempts = await store.attempts(delivery["id"])
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "HTTP_5XX", 500),
        (2, "HTTP_2XX", 200),
    ]
    assert attempts[0]["response_body"] == b"billing is down"
    assert attempts[1]["response_body"] == b"ok"
    assert [a["started_at"] for a in attempts] == [first_try, first_try + dt.timedelta(seconds=5)]


async def test_retry_after_seconds_from_a_429_is_honoured(database_url, store, clock, target):
    t = await target()
    t.recorder.script.append((429, {"Retry-After": "120"}, b"slow down"))
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, one_target(database_url, t.url), clock) as relay:
        await deliver_due(relay)
        delivery = await the_delivery(store, event)
        assert delivery["status"] == "pending"
        assert delivery["last_outcome"] == "RATE_LIMITED"
        assert delivery["due_at"] == clock.now() + dt.timedelta(seconds=120)

        clock.advance(60)
        assert await deliver_due(relay) == 0
        clock.advance(61)
        assert await deliver_due(relay) == 1

    assert (await the_delivery(store, event))["status"] == "delivered"
    (first, _) = await store.attempts(delivery["id"])
    assert (first["outcome"], first["status_code"]) == ("RATE_LIMITED", 429)
    assert ("Retry-After", "120") in first["response_headers"]


async def test_retry_after_http_date_is_honoured(database_url, store, clock, target):
    t = await target()
    when = format_datetime(clock.now() + dt.timedelta(seconds=90), usegmt=True)
    t.recorder.script.append((503, {"Retry-After": when}, b"maintenance"))
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, one_target(database_url, t.url), clock) as relay:
        await deliver_due(relay)
        delivery = await the_delivery(store, event)
        assert delivery["last_outcome"] == "HTTP_5XX"
        assert delivery["due_at"] == clock.now() + dt.timedelta(seconds=90)

        clock.advance(89)
        assert await deliver_due(relay) == 0
        clock.advance(1)
        assert await deliver_due(relay) == 1

    assert (await the_delivery(store, event))["status"] == "delivered"


async def test_retry_after_is_capped_by_max_retry_after(database_url, store, clock, target):
    t = await target()
    t.recorder.script.append((429, {"Retry-After": "86400"}, b""))
    event = shop_event(clock)
    await store.insert_events([event])
    config = one_target(database_url, t.url, "retry: {max_retry_after: 10m}")

    async with relay_for(store, config, clock) as relay:
        await deliver_due(relay)

    delivery = await the_delivery(store, event)
    assert delivery["due_at"] == clock.now() + dt.timedelta(minutes=10)


async def test_a_422_is_dead_after_one_attempt(database_url, store, clock, target):
    t = await target()
    t.recorder.script.append((422, {}, b'{"error": "unknown customer"}'))
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, one_target(database_url, t.url), clock) as relay:
        assert await deliver_due(relay) == 1
        clock.advance(86400)
        assert await deliver_due(relay) == 0

    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["last_outcome"]) == ("dead", "HTTP_4XX_PERMANENT")
    (attempt,) = await store.attempts(delivery["id"])
    assert (attempt["outcome"], attempt["status_code"]) == ("HTTP_4XX_PERMANENT", 422)
    assert attempt["response_body"] == b'{"error": "unknown customer"}'
    assert len(t.recorder.requests) == 1


async def test_a_redirect_is_dead_and_not_followed(database_url, store, clock, target):
    t, elsewhere = await target(), await target()
    t.recorder.script.append((302, {"Location": elsewhere.url}, b""))
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, one_target(database_url, t.url), clock) as relay:
        await deliver_due(relay)

    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["last_outcome"]) == ("dead", "HTTP_3XX")
    (attempt,) = await store.attempts(delivery["id"])
    assert attempt["status_code"] == 302
    assert ("Location", elsewhere.url) in attempt["response_headers"]
    assert len(t.recorder.requests) == 1
    assert elsewhere.recorder.requests == []


async def test_an_exhausted_retry_schedule_ends_dead(database_url, store, clock, target):
    t = await target()
    t.recorder.script.extend([(500, {}, b"no")] * 4)
    event = shop_event(clock)
    await store.insert_events([event])
    config = one_target(database_url, t.url, "retry: {schedule: [1s, 2s]}")

    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 1
        clock.advance(1)
        assert await deliver_due(relay) == 1
        clock.advance(2)
        assert await deliver_due(relay) == 1
        clock.advance(86400)
        assert await deliver_due(relay) == 0

    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["attempts"]) == ("dead", 3)
    attempts = await store.attempts(delivery["id"])
    assert [a["outcome"] for a in attempts] == ["HTTP_5XX"] * 3
    assert len(t.recorder.requests) == 3


async def test_a_refused_connection_is_a_connect_error_and_retried(database_url, store, clock):
    event = shop_event(clock)
    await store.insert_events([event])

    async with relay_for(store, one_target(database_url, closed_port_url()), clock) as relay:
        await deliver_due(relay)

    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["last_outcome"]) == ("pending", "CONNECT_ERROR")
    assert delivery["due_at"] == clock.now() + dt.timedelta(seconds=5)
    (attempt,) = await store.attempts(delivery["id"])
    assert attempt["status_code"] is None
    assert attempt["error"]


async def test_an_unresolvable_host_is_a_dns_error_and_retried(database_url, store, clock):
    event = shop_event(clock)
    await store.insert_events([event])
    # .invalid never resolves (RFC 6761); this sandbox's resolver answers NXDOMAIN at once.
    config = one_target(database_url, "http://does-not-exist.invalid/hook")

    async with relay_for(store, config, clock) as relay:
        await deliver_due(relay)

    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["last_outcome"]) == ("pending", "DNS_ERROR")
    assert delivery["due_at"] == clock.now() + dt.timedelta(seconds=5)


async def test_a_target_slower_than_its_timeout_is_a_timeout_and_retried(
    database_url, store, clock, target
):
    t = await target()
    t.recorder.hold = asyncio.Event()
    event = shop_event(clock)
    await store.insert_events([event])

    try:
        async with relay_for(store, one_target(database_url, t.url, "timeout: 1s"), clock) as relay:
            await deliver_due(relay)  # waits out the 1 s timeout in real time
    finally:
        t.recorder.hold.set()

    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["last_outcome"]) == ("pending", "TIMEOUT")
    assert delivery["due_at"] == clock.now() + dt.timedelta(seconds=5)
    (attempt,) = await store.attempts(delivery["id"])
    assert attempt["status_code"] is None
    assert attempt["duration_ms"] >= 1000


async def test_a_dead_workers_lease_expires_and_another_worker_delivers(
    database_url, store, clock, target
):
    t = await target()
    event = shop_event(clock)
    await store.insert_events([event])
    (lost,) = await store.claim({"t": 10}, clock.now(), lease=60, worker="dead")

    async with relay_for(store, one_target(database_url, t.url), clock, "alive") as relay:
        assert await deliver_due(relay) == 0  # still leased to "dead"
        clock.advance(61)
        assert await deliver_due(relay) == 1

    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    attempts = await store.attempts(lost.id)
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in attempts] == [
        (1, "dead", "LEASE_EXPIRED"),
        (2, "alive", "HTTP_2XX"),
    ]
    assert received(t.recorder, 0)["X-Hookgate-Attempt"] == "2"

    # The dead worker wakes up and reports a failure for its attempt: it is fenced off.
    late = AttemptResult(
        delivery_id=lost.id,
        attempt=1,
        duration_ms=61_000.0,
        outcome="HTTP_5XX",
        status_code=500,
        response_headers=(),
        response_body=b"",
        error=None,
        next_status="pending",
        next_due=clock.now() + dt.timedelta(seconds=5),
    )
    assert await store.finish(late, clock.now()) is False
    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    clock.advance(3600)
    assert await store.claim({"t": 10}, clock.now(), lease=60, worker="other") == []


async def test_graceful_stop_releases_in_flight_deliveries(database_url, store, clock, target):
    t = await target()
    held = t.recorder.hold = asyncio.Event()
    event = shop_event(clock)
    await store.insert_events([event])
    config = one_target(database_url, t.url)

    try:
        async with relay_for(store, config, clock, "leaving") as relay:
            assert await relay.run_once() == 1
            await t.recorder.wait_for(1)
            await relay.stop(grace=0.1)

            delivery = await the_delivery(store, event)
            assert (delivery["status"], delivery["due_at"]) == ("pending", clock.now())
            assert delivery["worker"] is None
            (attempt,) = await store.attempts(delivery["id"])
            assert (attempt["outcome"], attempt["worker"]) == ("RELEASED", "leaving")
    finally:
        t.recorder.hold = None
        held.set()

    async with relay_for(store, config, clock, "next") as relay:
        assert await deliver_due(relay) == 1

    assert (await the_delivery(store, event))["status"] == "delivered"
    first, second = received(t.recorder, 0), received(t.recorder, 1)
    assert second["X-Hookgate-Attempt"] == "2"
    assert second["Idempotency-Key"] == first["Idempotency-Key"] == str(delivery["id"])


async def test_standard_webhooks_signature_verifies_with_the_reference_library(
    database_url, store, target
):
    # The reference library checks webhook-timestamp against the wall clock.
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    t = await target()
    t.recorder.script.append((500, {}, b""))
    event = shop_event(clock)
    await store.insert_events([event])
    sign = f'sign: {{type: standard-webhooks, secret: "{SECRET}"}}'

    async with relay_for(store, one_target(database_url, t.url, sign), clock) as relay:
        await deliver_due(relay)
        clock.advance(5)
        await deliver_due(relay)

    assert len(t.recorder.requests) == 2
    ids = []
    for headers, body in t.recorder.requests:
        assert Webhook(SECRET).verify(body, headers) == {"type": "order.paid", "id": "evt_1"}
        lowered = {name.lower(): value for name, value in headers.items()}
        assert lowered["webhook-id"] == lowered["idempotency-key"]
        ids.append(lowered["webhook-id"])
    assert ids[0] == ids[1] == str(delivery_id(event.id, "t"))


async def test_only_configured_original_headers_are_forwarded(database_url, store, clock, target):
    picky, everything = await target(), await target()
    config = relay_config(
        database_url,
        {
            "picky": f'url: "{picky.url}", forward_headers: ["X-GITHUB-*", "x-trace-id"]',
            "everything": f'url: "{everything.url}", forward_headers: ["*"]',
        },
    )
    original = (
        ("Host", "hooks.example.com"),
        ("Content-Length", "9999"),
        ("Content-Type", "application/vnd.github+json"),
        ("X-GitHub-Event", "push"),
        ("x-github-delivery", "72d3162e"),
        ("X-Trace-Id", "abc123"),
        ("Authorization", "Bearer provider-token"),
        ("X-Other", "not forwarded"),
    )
    event = shop_event(clock, targets=("picky", "everything"), headers=original)
    await store.insert_events([event])

    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 2

    sent = received(picky.recorder, 0)
    assert sent["Content-Type"] == "application/vnd.github+json"
    assert sent["X-GitHub-Event"] == "push"
    assert sent["X-GitHub-Delivery"] == "72d3162e"
    assert sent["X-Trace-Id"] == "abc123"
    for absent in ("Authorization", "X-Other"):
        assert absent not in sent
    for headers in (sent, received(everything.recorder, 0)):
        assert headers["Host"] != "hooks.example.com"
        assert headers.getall("Content-Length") == [str(len(BODY))]
    assert received(everything.recorder, 0)["Authorization"] == "Bearer provider-token"


async def test_forwarded_headers_never_override_hookgate_identity_headers(
    database_url, store, clock, target
):
    t = await target()
    config = one_target(database_url, t.url, 'forward_headers: ["*"]')
    original = (
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "provider-chosen-key"),
        ("X-Hookgate-Event-Id", "spoofed"),
    )
    event = shop_event(clock, headers=original)
    await store.insert_events([event])

    async with relay_for(store, config, clock) as relay:
        await deliver_due(relay)

    # The recorder keeps the first value of a repeated header, as most frameworks read it.
    sent = received(t.recorder, 0)
    assert sent["Idempotency-Key"] == str(delivery_id(event.id, "t"))
    assert sent["X-Hookgate-Event-Id"] == str(event.id)


async def test_an_interrupted_attempt_does_not_use_up_the_retry_schedule(
    database_url, store, clock, target
):
    t = await target()
    config = one_target(database_url, t.url, "retry: {schedule: [1s]}")
    event = shop_event(clock)
    await store.insert_events([event])
    await store.claim({"t": 1}, clock.now(), lease=60, worker="crashed")
    clock.advance(61)  # that worker died: attempt 1 is cut short
    t.recorder.script.append((500, {}, b""))

    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 1  # attempt 2: the first answered one, a 500
        delivery = await the_delivery(store, event)
        assert (delivery["status"], delivery["interruptions"]) == ("pending", 1)
        clock.advance(1)
        assert await deliver_due(relay) == 1  # the one retry the schedule allows
    assert (await the_delivery(store, event))["status"] == "delivered"


async def test_a_delivery_whose_workers_keep_dying_ends_dead_without_being_sent(
    database_url, store, clock, target
):
    t = await target()
    config = one_target(database_url, t.url)
    event = shop_event(clock)
    await store.insert_events([event])
    for _ in range(10):  # ten workers die holding it; the next claim is the tenth interruption
        await store.claim({"t": 1}, clock.now(), lease=60, worker="crashing")
        clock.advance(61)

    async with relay_for(store, config, clock) as relay:
        assert await deliver_due(relay) == 1
    delivery = await the_delivery(store, event)
    assert (delivery["status"], delivery["interruptions"]) == ("dead", 10)
    assert "cut short" in delivery["last_error"]
    assert t.recorder.requests == []


async def test_static_target_headers_never_replace_identity_or_signature_headers(
    database_url, store, clock, target
):
    t = await target()
    extra = f'headers: {{Idempotency-Key: mine, X-Team: pay}}, sign: {{type: standard-webhooks, secret: "{SECRET}"}}'
    config = one_target(database_url, t.url, extra)
    event = shop_event(clock)
    await store.insert_events([event])
    async with relay_for(store, config, clock) as relay:
        await deliver_due(relay)
    headers = received(t.recorder, 0)
    assert headers.getall("Idempotency-Key") == [str(delivery_id(event.id, "t"))]
    assert headers["X-Team"] == "pay"


MARK = "Sekr1tMarker"  # in the body a crashing target quotes: never in a log line


class Crashing:
    """A target plugin with a bug: it raises, quoting the message it was sending."""

    kind = "target"
    name = "crashing"

    def parse(self, section: Any) -> None:
        return None

    def create(self, options: None, resources: Any) -> Crashing:
        return self

    async def __call__(self, message: Message) -> SendResult:
        raise RuntimeError(f"cannot send {message.body!r}")


async def test_a_crashing_target_is_logged_by_type_and_place_never_by_its_message(
    database_url, store, clock, capsys
):
    registry = load_registry()
    registry.add(Crashing())
    text = (
        f"database: {{url: '{database_url}'}}\nrelay: {{enabled: false}}\n"
        "sources: {shop: {}}\ntargets: {t: {type: crashing}}\n"
        "routes: [{source: shop, targets: [t]}]\n"
    )
    config = parse_config(text, registry, env={})
    event = shop_event(clock, body=f'{{"token": "{MARK}"}}'.encode())
    await store.insert_events([event])
    async with relay_for(store, config, clock, registry=registry) as relay:
        with capture_logs() as logs:
            assert await deliver_due(relay) == 1
        clock.advance(5)
        capsys.readouterr()
        assert await deliver_due(relay) == 1  # its second attempt, through the renderer
    rendered = capsys.readouterr()
    crashed = [e for e in logs if e["event"] == "target_crashed"]
    assert [e["log_level"] for e in crashed] == ["error"]  # one line for the crash
    (line,) = crashed
    assert line["error"] == "builtins.RuntimeError"
    assert line["frames"][-1].endswith(" in __call__")  # the plugin's place, innermost last
    assert "exc_info" not in line  # no rendered traceback: it would carry the message
    (attempt,) = [e for e in logs if e["event"] == "delivery_retry_scheduled"]
    assert attempt["error"] == "the target crashed: builtins.RuntimeError"
    assert MARK not in repr(logs)
    assert "target_crashed" in rendered.out + rendered.err
    assert MARK not in rendered.out + rendered.err
    attempts = await store.attempts(delivery_id(event.id, "t"))
    assert [a["error"] for a in attempts] == ["the target crashed: builtins.RuntimeError"] * 2
