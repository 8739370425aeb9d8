"""The `headers` middleware: forward chosen request headers, remove some, add fixed ones.

    middleware:
      - type: headers
        forward: [X-GitHub-*]          # copy these headers of the original request
        remove: [X-Forwarded-*]        # globs, case-insensitive
        add: {X-Team: payments}        # replaces a header of the same name

Applied in that order, so `remove` also trims what `forward` copied. hookgate's identity
headers (X-Hookgate-*, Idempotency-Key) can be neither added nor removed: a config that
tries is refused. `forward` never copies them, User-Agent or hop-by-hop headers such as
Host from the request: the sender controls those, and must not pose as hookgate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, Literal

from gateway.plugin import (
    HOP_BY_HOP,
    IDENTITY_HEADERS,
    IDENTITY_PREFIX,
    Headers,
    Message,
    Middleware,
    Resources,
    Section,
    Send,
    SendResult,
    header_value_problem,
    is_identity_header,
    replace_headers,
    settable_header_problem,
    show,
)

_WILDCARD = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class HeaderOptions:
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()  # lowercased globs
    forward: tuple[str, ...] = ()  # lowercased globs


class HeaderRewriter:
    """Forwards, removes, then adds headers on the outgoing message."""

    def __init__(self, options: HeaderOptions) -> None:
        self.options = options

    async def __call__(self, message: Message, call_next: Send) -> SendResult:
        return await call_next(replace(message, headers=self.rewrite(message)))

    def rewrite(self, message: Message) -> Headers:
        copied = [
            (name, value)
            for name, value in message.request_headers
            if _forwardable(name) and _matches(name, self.options.forward)
        ]
        headers = replace_headers(message.headers, copied)
        kept = tuple(h for h in headers if not self._removes(h[0]))
        return replace_headers(kept, self.options.add)

    def _removes(self, name: str) -> bool:
        return not is_identity_header(name) and _matches(name, self.options.remove)


def _forwardable(name: str) -> bool:
    lower = name.lower()
    return not (is_identity_header(lower) or lower == "user-agent" or lower in HOP_BY_HOP)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    lower = name.lower()
    return any(fnmatchcase(lower, pattern) for pattern in patterns)


class HeadersPlugin:
    kind: Literal["middleware"] = "middleware"
    name = "headers"

    def parse(self, section: Section) -> HeaderOptions:
        options = HeaderOptions(
            add=_add(section.section("add")),
            remove=_patterns(section, "remove", _remove_problem),
            forward=_patterns(section, "forward", _forward_problem),
        )
        if not any(key in section for key in ("add", "remove", "forward")):
            section.fail("expected at least one of add, remove or forward")
        return options

    def create(self, options: Any, resources: Resources) -> Middleware:
        return HeaderRewriter(options)


def _add(section: Section) -> tuple[tuple[str, str], ...]:
    added = []
    for name, _ in section.items():
        value: str = section.text(name)
        problem = settable_header_problem(name) or header_value_problem(value)
        if problem:
            section.fail(problem, name)
        added.append((name, value))
    return tuple(added)


def _patterns(section: Section, key: str, problem: Callable[[str], str | None]) -> tuple[str, ...]:
    patterns = tuple(p.lower() for p in section.text_list(key, ()))
    for pattern in patterns:
        if reason := problem(pattern):
            section.fail(f"{show(pattern)} {reason}", key)
    return patterns


def _remove_problem(pattern: str) -> str | None:
    if pattern.startswith(IDENTITY_PREFIX) or any(
        fnmatchcase(h, pattern) for h in IDENTITY_HEADERS
    ):
        return "would remove hookgate's identity headers"
    return None


def _forward_problem(pattern: str) -> str | None:
    if not _WILDCARD.search(pattern) and not _forwardable(pattern):
        return "is never forwarded: the sender controls it"
    return None


plugin = HeadersPlugin()
