"""The `http` target: POST the event to an internal URL over the shared delivery client."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any, Literal

from yarl import URL

from gateway.plugin import (
    AnswerTooLarge,
    BadAnswer,
    HttpClient,
    Message,
    Outcome,
    Resources,
    Section,
    Send,
    SendResult,
    classify_status,
    parse_retry_after,
    show,
)

SNIPPET = 4096
_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class HttpOptions:
    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    # None: keep the first 4 KiB of the answer (an attempt record). A number: the whole
    # answer up to that many bytes, or a failure (proxy sources pass the answer on).
    answer_limit: int | None = None


class HttpTarget:
    """Sends one message; classifies the answer or the failure."""

    def __init__(self, options: HttpOptions, client: HttpClient | None = None) -> None:
        self.options = options
        self._own = client is None  # no shared client: this target's own, closed with it
        self.client = client or HttpClient()
        self._url = URL(options.url)  # parsed once, not per request

    def request_line(self, message: Message) -> tuple[str, URL]:
        """The method and URL to send `message` to: the configured ones."""
        return self.options.method, self._url

    def extra_headers(self, message: Message) -> tuple[tuple[str, str], ...]:
        """Headers that fill in after the chain's: the configured static ones."""
        return self.options.headers

    async def __call__(self, message: Message) -> SendResult:
        headers = message.headers
        extra = self.extra_headers(message)
        if extra:
            present = {name.lower() for name, _ in headers}
            # Static headers fill in; they never replace what the chain set (identity, signature).
            headers = (*headers, *((k, v) for k, v in extra if k.lower() not in present))
        method, url = self.request_line(message)
        limit = self.options.answer_limit
        try:
            answer = await self.client.request(
                method, url, headers, message.body, keep=SNIPPET, limit=limit
            )
        except AnswerTooLarge:
            return SendResult(Outcome.TARGET_ERROR, error=f"the answer is over {limit} bytes")
        except (OSError, BadAnswer, ValueError) as exc:
            return SendResult(classify_error(exc), error=f"{type(exc).__name__}: {exc}")
        return SendResult(
            outcome=classify_status(answer.status),
            status=answer.status,
            headers=answer.headers,
            body=answer.body,
            retry_after=parse_retry_after(answer.header("Retry-After"), message.now),
        )

    async def aclose(self) -> None:
        """Close this target's own connections (a shared client is closed by its owner)."""
        if self._own:
            await self.client.close()


def classify_error(exc: Exception) -> Outcome:
    """Which network failure this was; the order matters (subclasses first)."""
    if isinstance(exc, socket.gaierror):
        return Outcome.DNS_ERROR
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Outcome.TLS_ERROR
    if isinstance(exc, TimeoutError):
        return Outcome.TIMEOUT
    if isinstance(exc, OSError):
        return Outcome.CONNECT_ERROR
    return Outcome.TARGET_ERROR  # not HTTP, or a header that cannot be sent


class HttpPlugin:
    kind: Literal["target"] = "target"
    name = "http"

    def parse(self, section: Section) -> HttpOptions:
        url = section.get("url", _url)
        method = section.text("method", "POST").upper()
        if method not in _METHODS:
            section.fail(
                f"expected one of {', '.join(sorted(_METHODS))}, got {show(method)}", "method"
            )
        headers = section.section("headers")
        static = tuple((name, str(value)) for name, value in headers.items())
        return HttpOptions(url=url, method=method, headers=static)

    def create(self, options: Any, resources: Resources) -> Send:
        return HttpTarget(options, resources.client)


def _url(value: object) -> str:
    url = URL(str(value))
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"expected an http:// or https:// URL, got {show(value)}")
    return str(value)


plugin = HttpPlugin()

__all__ = ["HttpOptions", "HttpTarget", "plugin"]
