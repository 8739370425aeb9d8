"""Plugins: everything loaded through the ``hookgate.plugins`` entry-point group.

Built-ins under ``plugins/`` are registered in hookgate's own pyproject.toml exactly like a
third-party package registers its own, as ``<kind>.<name> = "module:object"``. The
object has a `kind` (``target``, ``middleware`` or ``verifier``), a `name` used as
``type:`` in hookgate.yaml, a `parse` that validates its options from a `Section`, and
a `create` that builds it at run time. Plugins are imported only when a config uses
them, so one broken plugin fails only the configs that name it.

The kinds themselves (`TargetPlugin`, `MiddlewarePlugin`, `VerifierPlugin`) and
`Resources` are part of the plugin contract, `gateway.plugin`; this module is the
registry that finds and loads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from gateway.contract.kinds import Kind, MiddlewarePlugin, Plugin, TargetPlugin, VerifierPlugin
from gateway.contract.resources import Resources
from gateway.errors import PluginError
from gateway.section import Section

__all__ = [
    "GROUP",
    "Kind",
    "MiddlewarePlugin",
    "Plugin",
    "PluginSpec",
    "Registry",
    "Resources",
    "TargetPlugin",
    "VerifierPlugin",
    "load_registry",
    "parse_options",
]

GROUP = "hookgate.plugins"


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """A configured plugin: its type name and its validated options."""

    type: str
    options: Any


def parse_options(plugin: Any, section: Section) -> Any:
    """A plugin's own parse; a crash in it is a problem at its path, not a traceback."""
    try:
        return plugin.parse(section)
    except Exception as exc:
        section.fail(
            f"the {plugin.name} plugin could not read its options: {type(exc).__name__}: {exc}"
        )
        return None


class Registry:
    """The installed plugins by kind and name, imported on first use."""

    def __init__(self, entries: Iterable[EntryPoint | Plugin] = ()) -> None:
        self._entries: dict[tuple[str, str], EntryPoint | Plugin] = {}
        self._conflicts: dict[tuple[str, str], str] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: EntryPoint | Plugin) -> None:
        """Register `entry`; a plugin object replaces an entry point of the same name (tests
        inject plugins this way), but two installed packages may not claim one name."""
        if isinstance(entry, EntryPoint):
            kind, _, name = entry.name.partition(".")
            previous = self._entries.get((kind, name))
            if isinstance(previous, EntryPoint) and previous.value != entry.value:
                self._conflicts[kind, name] = f"{previous.value} and {entry.value}"
            self._entries[kind, name] = entry
        else:
            self._entries[entry.kind, entry.name] = entry
            self._conflicts.pop((entry.kind, entry.name), None)

    def names(self, kind: Kind) -> list[str]:
        return sorted(name for k, name in self._entries if k == kind)

    def target(self, name: str) -> TargetPlugin | None:
        plugin: TargetPlugin | None = self._get("target", name)
        return plugin

    def middleware(self, name: str) -> MiddlewarePlugin | None:
        plugin: MiddlewarePlugin | None = self._get("middleware", name)
        return plugin

    def verifier(self, name: str) -> VerifierPlugin | None:
        plugin: VerifierPlugin | None = self._get("verifier", name)
        return plugin

    def _get(self, kind: Kind, name: str) -> Any:
        if (kind, name) in self._conflicts:
            raise PluginError(
                f"two installed plugins claim {kind}.{name}: {self._conflicts[kind, name]}"
            )
        entry = self._entries.get((kind, name))
        if entry is None:
            return None
        plugin = _load(entry) if isinstance(entry, EntryPoint) else entry
        if getattr(plugin, "kind", None) != kind or not all(
            hasattr(plugin, attribute) for attribute in ("name", "parse", "create")
        ):
            raise PluginError(f"plugin {kind}.{name} is not a {kind} plugin")
        self._entries[kind, name] = plugin
        return plugin


def load_registry() -> Registry:
    """Every plugin installed in this environment, hookgate's own included."""
    return Registry(entry_points(group=GROUP))


def _load(entry_point: EntryPoint) -> Any:
    try:
        return entry_point.load()
    except Exception as exc:
        raise PluginError(f"plugin {entry_point.name} ({entry_point.value}): {exc}") from exc
