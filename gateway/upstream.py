"""The ``upstream:`` part of hookgate.yaml: the app hookgate stands in front of.

    upstream:
      url: http://app.internal:8000   # every request that matches no source goes here
      timeout: 30s                    # connect + first byte of the answer; then 504
      max_body: 10GiB                 # the pass-through's own body limit (default: none)
      host: keep                      # keep the client's Host, or send this value
      connections: 100                # keep-alive pool to the upstream

It also makes the built-in ``upstream`` target: a route may name ``upstream`` without a
``targets.upstream`` entry; one may still be declared there to set retries, signing,
middleware, breaker or ordering. Either way it is parsed by the ``upstream`` target
plugin like any other target, with the upstream's URL and Host setting filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

from gateway.section import Section, show

NAME = "upstream"  # the built-in target's name and its plugin's type
_REPORTED = "http://upstream.invalid"  # stands in for an upstream.url already reported


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    url: str
    timeout: float = 30.0
    max_body: int | None = None  # None: no limit (the webhook limit is server.max_body)
    host: str | None = None  # None: keep the client's Host header
    connections: int = 100


def parse_upstream(s: Section) -> UpstreamConfig | None:
    """The section, or None when there is no upstream (no pass-through, no target)."""
    if not s.data:
        s.done()
        return None
    default = UpstreamConfig("")
    host = s.text("host", "keep")
    config = UpstreamConfig(
        url=s.get("url", _base_url, fallback=""),
        timeout=s.duration("timeout", default.timeout),
        max_body=s.size("max_body", None),
        host=None if host == "keep" else host or None,
        connections=s.integer("connections", default.connections, minimum=1),
    )
    if "timeout" in s and config.timeout <= 0:
        s.fail("must be longer than 0s", "timeout")
    s.done()
    return config


def _base_url(value: object) -> str:
    url = URL(str(value))
    if url.scheme not in {"http", "https"} or not url.host or url.query_string or url.fragment:
        raise ValueError(
            f"expected an http:// or https:// URL with no query, like http://app:8000, "
            f"got {show(value)}"
        )
    return str(value).rstrip("/")


def with_builtin_target(
    targets: Mapping[str, Any], upstream: UpstreamConfig | None, routed: set[str]
) -> dict[str, Any]:
    """`targets` as written, plus the built-in ``upstream`` target when there is an
    upstream and a route names it, with the upstream's URL and Host setting filled in."""
    result = dict(targets)
    declared = result.get(NAME)
    if upstream is None or (declared is None and NAME not in routed):
        return result
    section = dict(declared) if isinstance(declared, Mapping) else {}
    if isinstance(declared, Mapping) or declared is None:
        section.setdefault("type", NAME)
        if section["type"] == NAME:
            # An invalid upstream.url was reported at its own key: do not report it twice.
            section.setdefault("url", upstream.url or _REPORTED)
            section.setdefault("host", upstream.host or "keep")
            # The app gets what the provider sent, so it can still check signatures itself.
            section.setdefault("forward_headers", ["*"])
        result[NAME] = section
    return result


def routed_targets(routes: object) -> set[str]:
    """Every target name the routes mention as written (they are checked later)."""
    names: set[str] = set()
    for route in routes if isinstance(routes, list) else ():
        listed = route.get("targets") if isinstance(route, Mapping) else None
        if isinstance(listed, list):
            names.update(name for name in listed if isinstance(name, str))
    return names
