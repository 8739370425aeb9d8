"""Traces (hookgate[otel]): ingest and attempt spans in one trace, and the target's
request joins it; with tracing off nothing is added. Spans go to the SDK's in-memory
exporter, through a real app, a real Postgres and real recording targets."""

from __future__ import annotations

import asyncio
import sys
import uuid

import pytest
from conftest import GatewayTestServer, fetch, make_config
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway import keys, tracing
from gateway.app import create_app
from gateway.tracing import Tracing, from_environment

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
PROVIDER = {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=abc"}


def config(database_url: str, url: str, forward: str = "[]"):
    return make_config(
        database_url,
        f"""
sources:
  shop: {{verify: {{type: api-key, header: X-Key, secret: s3}}}}
targets:
  t: {{url: "{url}", forward_headers: {forward}}}
routes: [{{source: shop, targets: [t]}}]
""",
    )


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(aiohttp_client, clock, exporter):
    """`client = await traced(config)`: the whole app, its spans in `exporter`."""

    async def start(cfg, with_tracing: bool = True):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        chosen = Tracing(provider) if with_tracing else None
        return await aiohttp_client(GatewayTestServer(create_app(cfg, clock=clock, tracing=chosen)))

    return start


async def spans_named(exporter: InMemorySpanExporter, name: str, count: int = 1):
    """The finished spans called `name`, once there are `count` (an attempt's span ends
    just after its target answered)."""
    async with asyncio.timeout(10):
        while True:
            found = [s for s in exporter.get_finished_spans() if s.name == name]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)


def parent_of(span) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


async def stored_traceparent(database_url: str, event_id: str) -> str | None:
    query = "SELECT traceparent FROM hookgate.events WHERE id = $1"
    (row,) = await fetch(database_url, query, uuid.UUID(event_id))
    return row["traceparent"]


async def test_a_providers_traceparent_is_kept_through_ingest_attempt_and_target(
    database_url, target, traced, exporter
):
    sink = await target()
    # forward_headers "*" would copy the provider's traceparent: the attempt's replaces it.
    client = await traced(config(database_url, sink.url, forward='["*"]'))
    response = await client.post("/in/shop", data=b"{}", headers={"X-Key": "s3", **PROVIDER})
    assert response.status == 202
    event_id = (await response.json())["id"]
    await sink.recorder.wait_for(1)
    (attempt,) = await spans_named(exporter, "attempt")
    (ingest,) = await spans_named(exporter, "ingest")
    (verify,) = await spans_named(exporter, "verify")
    (commit,) = await spans_named(exporter, "commit")
    for span in (ingest, verify, commit, attempt):
        assert f"{span.context.trace_id:032x}" == TRACE
    assert parent_of(ingest) == PARENT and ingest.kind is SpanKind.SERVER
    assert parent_of(verify) == parent_of(commit) == f"{ingest.context.span_id:016x}"
    assert parent_of(attempt) == PARENT and attempt.kind is SpanKind.CLIENT
    assert ingest.attributes["hookgate.source"] == "shop"
    assert ingest.attributes["hookgate.event_id"] == event_id
    assert ingest.attributes["http.response.status_code"] == 202
    headers, _ = sink.recorder.requests[0]
    assert headers["traceparent"] == f"00-{TRACE}-{attempt.context.span_id:016x}-01"
    assert headers["tracestate"] == "vendor=abc"
    # The provider's own header is stored with the request; nothing more is needed.
    assert await stored_traceparent(database_url, event_id) is None


async def test_without_a_traceparent_one_is_started_at_ingest_and_stored(
    database_url, target, traced, exporter
):
    sink = await target()
    client = await traced(config(database_url, sink.url))
    response = await client.post("/in/shop", data=b"{}", headers={"X-Key": "s3"})
    assert response.status == 202
    event_id = (await response.json())["id"]
    await sink.recorder.wait_for(1)
    (attempt,) = await spans_named(exporter, "attempt")
    (ingest,) = await spans_named(exporter, "ingest")
    assert ingest.parent is None  # a new trace
    trace_id, span_id = f"{ingest.context.trace_id:032x}", f"{ingest.context.span_id:016x}"
    flags = f"{ingest.context.trace_flags:02x}"  # sampled (01), and the SDK's random bit (02)
    assert await stored_traceparent(database_url, event_id) == f"00-{trace_id}-{span_id}-{flags}"
    assert f"{attempt.context.trace_id:032x}" == trace_id
    assert parent_of(attempt) == span_id
    headers, _ = sink.recorder.requests[0]
    assert headers["traceparent"] == f"00-{trace_id}-{attempt.context.span_id:016x}-{flags}"


