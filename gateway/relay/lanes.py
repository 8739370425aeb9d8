"""A target at run time: its config and its composed middleware chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gateway.config import Config
from gateway.contract.headers import HOP_BY_HOP, IDENTITY_HEADERS, is_identity_header
from gateway.outbound import build_message, chain, middleware_for
from gateway.plugins import Registry, Resources
from gateway.relay.message import Send, compose
from gateway.targets import TargetConfig

# The header sets and the send path are defined in gateway.contract.headers and
# gateway.outbound (shared with proxy mode); still importable from here.
__all__ = [
    "HOP_BY_HOP",
    "IDENTITY_HEADERS",
    "Lane",
    "build_lanes",
    "build_message",
    "chain",
    "is_identity_header",
]


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
            wrapped = compose(
                middleware_for(route.middleware, registry, resources, name), lane.send
            )
            lanes[name] = replace(lane, by_route={**lane.by_route, index: wrapped})
    return lanes


def _lane(target: TargetConfig, registry: Registry, resources: Resources) -> Lane:
    send, created = chain(target, registry, resources)
    return Lane(target, send, created)
