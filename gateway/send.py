"""`hookgate send`: sign a sample webhook as a provider would, and POST it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.clock import SystemClock
from gateway.contract.verify import PRIVATE_KEY_ONLY, pinned_sample_id, sample_id
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
    event_id: str | None = None  # pin the sample's id (body and id headers): a duplicate


def signed_request(request: SendRequest) -> tuple[bytes, dict[str, str]]:
    """The body and headers the provider `request.type` would send to `request.url`.

    The provider's sample body gets a fresh id (or `request.event_id`) where its default
    dedupe key and a top-level ``id`` live, and the plugin's id headers take the same, so
    two samples are two events unless an id is pinned.
    """
    registry = load_registry()
    plugin = registry.verifier(request.type)
    if plugin is None:
        known = ", ".join(registry.names("verifier"))
        raise HookgateError(f"unknown verifier type {request.type!r} (installed: {known})")
    if getattr(plugin, "sign", False) is None:  # known before any option is checked
        raise HookgateError(f"{request.type}: cannot sign: {PRIVATE_KEY_ONLY}")
    problems: list[str] = []
    section = Section(request.options, "verify", problems)
    options = plugin.parse(section)
    section.done()  # a mistyped -o option must not pass silently
    if problems:
        raise ConfigError(problems)
    with pinned_sample_id(request.event_id):
        return _signed(request, plugin, options)


def _signed(request: SendRequest, plugin: Any, options: Any) -> tuple[bytes, dict[str, str]]:
    now = SystemClock().now()
    body = request.body
    if body is None:
        sample: bytes = getattr(plugin, "sample_body", b"{}")
        body = fresh_sample(sample, getattr(plugin, "default_dedupe", None), sample_id())
    sample_type: str = getattr(plugin, "sample_content_type", "application/json")
    prepare = getattr(plugin, "prepare", None)
    if prepare is not None:
        body = prepare(options, body, now)
    try:
        headers = plugin.create(options, None).sign(body, request.url, now)
    except NotImplementedError as exc:
        raise HookgateError(f"{request.type}: cannot sign: {exc}") from None
    return body, {"Content-Type": request.content_type or sample_type, **headers}


def fresh_sample(body: bytes, dedupe: str | None, event_id: str) -> bytes:
    """A JSON object `body` with `event_id` at the dedupe key's path and at ``id``."""
    try:
        document = json.loads(body)
    except ValueError:
        return body  # a form or text sample: its ids travel in headers
    if not isinstance(document, dict):
        return body
    paths = [["id"]] if "id" in document else []
    if dedupe and dedupe.startswith("json:"):
        paths.append(dedupe.removeprefix("json:").split("."))
    for path in paths:
        _put(document, path, event_id)
    return json.dumps(document).encode()


def _put(document: dict[str, Any], path: list[str], value: str) -> None:
    for key in path[:-1]:
        inner = document.get(key)
        if not isinstance(inner, dict):
            return
        document = inner
    old = document.get(path[-1])
    if isinstance(old, int) and not isinstance(old, bool):  # keep a numeric id numeric
        digest = hashlib.sha256(value.encode()).hexdigest()
        document[path[-1]] = int(value) if value.isdigit() else int(digest[:15], 16)
    else:
        document[path[-1]] = value


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
