"""Reloading the config without a restart: SIGHUP and `hookgate reload`.

`reload(app, path)` reads and validates the file; an invalid one changes nothing
(every problem is logged, the old config keeps serving). A valid one is swapped in
whole (`gateway.ingress.live`): sources served at ``/in/<source>``, their secrets,
verifiers and limits, and the routes take effect with the next request, while
requests in flight finish under the config they started with.

What a reload cannot change in a running process is said, never silently ignored:
the listener, database and upstream settings, a source's own path (routes are fixed
once serving), and the relay's targets (a target added, removed or changed is
relayed as before until a restart). Deliveries pending for a target the new config
no longer names stay pending, never dropped: each such target is logged with its
backlog.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import structlog
from aiohttp import web

from gateway import keys
from gateway.config import Config, load_config
from gateway.errors import ConfigError, HookgateError, PluginError, StorageError
from gateway.ingress.guard import build_guards
from gateway.ingress.live import Snapshot

log = structlog.get_logger("hookgate.reload")

PID_FILE = "hookgate.pid"  # under database.data_dir: where `hookgate reload` finds the server


async def reload(app: web.Application, path: Path) -> bool:
    """Swap in the config at `path` if it is valid; whether it was."""
    try:
        config = load_config(path, app[keys.REGISTRY])
    except ConfigError as exc:
        log.error("config_reload_failed", file=str(path), errors=exc.lines())
        return False
    if keys.LIVE not in app:  # a worker: only targets, which need a restart
        _report_restart_only(app[keys.CONFIG], config, relay_only=True)
        return True
    live = app[keys.LIVE]
    try:
        guards = build_guards(config, app[keys.REGISTRY], app[keys.RESOURCES])
    except (ConfigError, PluginError) as exc:
        log.error("config_reload_failed", file=str(path), errors=[exc.message])
        return False
    previous = live.swap(Snapshot(config, guards)).config
    log.info("config_reloaded", file=str(path), **_changes(previous, config))
    _report_restart_only(previous, config, relay_only=False)
    await _report_removed_targets(app, previous, config)
    return True


def _changes(old: Config, new: Config) -> dict[str, list[str]]:
    return {
        "sources_added": sorted(set(new.sources) - set(old.sources)),
        "sources_removed": sorted(set(old.sources) - set(new.sources)),
        "sources_changed": sorted(
            name
            for name in set(old.sources) & set(new.sources)
            if old.sources[name] != new.sources[name]
        ),
        "targets_added": sorted(set(new.targets) - set(old.targets)),
        "targets_removed": sorted(set(old.targets) - set(new.targets)),
    }


def _report_restart_only(old: Config, new: Config, *, relay_only: bool) -> None:
    """Log each changed setting the running process keeps until it restarts."""
    sections = (
        ["targets", "relay"]
        if relay_only
        else ["server", "database", "upstream", "targets", "relay"]
    )
    kept = [name for name in sections if getattr(old, name) != getattr(new, name)]
    paths = sorted(
        name
        for name, source in new.sources.items()
        if source.path is not None
        and (name not in old.sources or old.sources[name].path != source.path)
    )
    if kept or paths:
        log.warning("config_reload_needs_restart", sections=kept, source_paths=paths)


async def _report_removed_targets(app: web.Application, old: Config, new: Config) -> None:
    removed = sorted(set(old.targets) - set(new.targets))
    if not removed:
        return
    try:
        states = await app[keys.STORE].target_states(removed)
    except StorageError as exc:
        log.warning("removed_targets_unchecked", targets=removed, error=exc.message)
        return
    for state in states:
        if state["backlog"]:
            log.warning(
                "removed_target_has_pending", target=state["name"], backlog=state["backlog"]
            )


def pid_file(config: Config) -> Path:
    return config.database.data_dir / PID_FILE


def signal_server(config: Config) -> int:
    """Send SIGHUP to the `hookgate serve` whose pid file this config names; its pid."""
    path = pid_file(config)
    try:
        pid = int(path.read_text(encoding="ascii").strip())
        os.kill(pid, signal.SIGHUP)
    except FileNotFoundError:
        raise HookgateError(f"no running hookgate: {path} does not exist") from None
    except ValueError:
        raise HookgateError(f"{path} does not hold a process id") from None
    except ProcessLookupError:
        raise HookgateError(
            f"no running hookgate: process {path.read_text().strip()} is gone"
        ) from None
    return pid
