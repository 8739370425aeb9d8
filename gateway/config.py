"""hookgate.yaml → frozen dataclasses, with every mistake reported by its key path.

`load_config(path)` reads the file, expands ``${VAR}`` and ``${VAR:-default}`` from the
environment, and validates it; it raises one `ConfigError` carrying every problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.admin_settings import AdminConfig, parse_admin
from gateway.alerts import AlertsConfig, alert_target, parse_alerts
from gateway.encryption import EncryptionConfig, parse_encryption
from gateway.errors import ConfigError
from gateway.filters import Filter, parse_filter
from gateway.paths import check_paths
from gateway.plugins import PluginSpec, Registry, load_registry
from gateway.retention import RetentionConfig, parse_retention
from gateway.section import Section, show
from gateway.sources import IPNetwork, SourceConfig, networks, parse_source
from gateway.targets import TargetConfig, parse_middleware, parse_target
from gateway.upstream import UpstreamConfig, parse_upstream, routed_targets, with_builtin_target

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NO_HEADERS: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str | None = None
    data_dir: Path = Path(".hookgate")
    pool_size: int = 16
    connect_timeout: float = 30.0  # at start-up: how long to keep trying to reach the server


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    max_body: int = 1024 * 1024
    shutdown_timeout: float = 30.0
    # Peers whose X-Forwarded-For/-Proto/-Host are believed (a load balancer in front).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Slow clients: the request head (line and headers) and the whole body must arrive
    # within these; beyond max_connections, new connections are answered 503 and closed.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1024


@dataclass(frozen=True, slots=True)
class RejectedConfig:
    """The log of refused requests, bounded so a flood cannot fill the disk."""

    max_per_minute: int = 60  # per source
    retention: float | None = None  # deprecated: see retention.rejected (gateway/retention.py)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Group commit: whatever arrived while the previous write ran goes in one transaction."""

    writers: int = 4
    max_batch_rows: int = 32
    max_batch_bytes: int = 8 * 1024 * 1024
    retry_after: int = 5


@dataclass(frozen=True, slots=True)
class RelayConfig:
    enabled: bool = True
    lease: float = 60.0
    poll_interval: float = 1.0
    batch_size: int = 100
    # Claims and results commit without waiting for their WAL flush: a database crash can
    # lose the last moments of them, and those deliveries go out again (at least once).
    synchronous_commit: bool = False


@dataclass(frozen=True, slots=True)
class RouteConfig:
    source: str
    targets: tuple[str, ...]
    filter: Filter = field(default_factory=Filter.always)
    # Runs outermost around each target's own chain, for the deliveries this route made.
    middleware: tuple[PluginSpec, ...] = ()

    def matches(
        self, event_type: str | None, headers: Mapping[str, str] = _NO_HEADERS, body: bytes = b""
    ) -> bool:
        return self.filter.matches(event_type, headers, body)


@dataclass(frozen=True, slots=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    sources: Mapping[str, SourceConfig] = field(default_factory=dict)
    targets: Mapping[str, TargetConfig] = field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()
    rejected: RejectedConfig = field(default_factory=RejectedConfig)
    upstream: UpstreamConfig | None = None  # the app behind hookgate (reverse-proxy front)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)  # its targets are in `targets`

    def route(
        self,
        source: str,
        event_type: str | None,
        headers: Mapping[str, str] = _NO_HEADERS,
        body: bytes = b"",
    ) -> Routing:
        """Which of the source's routes match (by index in `routes`), and their targets."""
        routing = Routing()
        for index, route in enumerate(self.routes):
            if route.source != source:
                continue
            if route.matches(event_type, headers, body):
                routing.matched.append(index)
                for name in route.targets:
                    target = self.targets.get(name)
                    if target is None or target.filter.matches(event_type, headers, body):
                        routing.targets.setdefault(name, index)
            else:
                routing.unmatched.append(index)
        return routing

    def targets_for(
        self,
        source: str,
        event_type: str | None,
        headers: Mapping[str, str] = _NO_HEADERS,
        body: bytes = b"",
    ) -> list[str]:
        """Target names the routes send this event to, each once, in config order."""
        return list(self.route(source, event_type, headers, body).targets)


@dataclass(slots=True)
class Routing:
    """An event's routing decision, recorded with it."""

    matched: list[int] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)
    targets: dict[str, int] = field(default_factory=dict)  # target -> the route that added it


SERVER_DEFAULTS = ServerConfig()
INGEST_DEFAULTS = IngestConfig()
RELAY_DEFAULTS = RelayConfig()


EXAMPLE_HINT = "config/example.yaml in hookgate's repository is a complete example"


