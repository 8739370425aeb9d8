"""Reloading the config without a restart: SIGHUP and `hookgate reload`.

`reload(app, path)` reads and validates the file; an invalid one changes nothing
(every problem is logged, the old config keeps serving and relaying). A valid one is
swapped in whole, for ingress and relay at once (no await between the two swaps, so a
route never names a target this process's relay does not know):

- ingress (`gateway.ingress.live`): sources served at ``/in/<source>``, their secrets,
  verifiers and limits, and the routes take effect with the next request, while
  requests in flight finish under the config they started with;
- the relay (`Relay.swap`, in `serve` and in `hookgate worker`): a new target is
  claimed at once; a changed one (url, headers, signing, timeout, retries, rate limit,
  concurrency, breaker, middleware) applies from the next claimed attempt, while
  attempts in flight finish under the lane they started with, whose resources are
  closed once they end; unchanged targets keep their lanes (and open connections).
  A removed target is no longer claimed: its deliveries stay pending, never dropped,
  and each such target is logged with its backlog. Its row in hookgate.targets (pause,
  breaker) stays; a new target gets its row with its first claim, as at start-up.
  `relay.lease`, `poll_interval` and `batch_size` apply from the next claim.

It is all or nothing: if a target's plugin fails to start, the reload fails (logged,
naming the target) and the old config keeps serving and relaying, every target of it.

What a running process cannot change is said, never silently ignored: the listener
(`server`), `database`, `upstream`, `ingest` (its writers), `admin`, `rejected`,
`retention`, `encryption`, `relay.enabled`, and a source's own path (routes are fixed
once serving). A worker only reads `database`, `encryption` and
`server.shutdown_timeout` of those. (The built-in ``upstream`` target is a target: it
follows a new `upstream.url` at once; the pass-through keeps the old one.) The admin
surface (its model and the replay feeder) follows the new config with ingress.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

import structlog
from aiohttp import web

from gateway import keys
from gateway.config import Config, load_config
from gateway.errors import ConfigError, HookgateError, PluginError, StorageError
from gateway.ingress.guard import build_guards
from gateway.ingress.live import Snapshot
from gateway.relay.lanes import Lane, rebuild_lanes

log = structlog.get_logger("hookgate.reload")

PID_FILE = "hookgate.pid"  # under database.data_dir: where `hookgate reload` finds the server
# Key paths a running process keeps as it started with, with ingress and without (a worker).
RESTART_ONLY = (
    "server", "database", "upstream", "ingest", "admin", "rejected", "retention",
    "encryption", "relay.enabled", "alerts",
)  # fmt: skip
RESTART_ONLY_WORKER = ("database", "encryption", "server.shutdown_timeout", "alerts")


async def reload(app: web.Application, path: Path) -> bool:
    """Swap in the config at `path` if it is valid and its targets start; whether it was."""
    try:
        config = load_config(path, app[keys.REGISTRY])
        snapshot, lanes = await _prepare(app, config)
    except (ConfigError, PluginError) as exc:
        errors = exc.lines() if isinstance(exc, ConfigError) else [exc.message]
        log.error("config_reload_failed", file=str(path), errors=errors)
        return False
    # No await from here to both swaps: ingress never routes to a target the relay lacks.
    live, relay = app.get(keys.LIVE), app.get(keys.RELAY)
    previous = live.swap(snapshot).config if live is not None and snapshot is not None else None
    old_targets = _targets(relay.lanes) if relay is not None else _config_targets(previous)
    if relay is not None and lanes is not None:
        relay.swap(lanes, config.relay)
    if previous is not None:  # the admin surface lists and acts on what ingress serves
        if (model := app.get(keys.ADMIN_MODEL)) is not None:
            model.use(config)
        if (feeder := app.get(keys.REPLAY_FEEDER)) is not None:
            feeder.use(config)
    changes = _diff("targets", old_targets, config.targets)
    if previous is not None:
        changes = {**_diff("sources", previous.sources, config.sources), **changes}
    log.info("config_reloaded", file=str(path), **changes)
    _report_restart_only(app[keys.CONFIG], config, worker=live is None)
    await _report_removed_targets(app, changes["targets_removed"])
    return True


async def _prepare(
    app: web.Application, config: Config
) -> tuple[Snapshot | None, dict[str, Lane] | None]:
    """What ingress (if this process has it) and the relay (if it runs) will swap in;
    `ConfigError` or `PluginError` if a source or a target cannot start."""
    resources = app[keys.RESOURCES]
    snapshot = None
    if keys.LIVE in app:
        snapshot = Snapshot(config, build_guards(config, app[keys.REGISTRY], resources))
    relay = app.get(keys.RELAY)
    if relay is None or not relay.alive():  # none here, or shutting down
        return snapshot, None
    return snapshot, await rebuild_lanes(relay.lanes, config, app[keys.REGISTRY], resources)


def _targets(lanes: Mapping[str, Lane]) -> dict[str, object]:
    return {name: lane.config for name, lane in lanes.items()}


def _config_targets(config: Config | None) -> Mapping[str, object]:
    return config.targets if config is not None else {}


def _diff(what: str, old: Mapping[str, object], new: Mapping[str, object]) -> dict[str, list[str]]:
    return {
        f"{what}_added": sorted(set(new) - set(old)),
        f"{what}_removed": sorted(set(old) - set(new)),
        f"{what}_changed": sorted(name for name in set(old) & set(new) if old[name] != new[name]),
    }


def _report_restart_only(started: Config, new: Config, *, worker: bool) -> None:
    """Log each setting that differs from what this process started with and that it
    keeps until it restarts."""
    kept = [
        key
        for key in (RESTART_ONLY_WORKER if worker else RESTART_ONLY)
        if _setting(started, key) != _setting(new, key)
    ]
    paths = sorted(
        name
        for name, source in new.sources.items()
        if not worker
        and source.path is not None
        and (name not in started.sources or started.sources[name].path != source.path)
    )
    if kept or paths:
        log.warning("config_reload_needs_restart", sections=kept, source_paths=paths)


def _setting(config: Config, key: str) -> object:
    value: object = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


async def _report_removed_targets(app: web.Application, removed: list[str]) -> None:
    if not removed:
        return
    try:
        states = await app[keys.STORE].target_states(removed)
    except StorageError as exc:
        log.warning("removed_targets_unchecked", targets=removed, error=exc.message)
        return
    for state in states:
        if state["backlog"] or state["queued"]:  # queued: bulk replays, left until it is back
            log.warning(
                "removed_target_has_pending", target=state["name"], backlog=state["backlog"],
                queued=state["queued"],
            )  # fmt: skip


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
