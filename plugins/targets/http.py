"""The `http` target: POST the event to an internal URL over the shared client session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from yarl import URL

from gateway.plugin import (
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

    def __init__(self, options: HttpOptions, session: aiohttp.ClientSession) -> None:
        self.options = options
        self.session = session
        self._url = URL(options.url)  # parsed once, not per request

    def request_line(self, message: Message) -> tuple[str, str | URL]:
        """The method and URL to send `message` to: the configured ones."""
        return self.options.method, self._url

    def extra_headers(self, message: Message) -> tuple[tuple[str, str], ...]:
        """Headers that fill in after the chain's: the configured static ones."""
        return self.options.headers

    async def __call__(self, message: Message) -> SendResult:
        present = {name.lower() for name, _ in message.headers}
        # Static headers fill in; they never replace what the chain set (identity, signature).
        headers = [
            *message.headers,
            *((k, v) for k, v in self.extra_headers(message) if k.lower() not in present),
        ]
        method, url = self.request_line(message)
        try:
            async with self.session.request(
                method,
                url,
                data=message.body,
                headers=headers,
                allow_redirects=False,
            ) as response:
                if self.options.answer_limit is None:
                    body = await response.content.read(SNIPPET)
                else:
                    whole = await _read_all(response, self.options.answer_limit)
                    if whole is None:
                        limit = self.options.answer_limit
                        return SendResult(
                            Outcome.TARGET_ERROR, error=f"the answer is over {limit} bytes"
                        )
                    body = whole
                return SendResult(
                    outcome=classify_status(response.status),
                    status=response.status,
                    headers=tuple(response.headers.items()),
                    body=body,
                    retry_after=parse_retry_after(response.headers.get("Retry-After"), message.now),
                )
        except aiohttp.ClientError as exc:
            return SendResult(classify_error(exc), error=f"{type(exc).__name__}: {exc}")
        except TimeoutError as exc:
            return SendResult(Outcome.TIMEOUT, error=f"{type(exc).__name__}: {exc}")


async def _read_all(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is over `limit` bytes."""
    if response.content_length is not None and response.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def classify_error(exc: aiohttp.ClientError) -> Outcome:
    """Which network failure this was; the order matters (subclasses first)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Outcome.DNS_ERROR
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return Outcome.TLS_ERROR
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return Outcome.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectionError):
        return Outcome.CONNECT_ERROR
    return Outcome.TARGET_ERROR


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
        return HttpTarget(options, resources.http)


def _url(value: object) -> str:
    url = URL(str(value))
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"expected an http:// or https:// URL, got {show(value)}")
    return str(value)


plugin = HttpPlugin()

__all__ = ["HttpOptions", "HttpTarget", "plugin"]