def load_config(path: str | Path, registry: Registry | None = None) -> Config:
    """Read, interpolate and validate a config file; its problems are prefixed with `path`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        problem = f"cannot read: no such file; choose one with --config FILE ({EXAMPLE_HINT})"
        raise ConfigError([problem], file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([f"cannot read: {reason}"], file=str(path)) from exc
    try:
        return parse_config(text, registry, env=os.environ)
    except ConfigError as exc:
        raise ConfigError(exc.problems, file=str(path)) from None


def parse_config(
    text: str, registry: Registry | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Validate config text; `env` is what ``${VAR}`` reads (the process environment by default)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)]) from exc
    if data is None:
        raise ConfigError([f"the file is empty ({EXAMPLE_HINT})"])
    unset: dict[str, list[str]] = {}
    data = _interpolate(data, "", os.environ if env is None else env, unset)
    problems: list[str] = []
    config = _build(Section(data, "", problems), registry or load_registry())
    if problems or unset:
        raise ConfigError(_unset_problems(unset) + _besides_unset(problems, unset))
    return config


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
    return f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"


def _interpolate(value: Any, path: str, env: Mapping[str, str], unset: dict[str, list[str]]) -> Any:
    """Expand ``${VAR}`` in every string; `unset` collects each missing VAR's key paths."""
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), env, unset)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", env, unset) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def expand(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        if name in env and (env[name] or default is None):
            return env[name]
        if default is None:
            unset.setdefault(name, []).append(path)
            return ""
        return default

    return _VAR.sub(expand, value)


def _besides_unset(problems: list[str], unset: Mapping[str, list[str]]) -> list[str]:
    """`problems` without those at a key an unset variable emptied: it is said once."""
    emptied = {path for paths in unset.values() for path in paths}
    return [p for p in problems if p.partition(": ")[0] not in emptied]


def _unset_problems(unset: Mapping[str, list[str]]) -> list[str]:
    """One problem per unset variable, at its first use, naming the other key paths."""
    problems = []
    for name, paths in unset.items():
        also = f" (also used by {', '.join(paths[1:])})" if len(paths) > 1 else ""
        problems.append(f"{paths[0]}: environment variable {name} is not set{also}")
    return problems


def _build(top: Section, registry: Registry) -> Config:
    database = _database(top.section("database"))
    server = _server(top.section("server"))
    ingest = _ingest(top.section("ingest"))
    relay = _relay(top.section("relay"))
    admin = parse_admin(top.section("admin"))
    rejected = _rejected(top.section("rejected"))
    upstream = parse_upstream(top.section("upstream"))
    retention = parse_retention(top, rejected.retention)
    encryption = parse_encryption(top.section("encryption"))
    sources = _named(top.section("sources"), lambda s, n: parse_source(s, n, registry))
    check_paths({name: source.path for name, source in sources.items()}, top.problems)
    written = with_builtin_target(
        top.section("targets").data, upstream, routed_targets(top.data.get("routes"))
    )
    targets = _named(
        Section(written, "targets", top.problems), lambda s, n: parse_target(s, n, registry)
    )
    routes = _routes(top, sources, targets, registry)
    check_proxy_references(top, sources, targets, routes)  # proxy mode: needs targets and routes
    for name, target in targets.items():
        if target.timeout >= relay.lease:
            top.problems.append(
                f"targets.{name}.timeout: must be shorter than relay.lease ({relay.lease:g}s), "
                f"or a slow answer would be sent again by another worker"
            )
    alerts = parse_alerts(
        top.section("alerts"),
        lambda s: _named(s, lambda t, n: parse_target(t, alert_target(n), registry)),
        relay.lease,
    )
    targets = {**targets, **alerts.targets}
    top.done()
    return Config(
        database,
        server,
        ingest,
        relay,
        admin,
        sources,
        targets,
        routes,
        rejected,
        upstream,
        retention,
        encryption,
        alerts,
    )


def _database(s: Section) -> DatabaseConfig:
    config = DatabaseConfig(
        url=s.get("url", _postgres_url, None) or None,
        data_dir=Path(s.text("data_dir", ".hookgate")),
        pool_size=s.integer("pool_size", 16, minimum=2),
        connect_timeout=s.duration("connect_timeout", 30.0),
    )
    s.done()
    return config


def _postgres_url(value: object) -> str:
    """A PostgreSQL URL (or empty: the embedded server); never echoes it, it may hold a password."""
    if not isinstance(value, str):
        raise ValueError(f"expected a postgresql:// URL, got {show(value)}")
    scheme = value.partition("://")[0] if "://" in value else ""
    if value and scheme not in {"postgresql", "postgres"}:
        shown = f"a {show(scheme)} URL" if scheme else "something that is not a URL"
        raise ValueError(f"expected a postgresql://user@host:port/db URL, got {shown}")
    return value


