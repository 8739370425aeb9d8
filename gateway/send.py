"""`hookgate send`: sign a sample webhook as a provider would, and POST it."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from gateway.clock import SystemClock
from gateway.errors import ConfigError, HookgateError
from gateway.plugins import load_registry
from gateway.section import Section


@dataclass(frozen=True, slots=True)
class SendRequest:
    type: str
    url: str
    options: dict[str, object]
    body: bytes | None = None
    content_type: str | None = None


def signed_request(request: SendRequest) -> tuple[bytes, dict[str, str]]:
    """The body and headers the provider `request.type` would send to `request.url`."""
    registry = load_registry()
    plugin = registry.verifier(request.type)
    if plugin is None:
        known = ", ".join(registry.names("verifier"))
        raise HookgateError(f"unknown verifier type {request.type!r} (installed: {known})")
    problems: list[str] = []
    section = Section(request.options, "verify", problems)
    options = plugin.parse(section)
    section.done()  # a mistyped -o option must not pass silently
    if problems:
        raise ConfigError(problems)
    body: bytes = (
        request.body if request.body is not None else getattr(plugin, "sample_body", b"{}")
    )
    sample_type: str = getattr(plugin, "sample_content_type", "application/json")
    content_type = request.content_type or sample_type
    now = SystemClock().now()
    prepare = getattr(plugin, "prepare", None)
    if prepare is not None:
        body = prepare(options, body, now)
    try:
        headers = plugin.create(options, None).sign(body, request.url, now)
    except NotImplementedError as exc:
        raise HookgateError(f"{request.type}: cannot sign: {exc}") from None
    return body, {"Content-Type": content_type, **headers}


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.read()


def run(request: SendRequest) -> int:
    body, headers = signed_request(request)
    try:
        status, answer = asyncio.run(post(request.url, body, headers))
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"hookgate: cannot POST to {request.url}: {exc}", file=sys.stderr)
        return 1
    print(status, answer.decode("utf-8", "replace"))
    return 0 if 200 <= status < 300 else 1


def read_body(path: str | None) -> bytes | None:
    if path is None:
        return None
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
