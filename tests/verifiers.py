"""Builders shared by the verifier tests: a verifier's options and the request it sees.

Every tests/unit/test_verifier_*.py builds its options and `Inbound` requests with these
(usually through a `Builders` bound to its plugin and its defaults), and
tests/unit/test_verifier_contract.py runs the cases every verifier must pass with the
per-provider signing functions in tests/verifier_schemes.py. Each provider's own edge
cases and published test vectors stay in its own file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, MultiDict

from gateway.plugin import Inbound, Section

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
URL = "https://hooks.example.com/in/x"
WHERE = "sources.x.verify"  # the key path a verifier's problems are reported under


def problems_for(plugin: Any, config: Mapping[str, Any] | None = None, /, **more: Any) -> list[str]:
    """The problems `plugin.parse` reports for `config` (or the keyword arguments)."""
    problems: list[str] = []
    plugin.parse(Section(dict(config if config is not None else more), WHERE, problems))
    return problems


def options(plugin: Any, config: Mapping[str, Any] | None = None, /, **more: Any) -> Any:
    """`plugin`'s options for `config` (or the keyword arguments), which must be valid."""
    problems: list[str] = []
    parsed = plugin.parse(Section(dict(config if config is not None else more), WHERE, problems))
    assert problems == []
    return parsed


def inbound(
    headers: Mapping[str, str] | None = None,
    body: bytes = b"{}",
    now: dt.datetime = NOW,
    *,
    url: str = URL,
    method: str = "POST",
    query: Mapping[str, str] | None = None,
) -> Inbound:
    """A request as the provider sent it: headers are case-insensitive, as aiohttp's are."""
    return Inbound(method, url, CIMultiDict(headers or {}), MultiDict(query or {}), body, now)


@dataclass(frozen=True)
class Builders:
    """`options`, `problems_for` and `inbound` bound to one plugin and a file's defaults.

    ``options()`` parses `config`; ``options(mapping)`` or ``options(**keys)`` parse
    that instead. ``inbound(headers, body, now, url=, method=, query=)`` defaults to
    `body`, `now` and `url`.
    """

    plugin: Any
    config: Mapping[str, Any] = field(default_factory=dict)
    body: bytes = b"{}"
    now: dt.datetime = NOW
    url: str = URL

    def _config(self, config: Mapping[str, Any] | None, more: dict[str, Any]) -> Mapping[str, Any]:
        return config if config is not None else (more or self.config)

    def options(self, config: Mapping[str, Any] | None = None, /, **more: Any) -> Any:
        return options(self.plugin, self._config(config, more))

    def problems_for(self, config: Mapping[str, Any] | None = None, /, **more: Any) -> list[str]:
        return problems_for(self.plugin, self._config(config, more))

    def inbound(
        self,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        now: dt.datetime | None = None,
        *,
        url: str | None = None,
        method: str = "POST",
        query: Mapping[str, str] | None = None,
    ) -> Inbound:
        return inbound(
            headers,
            self.body if body is None else body,
            self.now if now is None else now,
            url=self.url if url is None else url,
            method=method,
            query=query,
        )
