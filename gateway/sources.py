"""The ``sources:`` part of hookgate.yaml: how each public route checks its requests.

Verification (a verifier plugin), IP allowlist, rate limits, deduplication, and
``mode: proxy``. Parsed with the same `Section` as the rest of the config, so every
mistake carries its key path. Nothing here knows targets or routes: `gateway.config`
checks what refers across them (`check_proxy_references`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from gateway.errors import PluginError
from gateway.paths import SourcePath
from gateway.plugins import PluginSpec, Registry, parse_options
from gateway.section import REQUIRED, Section, show

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Extractor:
    """Where a value lives in a request: ``json:data.type`` or ``header:X-GitHub-Event``."""

    kind: str
    key: str

    @classmethod
    def parse(cls, value: object) -> Extractor:
        kind, _, key = str(value).partition(":")
        if kind not in {"json", "header"} or not key:
            raise ValueError(f'expected "json:<field.path>" or "header:<Name>", got {show(value)}')
        return cls(kind, key)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `rate` tokens a second, up to `burst` at once."""

    rate: float
    burst: float

    @classmethod
    def parse(cls, value: object) -> RateLimit:
        match = _RATE.match(str(value)) if isinstance(value, str | int) else None
        if match is None:
            raise ValueError(f"expected a rate like 100/s, 600/m or 1000/h, got {show(value)}")
        rate = float(match[1]) / {"s": 1, "m": 60, "h": 3600}[match[2]]
        return cls(rate, max(1.0, float(match[1]) if match[2] == "s" else rate))


@dataclass(frozen=True, slots=True)
class Dedupe:
    key: Extractor
    window: float = 72 * 3600.0


