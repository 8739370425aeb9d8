"""OpenTelemetry traces (the optional extra `hookgate[otel]`): ingest, verify, commit, attempt.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set and the extra is
installed. Otherwise `from_environment()` is None, nothing imports opentelemetry, the app
has no `keys.TRACING`, and each hook in the hot paths is one `is None` test.

On, spans come from a `TracerProvider` of the app's own (never the process-global one,
so two apps in a process, or a test's in-memory exporter, do not collide):

- `ingest` (server span; a child of the provider's `traceparent` when it sent a valid
  one, else a new trace), with `verify` and `commit` inside it;
- `attempt` (client span) per delivery attempt, a child of the event's trace context:
  the provider's `traceparent` as stored with the request's headers, else the one
  hookgate started at ingest (stored in `events.traceparent`, migration 0020). The
  outgoing message carries the attempt's own `traceparent` (and the parent's
  `tracestate`), in place of any the target's `forward_headers` would copy;
- `forward` (client span) for a `mode: proxy` source's request to its target, inside
  `ingest`, its `traceparent` on the forwarded request.

The SDK reads the usual variables: `OTEL_SERVICE_NAME` (default `hookgate` here),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import structlog

from gateway.contract.outcome import DELIVERED

if TYPE_CHECKING:
    from gateway.contract.message import SendResult
    from gateway.storage.store import Claimed

log = structlog.get_logger("hookgate.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_CONTEXT_HEADERS = frozenset({TRACEPARENT, TRACESTATE})
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()  # reusable: no object per use


class Tracing:
    """The spans of one app, from `provider` (an SDK `TracerProvider`)."""

    def __init__(self, provider: Any, owned: bool = False) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._provider = provider
        self._owned = owned  # made from the environment: shut down (flushed) with the app
        self._tracer = provider.get_tracer("hookgate")
        self._propagator = TraceContextTextMapPropagator()

    @contextlib.contextmanager
    def ingest(self, headers: Any) -> Iterator[Ingest]:
        """The ingest span, current for what the handler does inside (verify, commit)."""
        parent = self._propagator.extract(headers)
        kept = self._trace.get_current_span(parent).get_span_context().is_valid
        with self._tracer.start_as_current_span(
            "ingest", context=parent, kind=self._trace.SpanKind.SERVER
        ) as span:
            started = None if kept else traceparent(span.get_span_context())
            yield Ingest(self, span, started)

    def attempt(self, stored: str | None, headers: Iterable[tuple[str, str]]) -> Any:
        """A started attempt span: a child of the event's `stored` traceparent, else of
        the provider's in its stored `headers`, else a new trace. The caller ends it."""
        carrier = {TRACEPARENT: stored} if stored else _context_headers(headers)
        parent = self._propagator.extract(carrier)
        return self._tracer.start_span("attempt", context=parent, kind=self._trace.SpanKind.CLIENT)

    def attempted(self, span: Any, claimed: Claimed, result: SendResult, status: str) -> None:
        """End the attempt span with what happened: `status` is what the delivery is now
        (`delivered`, `pending` for a retry, `dead`). Anything but delivered is an error."""
        span.set_attributes(
            {
                "hookgate.event_id": str(claimed.event_id),
                "hookgate.delivery_id": str(claimed.id),
                "hookgate.attempt": claimed.attempt,
                "hookgate.delivery.status": status,
            }
        )
        self._answered(span, claimed.target, result, status != "delivered")

    def _answered(self, span: Any, target: str, result: SendResult, failed: bool) -> None:
        span.set_attribute("hookgate.target", target)
        span.set_attribute("hookgate.outcome", str(result.outcome))
        if result.status is not None:
            span.set_attribute("http.response.status_code", result.status)
        if failed:
            span.set_status(self._trace.StatusCode.ERROR, result.error or str(result.outcome))
        span.end()

    def end(self, span: Any) -> None:
        """End `span` unless it has ended (an attempt cut short by a stop)."""
        if span.is_recording():
            span.end()

    def outgoing(
        self, headers: tuple[tuple[str, str], ...], span: Any
    ) -> tuple[tuple[str, str], ...]:
        """`headers` without any forwarded trace context, with `span`'s own."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        kept = tuple((k, v) for k, v in headers if k.lower() not in _CONTEXT_HEADERS)
        return kept + tuple(carrier.items())

    async def close(self) -> None:
        """Flush and stop the exporter of a provider this module made (off the loop: the
        OTLP exporter's last export may wait for its timeout)."""
        if self._owned:
            await asyncio.to_thread(self._provider.shutdown)


class Ingest:
    """One request's ingest span and, when hookgate started the trace (the provider sent
    no valid `traceparent`), that span's traceparent, to store with the event."""

    __slots__ = ("_tracing", "span", "started")

    def __init__(self, tracing: Tracing, span: Any, started: str | None) -> None:
        self._tracing = tracing
        self.span = span
        self.started = started

    def child(self, name: str) -> Any:
        """A span inside this one (`verify`, `commit`), as a context manager."""
        return self._tracing._tracer.start_as_current_span(name)

    def forward(self) -> Any:
        """A started `forward` span (a `mode: proxy` source's request to its target), a
        child of this one; `forwarded` ends it."""
        tracing = self._tracing
        return tracing._tracer.start_span("forward", kind=tracing._trace.SpanKind.CLIENT)

    def forwarded(self, span: Any, target: str, result: SendResult) -> None:
        """End the `forward` span with the target's answer (an error unless delivered)."""
        self._tracing._answered(span, target, result, result.outcome not in DELIVERED)

    def outgoing(
        self, headers: tuple[tuple[str, str], ...], span: Any
    ) -> tuple[tuple[str, str], ...]:
        return self._tracing.outgoing(headers, span)

    def set(self, name: str, value: str | int | bool) -> None:
        self.span.set_attribute(name, value)


def traceparent(context: Any) -> str:
    """The W3C `traceparent` of a span context."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _context_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _CONTEXT_HEADERS:
            found.setdefault(lower, value)  # the first, as the W3C propagator reads one
    return found


def from_environment(environ: dict[str, str] | None = None) -> Tracing | None:
    """OTLP/HTTP export when an endpoint is set and `hookgate[otel]` is installed."""
    env = os.environ if environ is None else environ
    if not any(env.get(name) for name in ENDPOINTS):
        return None
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning(
            "tracing_unavailable",
            reason=f"an OTLP endpoint is set but hookgate[otel] is not installed ({exc.name})",
        )
        return None
    name = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "hookgate"}
    provider = TracerProvider(resource=Resource.create(name))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing_enabled", exporter="otlp/http")
    return Tracing(provider, owned=True)
