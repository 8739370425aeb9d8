"""A target at run time: its config and its composed middleware chain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.config import Config
from gateway.errors import PluginError
from gateway.plugins import PluginSpec, Registry, Resources
from gateway.relay.message import Headers, Message, Middleware, Send, compose
from gateway.storage.store import Claimed
from gateway.targets import TargetConfig

USER_AGENT = "hookgate/0.1"
# Never copied from the provider's request, nor set by config: they describe the HTTP
# client's own hop, not ours.
HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect",
     "upgrade", "te", "trailer", "proxy-authorization", "proxy-connection"}
)  # fmt: skip

# hookgate's identity headers (built in `outgoing_headers`): never forwarded from a
# provider, never changed by config.
IDENTITY_PREFIX = "x-hookgate-"
IDENTITY_HEADERS = (
    "x-hookgate-event-id", "x-hookgate-delivery-id", "x-hookgate-attempt",
    "x-hookgate-source", "x-hookgate-event-type", "idempotency-key",
)  # fmt: skip


def is_identity_header(name: str) -> bool:
    """Whether `name` is one of hookgate's own headers, which no config may change."""
    lower = name.lower()
    return lower.startswith(IDENTITY_PREFIX) or lower == "idempotency-key"


@dataclass(frozen=True, slots=True)
class Lane:
    config: TargetConfig
    send: Send
    target: object = None  # what the plugin created; closed with `aclose()` if it has one
    by_route: Mapping[int, Send] = field(default_factory=dict)  # a route's middleware around it

    def send_for(self, route: int | None) -> Send:
        return self.by_route.get(route, self.send) if route is not None else self.send

    async def close(self) -> None:
        close = getattr(self.target, "aclose", None)
        if close is not None:
            await close()


def build_lanes(config: Config, registry: Registry, resources: Resources) -> dict[str, Lane]:
    """One lane per configured target, middleware composed in config order, and for each
    route with middleware that names the target, that middleware around the lane."""
    lanes = {name: _lane(target, registry, resources) for name, target in config.targets.items()}
    for index, route in enumerate(config.routes):
        for name in route.targets if route.middleware else ():
            lane = lanes[name]
            wrapped = compose(_created(route.middleware, registry, resources, name), lane.send)
            lanes[name] = replace(lane, by_route={**lane.by_route, index: wrapped})
    return lanes


def _created(
    specs: tuple[PluginSpec, ...], registry: Registry, resources: Resources, target: str
) -> list[Middleware]:
    middleware = []
    for spec in specs:
        item = registry.middleware(spec.type)
        if item is None:
            raise PluginError(f"targets.{target}: middleware {spec.type!r} is not installed")
        middleware.append(item.create(spec.options, resources))
    return middleware


def _lane(target: TargetConfig, registry: Registry, resources: Resources) -> Lane:
    send, created = chain(target, registry, resources)
    return Lane(target, send, created)


def chain(
    target: TargetConfig, registry: Registry, resources: Resources, options: Any = None
) -> tuple[Send, object]:
    """The target's middleware chain around the target the plugin creates (with `options`
    in place of the configured ones if given); and that created target."""
    plugin = registry.target(target.type)
    if plugin is None:
        raise PluginError(f"targets.{target.name}: target type {target.type!r} is not installed")
    middleware = _created(target.middleware, registry, resources, target.name)
    created = plugin.create(target.options if options is None else options, resources)
    return compose(middleware, created), created


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
