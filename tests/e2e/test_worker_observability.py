"""A real `hookgate worker` process: its /metrics (`--metrics-port`), and its spans
exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set."""

from __future__ import annotations

import asyncio
import dataclasses
import signal

import aiohttp
import asyncpg
from aiohttp import web
from conftest import hookgate_process, make_config
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from relay_events import shop_events
from test_lifecycle import free_port, stop
from test_metrics import samples
from test_workers import worker_config

from gateway.storage.store import Store

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def worker(*args: str, env: dict[str, str] | None = None):
    return hookgate_process("worker", *args, env=env)


async def insert(database_url: str, events) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await Store(pool).insert_events(events)
    finally:
        await pool.close()


async def scrape(port: int) -> dict:
    """The worker's /metrics, once its listener answers."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(30):
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    return samples(await response.text())
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)


async def test_a_worker_serves_its_relay_counters_on_its_metrics_port(
    tmp_path, database_url, target
):
    sink, port = await target(), free_port()
    path = worker_config(tmp_path / "w.yaml", database_url, sink.url, "concurrency: 4")
    await insert(database_url, shop_events(make_config(database_url, path.read_text()), 5))
    async with worker("--config", str(path), "--metrics-port", str(port)) as process:
        await sink.recorder.wait_for(5, timeout=30)
        attempts = ("hookgate_relay_attempts_total", (("outcome", "HTTP_2XX"), ("target", "t")))
        async with asyncio.timeout(30):
            found = await scrape(port)
            while found.get(attempts) != 5:  # counted once each attempt is recorded
                await asyncio.sleep(0.1)
                found = await scrape(port)
        assert found["hookgate_relay_end_to_end_seconds_count", (("target", "t"),)] == 5
        # The queue gauges are the servers' (read from the database): not repeated here.
        assert not any(name == "hookgate_queue_deliveries" for name, _ in found)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            stdout, _ = await process.communicate()
    assert process.returncode == 0
    assert f"hookgate: metrics on http://127.0.0.1:{port} (GET /metrics)" in stdout.decode()


async def test_a_worker_exports_attempt_spans_over_otlp(
    tmp_path, database_url, target, aiohttp_server
):
    sink = await target()
    exports: list[ExportTraceServiceRequest] = []

    async def receive(request: web.Request) -> web.Response:
        exports.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", receive)
    otlp = await aiohttp_server(collector)
    path = worker_config(tmp_path / "w.yaml", database_url, sink.url, "concurrency: 4")
    started, provided = shop_events(make_config(database_url, path.read_text()), 2)
    hookgates = f"00-{'ab' * 16}-{'cd' * 8}-01"  # as ingest stores the trace it started
    provider = f"00-{TRACE}-00f067aa0ba902b7-01"
    await insert(database_url, [
        dataclasses.replace(started, traceparent=hookgates),
        dataclasses.replace(provided, headers=[("traceparent", provider)]),
    ])  # fmt: skip
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": str(otlp.make_url("")).rstrip("/"),
        "OTEL_SERVICE_NAME": "hookgate-worker-test",
    }
    async with worker("--config", str(path), env=env) as process:
        await sink.recorder.wait_for(2, timeout=30)
        code, _ = await stop(process)  # a clean stop flushes the exporter
    assert code == 0
    spans = [
        span
        for export in exports
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    by_trace = {span.trace_id.hex(): span for span in spans if span.name == "attempt"}
    assert set(by_trace) == {"ab" * 16, TRACE}
    assert by_trace["ab" * 16].parent_span_id.hex() == "cd" * 8
    assert by_trace[TRACE].parent_span_id.hex() == "00f067aa0ba902b7"
    received = sorted(headers["traceparent"] for headers, _ in sink.recorder.requests)
    assert received == sorted(
        f"00-{trace}-{span.span_id.hex()}-01" for trace, span in by_trace.items()
    )
    names = {
        attribute.value.string_value
        for export in exports
        for resource in export.resource_spans
        for attribute in resource.resource.attributes
        if attribute.key == "service.name"
    }
    assert names == {"hookgate-worker-test"}
