"""The ``add-received-at`` middleware: tell the target when hookgate received the event.

    targets:
      orders:
        url: http://orders.internal/hooks
        middleware:
          - type: add-received-at
            header: X-Received-At      # optional; this is the default

The value is the event's ``received_at`` in ISO 8601, the same on every attempt and
replay, unlike the time of the attempt. A header of the same name is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from gateway.plugin import (
    Message,
    Middleware,
    Resources,
    Section,
    Send,
    SendResult,
    replace_headers,
    settable_header_problem,
)

DEFAULT_HEADER = "X-Received-At"


@dataclass(frozen=True, slots=True)
class Options:
    header: str = DEFAULT_HEADER


@dataclass(frozen=True, slots=True)
class AddReceivedAt:
    """Sets ``options.header`` to the event's received_at, then calls the rest of the chain."""

    options: Options

    async def __call__(self, message: Message, call_next: Send) -> SendResult:
        stamp = (self.options.header, message.received_at.isoformat())
        return await call_next(replace(message, headers=replace_headers(message.headers, [stamp])))


class AddReceivedAtPlugin:
    """The plugin object the ``middleware.add-received-at`` entry point names."""

    kind: Literal["middleware"] = "middleware"
    name = "add-received-at"

    def parse(self, section: Section) -> Options:
        """The options; problems go to `section` with their key path (hookgate reports
        unknown keys itself)."""
        header: str = section.text("header", DEFAULT_HEADER)
        # The same rules as the built-in `headers` middleware: a valid name, and never
        # one of hookgate's identity headers or a header the HTTP client manages.
        if problem := settable_header_problem(header):
            section.fail(problem, "header")
        return Options(header)

    def create(self, options: Any, resources: Resources) -> Middleware:
        return AddReceivedAt(options)


plugin = AddReceivedAtPlugin()