def _server(s: Section) -> ServerConfig:
    config = ServerConfig(
        host=s.text("host", SERVER_DEFAULTS.host),
        port=s.integer("port", 8080, minimum=0),
        max_body=s.size("max_body", SERVER_DEFAULTS.max_body),
        shutdown_timeout=s.duration("shutdown_timeout", SERVER_DEFAULTS.shutdown_timeout),
        trusted_proxies=s.get("trusted_proxies", networks, ()),
        header_timeout=s.duration("header_timeout", SERVER_DEFAULTS.header_timeout),
        body_timeout=s.duration("body_timeout", SERVER_DEFAULTS.body_timeout),
        max_connections=s.integer("max_connections", SERVER_DEFAULTS.max_connections, minimum=1),
    )
    for key in ("header_timeout", "body_timeout"):
        if key in s and getattr(config, key) <= 0:
            s.fail("must be longer than 0s", key)
    if config.port > 65535:
        s.fail(f"expected a port number up to 65535, got {config.port}", "port")
    s.done()
    return config


def _ingest(s: Section) -> IngestConfig:
    config = IngestConfig(
        writers=s.integer("writers", INGEST_DEFAULTS.writers, minimum=1),
        max_batch_rows=s.integer("max_batch_rows", INGEST_DEFAULTS.max_batch_rows, minimum=1),
        max_batch_bytes=s.size("max_batch_bytes", INGEST_DEFAULTS.max_batch_bytes),
        retry_after=s.integer("retry_after", INGEST_DEFAULTS.retry_after, minimum=1),
    )
    s.done()
    return config


def _relay(s: Section) -> RelayConfig:
    config = RelayConfig(
        enabled=s.flag("enabled", True),
        lease=s.duration("lease", RELAY_DEFAULTS.lease),
        poll_interval=s.duration("poll_interval", RELAY_DEFAULTS.poll_interval),
        batch_size=s.integer("batch_size", RELAY_DEFAULTS.batch_size, minimum=1),
        synchronous_commit=s.flag("synchronous_commit", RELAY_DEFAULTS.synchronous_commit),
    )
    s.done()
    return config


def _named(s: Section, build: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, _ in s.items():
        if not _NAME.match(name):
            s.fail("a name may use letters, digits, '_', '.' and '-' (64 at most)", name)
            continue
        result[name] = build(s.section(name), name)
    return result


def _rejected(s: Section) -> RejectedConfig:
    config = RejectedConfig(
        max_per_minute=s.integer("max_per_minute", 60, minimum=0),
        retention=s.duration("retention", None),
    )
    s.done()
    return config


def _routes(
    top: Section, sources: Mapping[str, Any], targets: Mapping[str, Any], registry: Registry
) -> tuple[RouteConfig, ...]:
    raw: list[Any] = top.get("routes", lambda v: v if isinstance(v, list) else _not_list(v), [])
    routes = []
    for index, item in enumerate(raw):
        s = Section(item, f"routes[{index}]", top.problems)
        source = s.text("source")
        if source is not None and source not in sources:
            s.fail(f"no source named {show(source)}", "source")
        names = s.text_list("targets")
        for name in names or ():
            if name not in targets:
                hint = (
                    " (the built-in one needs an upstream: section)" if name == "upstream" else ""
                )
                s.fail(f"no target named {show(name)}{hint}", "targets")
        route_filter = parse_filter(s.section("filter"))  # reports its own unknown keys
        middleware = parse_middleware(s, registry, sign=False)
        s.done()
        routes.append(RouteConfig(source or "", tuple(names or ()), route_filter, middleware))
    return tuple(routes)


def _not_list(value: object) -> list[Any]:
    raise ValueError(f"expected a list of routes, got {show(value)}")


def check_proxy_references(
    top: Section,
    sources: Mapping[str, SourceConfig],
    targets: Mapping[str, TargetConfig],
    routes: tuple[RouteConfig, ...],
) -> None:
    """A proxy source's target exists and is an http target; no route starts at one."""
    for name, source in sources.items():
        if source.proxy is None or not source.proxy.target:
            continue  # a missing target was reported where it was parsed
        where, wanted = f"sources.{name}.proxy.target", source.proxy.target
        target = targets.get(wanted)
        if target is None:
            top.problems.append(f"{where}: no target named {show(wanted)}")
        elif target.type != "http":
            top.problems.append(
                f"{where}: {show(wanted)} is a {target.type} target; a proxy needs an http target"
            )
    for index, route in enumerate(routes):
        origin = sources.get(route.source)
        if origin is not None and origin.proxy is not None:
            top.problems.append(
                f"routes[{index}].source: {show(route.source)} is a proxy source: its requests "
                f"are answered by sources.{route.source}.proxy.target, never routed"
            )