@dataclass(frozen=True, slots=True)
class ProxyFallback:
    """The answer a proxy source gives when its target gives none (timeout, refused, ...)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """``mode: proxy``: each request is forwarded to `target`, and its answer is the answer."""

    target: str
    timeout: float = 5.0
    fallback: ProxyFallback | None = None  # None: no answer from the target is a 502


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    methods: frozenset[str] = frozenset({"POST"})
    event_type: Extractor | None = None
    verify: PluginSpec | None = None
    ip_allowlist: tuple[IPNetwork, ...] = ()
    rate_limit: RateLimit | None = None
    peer_rate_limit: RateLimit | None = None
    dedupe: Dedupe | None = None
    proxy: ProxyConfig | None = None  # set for ``mode: proxy``; None for ``mode: store``
    # Stored redacted (with the verifier's own credential inputs): gateway/ingress/redact.py
    redact_headers: tuple[str, ...] = ("Authorization", "Cookie", "Proxy-Authorization")
    path: SourcePath | None = None  # also captured at this path of the app (gateway/paths.py)


def parse_source(s: Section, name: str, registry: Registry) -> SourceConfig:
    methods = frozenset(m.upper() for m in s.text_list("methods", ("POST",)))
    for method in sorted(methods - _METHODS):
        s.fail(f"unsupported method {show(method)} (use {', '.join(sorted(_METHODS))})", "methods")
    verify, default_dedupe = _verify(s, registry)
    rate, per_peer = parse_rate_limit(s, per_peer=True)
    dedupe = _dedupe(s, default_dedupe)
    proxy = _proxy(s)
    if proxy is not None and s.data.get("dedupe", False) is not False:
        s.fail("not used with mode: proxy (every request is forwarded and answered)", "dedupe")
    config = SourceConfig(
        name=name,
        methods=methods,
        event_type=s.get("event_type", Extractor.parse, None),
        verify=verify,
        ip_allowlist=s.get("ip_allowlist", networks, ()),
        rate_limit=rate,
        peer_rate_limit=per_peer,
        dedupe=None if proxy else dedupe,
        proxy=proxy,
        redact_headers=tuple(
            s.text_list(
                "redact_headers", SourceConfig.__dataclass_fields__["redact_headers"].default
            )
        ),
        path=s.get("path", SourcePath.parse, None),
    )
    s.get("retention", lambda value: value, None)  # parsed by gateway.retention
    s.done()
    return config


def _proxy(s: Section) -> ProxyConfig | None:
    """``mode: proxy`` with ``proxy: {target, timeout, fallback}``; None for ``mode: store``."""
    mode = s.text("mode", "store")
    if mode not in {"store", "proxy"}:
        s.fail(f'expected "store" or "proxy", got {show(mode)}', "mode")
    if mode != "proxy":
        if "proxy" in s:
            s.fail("only used with mode: proxy", "proxy")
            s.section("proxy")
        return None
    section = s.section("proxy")
    target = section.text("target")
    timeout = section.duration("timeout", ProxyConfig.__dataclass_fields__["timeout"].default)
    if "timeout" in section and timeout <= 0:
        section.fail("must be longer than 0s", "timeout")
    fallback = _fallback(section.section("fallback")) if "fallback" in section else None
    section.done()
    return ProxyConfig(target, timeout, fallback)


def _fallback(s: Section) -> ProxyFallback:
    default = ProxyFallback()
    status = s.integer("status", default.status, minimum=200)
    if status > 599:
        s.fail(f"expected an HTTP status from 200 to 599, got {status}", "status")
    body = s.text("body", "")
    content_type = s.text("content_type", default.content_type)
    s.done()
    return ProxyFallback(status, body.encode(), content_type)


def _verify(s: Section, registry: Registry) -> tuple[PluginSpec | None, str | None]:
    """The source's verifier and the provider's default dedupe key."""
    if "verify" not in s:
        return None, None
    section = s.section("verify")
    kind = section.text("type")  # required: a verify block must never be silently ignored
    if not kind:
        return None, None
    try:
        plugin = registry.verifier(kind)
    except PluginError as exc:
        section.fail(exc.message, "type")
        return None, None
    if plugin is None:
        known = ", ".join(registry.names("verifier"))
        section.fail(f"unknown verifier type {show(kind)} (installed: {known})", "type")
        return None, None
    options = parse_options(plugin, section)
    section.done()
    return PluginSpec(kind, options), getattr(plugin, "default_dedupe", None)


def parse_rate_limit(
    s: Section, per_peer: bool = False
) -> tuple[RateLimit | None, RateLimit | None]:
    """``rate_limit: 100/s`` or ``{rate: 100/s, burst: 200}``, and, where `per_peer` is
    allowed (sources), ``per_peer: 10/s``; without it the mapping needs a ``rate``."""
    if not isinstance(s.data.get("rate_limit"), dict):
        return s.get("rate_limit", RateLimit.parse, None), None
    section = s.section("rate_limit")
    rate = section.get("rate", RateLimit.parse, None if per_peer else REQUIRED)
    burst = section.integer("burst", 0, minimum=1) if "burst" in section else None
    peer = section.get("per_peer", RateLimit.parse, None) if per_peer else None
    section.done()
    if rate is not None and burst:
        rate = RateLimit(rate.rate, float(burst))
    return rate, peer


def _dedupe(s: Section, default_key: str | None) -> Dedupe | None:
    """``dedupe: {key: "header:X-Id", window: 72h}``, ``false``, or the provider's default."""
    if s.data.get("dedupe") is False:
        s.get("dedupe", lambda v: v, None)
        return None
    if "dedupe" not in s:
        return Dedupe(Extractor.parse(default_key)) if default_key else None
    section = s.section("dedupe")
    key = (
        section.get("key", Extractor.parse, None)
        if default_key
        else section.get("key", Extractor.parse)
    )
    window = section.duration("window", Dedupe.__dataclass_fields__["window"].default)
    section.done()
    key = key or (Extractor.parse(default_key) if default_key else None)
    return Dedupe(key, window) if key else None


def networks(value: object) -> tuple[IPNetwork, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f"expected a list of CIDR ranges like 10.0.0.0/8, got {show(value)}")
    try:
        return tuple(ipaddress.ip_network(str(item), strict=False) for item in items)
    except ValueError:
        raise ValueError(
            f"expected CIDR ranges like 192.0.2.0/24 or ::1/128, got {show(value)}"
        ) from None
