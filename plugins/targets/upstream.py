"""The built-in `upstream` target: the app behind hookgate, at the event's own request line.

A source captured at the app's own path (``sources.<name>.path``) is relayed back to the
app it was meant for: the same method, raw path and raw query the provider used, on the
upstream's URL (``upstream.url``, filled in by gateway/upstream.py), with the provider's
headers (``forward_headers: ["*"]`` by default) and hookgate's identity headers. Retries,
signing, middleware, breaker and ordering are those of any target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from yarl import URL

from gateway.plugin import Message, Resources, Section, Send
from plugins.targets.http import HttpOptions, HttpPlugin, HttpTarget


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    http: HttpOptions  # url: the upstream's base URL
    host: str | None = None  # None: the provider's Host header, as it reached hookgate


class UpstreamTarget(HttpTarget):
    """An http target whose method, path and query are the event's own."""

    def __init__(self, options: UpstreamOptions, resources: Resources) -> None:
        super().__init__(options.http, resources.client)
        self.host = options.host

    def request_line(self, message: Message) -> tuple[str, URL]:
        query = f"?{message.query}" if message.query else ""
        return message.method, URL(f"{self.options.url}{message.path}{query}", encoded=True)

    def extra_headers(self, message: Message) -> tuple[tuple[str, str], ...]:
        host = self.host or next(
            (value for name, value in message.request_headers if name.lower() == "host"), None
        )
        return (*self.options.headers, *((("Host", host),) if host else ()))


class UpstreamPlugin:
    kind: Literal["target"] = "target"
    name = "upstream"

    def parse(self, section: Section) -> UpstreamOptions:
        host = section.text("host", "keep")
        if "method" in section:
            section.fail("the upstream target sends with the event's own method", "method")
        # Everything else is an http target's: url (here the base URL) and static headers.
        http = HttpPlugin().parse(section)
        return UpstreamOptions(http, None if host == "keep" else host)

    def create(self, options: Any, resources: Resources) -> Send:
        return UpstreamTarget(options, resources)


plugin = UpstreamPlugin()

__all__ = ["UpstreamOptions", "UpstreamTarget", "plugin"]