async def test_a_proxy_sources_forward_is_a_span_of_the_ingest_and_the_target_joins_it(
    database_url, target, traced, exporter
):
    bot = await target()
    bot.recorder.script.append((201, {"Content-Type": "application/json"}, b'{"ok": true}'))
    cfg = make_config(
        database_url,
        f"""
sources:
  chat: {{mode: proxy, proxy: {{target: bot}}}}
targets:
  bot: {{url: "{bot.url}"}}
""",
    )
    client = await traced(cfg)
    response = await client.post("/in/chat", data=b"{}", headers=PROVIDER)
    assert (response.status, await response.read()) == (201, b'{"ok": true}')
    (forward,) = await spans_named(exporter, "forward")
    (ingest,) = await spans_named(exporter, "ingest")
    assert f"{forward.context.trace_id:032x}" == TRACE and forward.kind is SpanKind.CLIENT
    assert parent_of(forward) == f"{ingest.context.span_id:016x}"
    assert forward.attributes["hookgate.target"] == "bot"
    assert forward.attributes["hookgate.outcome"] == "HTTP_2XX"
    assert forward.attributes["http.response.status_code"] == 201
    assert forward.status.status_code is not StatusCode.ERROR
    headers, _ = bot.recorder.requests[0]
    assert headers["traceparent"] == f"00-{TRACE}-{forward.context.span_id:016x}-01"
    assert not await spans_named(exporter, "attempt", 0)  # a forward is not an attempt


async def test_attempt_spans_carry_target_outcome_and_status(
    database_url, target, traced, exporter
):
    sink = await target()
    sink.recorder.script = [(400, {}, b"no")]  # permanent: dead at once
    client = await traced(config(database_url, sink.url))
    for _ in range(2):
        assert (await client.post("/in/shop", data=b"{}", headers={"X-Key": "s3"})).status == 202
    await sink.recorder.wait_for(2)
    attempts = await spans_named(exporter, "attempt", 2)
    by_status = {span.attributes["http.response.status_code"]: span for span in attempts}
    dead, delivered = by_status[400], by_status[200]
    assert dead.attributes["hookgate.target"] == "t"
    assert dead.attributes["hookgate.outcome"] == "HTTP_4XX_PERMANENT"
    assert dead.attributes["hookgate.delivery.status"] == "dead"
    assert dead.attributes["hookgate.attempt"] == 1
    assert dead.status.status_code is StatusCode.ERROR
    assert delivered.attributes["hookgate.outcome"] == "HTTP_2XX"
    assert delivered.attributes["hookgate.delivery.status"] == "delivered"
    assert delivered.status.status_code is StatusCode.UNSET


async def test_a_refused_request_ends_its_ingest_span_with_the_status(
    database_url, target, traced, exporter
):
    sink = await target()
    client = await traced(config(database_url, sink.url))
    assert (await client.post("/in/shop", data=b"{}", headers={"X-Key": "no"})).status == 401
    (ingest,) = await spans_named(exporter, "ingest")
    assert ingest.attributes["http.response.status_code"] == 401
    assert ingest.status.status_code is StatusCode.ERROR
    assert [s.name for s in exporter.get_finished_spans()] == ["verify", "ingest"]


async def test_with_tracing_off_hookgate_adds_no_traceparent(
    database_url, target, traced, exporter
):
    plain, forwarding = await target(), await target()
    client = await traced(config(database_url, plain.url), with_tracing=False)
    assert keys.TRACING not in client.app
    response = await client.post("/in/shop", data=b"{}", headers={"X-Key": "s3"})
    event_id = (await response.json())["id"]
    await plain.recorder.wait_for(1)
    assert "traceparent" not in plain.recorder.requests[0][0]
    assert await stored_traceparent(database_url, event_id) is None
    # A provider's traceparent is a request header like any other: it goes out only
    # where forward_headers says so, unchanged.
    response = await client.post("/in/shop", data=b"{}", headers={"X-Key": "s3", **PROVIDER})
    await plain.recorder.wait_for(2)
    assert "traceparent" not in plain.recorder.requests[1][0]
    await client.close()  # its relay must not take the next app's delivery (one database)
    other = await traced(config(database_url, forwarding.url, forward='["*"]'), False)
    await other.post("/in/shop", data=b"{}", headers={"X-Key": "s3", **PROVIDER})
    await forwarding.recorder.wait_for(1)
    assert forwarding.recorder.requests[0][0]["traceparent"] == PROVIDER["traceparent"]
    assert exporter.get_finished_spans() == ()


async def test_tracing_is_off_without_an_endpoint():
    assert from_environment({}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    assert from_environment({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    made = from_environment(endpoint)
    assert isinstance(made, Tracing)
    await made.close()  # nothing exported, nothing to wait for


def test_without_the_extra_an_endpoint_is_logged_and_ignored(monkeypatch):
    # What an install without hookgate[otel] sees: the exporter module cannot be imported.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    assert tracing.from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}) is None
