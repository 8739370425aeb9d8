"""A target at run time: its config and its composed middleware chain.

`build_lanes` makes them at start-up; `rebuild_lanes` makes them for a reloaded config,
keeping each lane whose target and route middleware did not change (its plugin's
resources stay open) and starting the rest, all or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.config import Config
from gateway.contract.message import Send, compose
from gateway.errors import PluginError
from gateway.outbound import chain, middleware_for
from gateway.plugins import PluginSpec, Registry, Resources
from gateway.targets import TargetConfig

RouteMiddleware = Mapping[int, tuple[PluginSpec, ...]]  # route index -> its middleware


@dataclass(frozen=True, slots=True)
class Lane:
    config: TargetConfig
    send: Send
    target: object = None  # what the plugin created; closed with `aclose()` if it has one
    by_route: Mapping[int, Send] = field(default_factory=dict)  # a route's middleware around it
    routes: RouteMiddleware = field(default_factory=dict)  # what `by_route` was made from

    def send_for(self, route: int | None) -> Send:
        return self.by_route.get(route, self.send) if route is not None else self.send

    async def close(self) -> None:
        close = getattr(self.target, "aclose", None)
        if close is not None:
            await close()


def build_lanes(config: Config, registry: Registry, resources: Resources) -> dict[str, Lane]:
    """One lane per configured target, middleware composed in config order, and for each
    route with middleware that names the target, that middleware around the lane."""
    return {
        name: _lane(target, _route_middleware(config, name), registry, resources)
        for name, target in config.targets.items()
    }


async def rebuild_lanes(
    current: Mapping[str, Lane], config: Config, registry: Registry, resources: Resources
) -> dict[str, Lane]:
    """The lanes for `config`: those of `current` whose target and route middleware are
    unchanged, as they are; new ones for the rest. If a plugin fails to start, the lanes
    made so far are closed and `PluginError` names the target (nothing is half swapped)."""
    lanes: dict[str, Lane] = {}
    made: list[Lane] = []
    for name, target in config.targets.items():
        routes = _route_middleware(config, name)
        kept = current.get(name)
        if kept is not None and kept.config == target and kept.routes == routes:
            lanes[name] = kept
            continue
        try:
            lanes[name] = _lane(target, routes, registry, resources)
        except Exception as exc:  # a plugin's create: any crash fails this reload only
            for lane in made:
                await lane.close()
            raise _failed(target, exc) from exc
        made.append(lanes[name])
    return lanes


def _failed(target: TargetConfig, exc: Exception) -> PluginError:
    if isinstance(exc, PluginError):
        return exc
    return PluginError(
        f"targets.{target.name}: the {target.type} target could not start: "
        f"{type(exc).__name__}: {exc}"
    )


def _route_middleware(config: Config, name: str) -> RouteMiddleware:
    """The middleware of each route (by index) that has some and names the target."""
    return {
        index: route.middleware
        for index, route in enumerate(config.routes)
        if route.middleware and name in route.targets
    }


def _lane(
    target: TargetConfig, routes: RouteMiddleware, registry: Registry, resources: Resources
) -> Lane:
    send, created = chain(target, registry, resources)
    by_route = {
        index: compose(middleware_for(specs, registry, resources, target.name), send)
        for index, specs in routes.items()
    }
    return Lane(target, send, created, by_route, routes)
