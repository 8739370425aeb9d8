"""Plugins: everything loaded through the ``hookgate.plugins`` entry-point group.

Built-ins under ``plugins/`` are registered in hookgate's own pyproject.toml exactly like a
third-party package registers its own. Each entry point names an object with a `kind`
(``target`` or ``middleware``), a `name` used as ``type:`` in hookgate.yaml, a `parse`
that validates its options from a `Section`, and a `create` that builds it at run time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, Protocol, runtime_checkable

import aiohttp

from gateway.clock import Clock
from gateway.errors import PluginError
from gateway.relay.message import Middleware, Send
from gateway.section import Section

GROUP = "hookgate.plugins"
Kind = Literal["target", "middleware"]


@dataclasses.dataclass(frozen=True, slots=True)
class Resources:
    """Long-lived things a plugin may use at run time."""

    http: aiohttp.ClientSession
    clock: Clock


@runtime_checkable
class TargetPlugin(Protocol):
    kind: Literal["target"]
    name: str

    def parse(self, section: Section) -> Any: ...

    def create(self, options: Any, resources: Resources) -> Send: ...


@runtime_checkable
class MiddlewarePlugin(Protocol):
    kind: Literal["middleware"]
    name: str

    def parse(self, section: Section) -> Any: ...

    def create(self, options: Any, resources: Resources) -> Middleware: ...


Plugin = TargetPlugin | MiddlewarePlugin


class Registry:
    """The loaded plugins by kind and name."""

    def __init__(self, plugins: Iterable[Plugin] = ()) -> None:
        self._plugins: dict[tuple[str, str], Plugin] = {}
        for plugin in plugins:
            self.add(plugin)

    def add(self, plugin: Plugin) -> None:
        self._plugins[plugin.kind, plugin.name] = plugin

    def names(self, kind: Kind) -> list[str]:
        return sorted(name for k, name in self._plugins if k == kind)

    def target(self, name: str) -> TargetPlugin | None:
        plugin = self._plugins.get(("target", name))
        return plugin if isinstance(plugin, TargetPlugin) else None

    def middleware(self, name: str) -> MiddlewarePlugin | None:
        plugin = self._plugins.get(("middleware", name))
        return plugin if isinstance(plugin, MiddlewarePlugin) else None


def load_registry() -> Registry:
    """Every plugin installed in this environment, hookgate's own included."""
    return Registry(_load(ep) for ep in entry_points(group=GROUP))


def _load(entry_point: EntryPoint) -> Plugin:
    try:
        plugin = entry_point.load()
    except Exception as exc:
        raise PluginError(f"plugin {entry_point.name} ({entry_point.value}): {exc}") from exc
    if not isinstance(plugin, TargetPlugin | MiddlewarePlugin):
        raise PluginError(
            f"plugin {entry_point.name} ({entry_point.value}) has no kind/parse/create"
        )
    return plugin
