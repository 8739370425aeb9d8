"""The relay's send path, shared with proxy mode: a target's chain, the outgoing message,
and the attempt record of what the target answered.

Below both `gateway.relay` and `gateway.ingress` (an import-linter contract keeps the
two independent): the relay sends claimed deliveries through it, proxy mode sends one
request at once and answers with the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gateway.contract.headers import HOP_BY_HOP, USER_AGENT, is_identity_header
from gateway.contract.message import Headers, Message, Middleware, Send, SendResult, compose
from gateway.contract.outcome import Outcome
from gateway.errors import PluginError
from gateway.plugins import PluginSpec, Registry, Resources
from gateway.storage.store import AttemptResult, Claimed
from gateway.targets import TargetConfig

SNIPPET = 4096
_KEPT_HEADERS = frozenset({"content-type", "retry-after", "location", "x-request-id", "date"})


def chain(
    target: TargetConfig, registry: Registry, resources: Resources, options: Any = None
) -> tuple[Send, object]:
    """The target's middleware chain around the target the plugin creates (with `options`
    in place of the configured ones if given); and that created target."""
    plugin = registry.target(target.type)
    if plugin is None:
        raise PluginError(f"targets.{target.name}: target type {target.type!r} is not installed")
    middleware = middleware_for(target.middleware, registry, resources, target.name)
    created = plugin.create(target.options if options is None else options, resources)
    return compose(middleware, created), created


def middleware_for(
    specs: tuple[PluginSpec, ...], registry: Registry, resources: Resources, target: str
) -> list[Middleware]:
    """The middleware `specs` name, created in order."""
    middleware = []
    for spec in specs:
        item = registry.middleware(spec.type)
        if item is None:
            raise PluginError(f"targets.{target}: middleware {spec.type!r} is not installed")
        middleware.append(item.create(spec.options, resources))
    return middleware


def build_message(claimed: Claimed, target: TargetConfig, now: dt.datetime) -> Message:
    """The outgoing message: original body, chosen original headers, hookgate's own."""
    return Message(
        event_id=claimed.event_id,
        delivery_id=claimed.id,
        attempt=claimed.attempt,
        source=claimed.source,
        target=claimed.target,
        event_type=claimed.event_type,
        received_at=claimed.received_at,
        now=now,
        body=claimed.body,
        headers=outgoing_headers(claimed, target),
        request_headers=claimed.headers,
        method=claimed.method,
        path=claimed.path,
        query=claimed.query,
    )


def outgoing_headers(claimed: Claimed, target: TargetConfig) -> Headers:
    original = _first_values(claimed.headers)
    headers: list[tuple[str, str]] = []
    # The body goes out as the provider sent it (compressed or not): its type and encoding too.
    for name in ("Content-Type", "Content-Encoding"):
        if name.lower() in original:
            headers.append((name, original[name.lower()]))
    headers += [(name, value) for name, value in claimed.headers if _forwarded(name, target)]
    headers += [
        ("User-Agent", USER_AGENT),
        ("X-Hookgate-Event-Id", str(claimed.event_id)),
        ("X-Hookgate-Delivery-Id", str(claimed.id)),
        ("X-Hookgate-Attempt", str(claimed.attempt)),
        ("X-Hookgate-Source", claimed.source),
        ("Idempotency-Key", str(claimed.id)),
    ]
    if claimed.event_type:
        headers.append(("X-Hookgate-Event-Type", claimed.event_type))
    return tuple(headers)


_REPRESENTATION = frozenset({"user-agent", "content-type", "content-encoding"})


def _forwarded(name: str, target: TargetConfig) -> bool:
    lower = name.lower()
    if lower in HOP_BY_HOP or lower in _REPRESENTATION or is_identity_header(lower):
        return False
    return target.forwards(name)


def _first_values(headers: Headers) -> Mapping[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        found.setdefault(name.lower(), value)
    return found


def attempt_result(
    claimed: Claimed,
    result: SendResult,
    duration_ms: float,
    status: str,
    due: dt.datetime,
    worker: str | None = None,
) -> AttemptResult:
    """What is stored of one attempt: a few response headers and its first `SNIPPET` bytes."""
    return AttemptResult(
        delivery_id=claimed.id,
        attempt=claimed.attempt,
        duration_ms=round(duration_ms, 3),
        outcome=str(result.outcome),
        status_code=result.status,
        response_headers=[(k, v) for k, v in result.headers if k.lower() in _KEPT_HEADERS],
        response_body=result.body[:SNIPPET],
        error=result.error,
        next_status=status,
        next_due=due,
        interrupted=result.outcome is Outcome.GONE,
        target=claimed.target,
        worker=worker,
        started_at=claimed.claimed_at,
        event_id=claimed.event_id,
    )
