"""The `transform` middleware: reshape the outgoing body and headers with Jinja2 templates.

    middleware:
      - type: transform
        body: '{"kind": {{ event.type | tojson }}, "amount": {{ event.data.object.amount }}}'
        content_type: application/json    # the default; with a JSON type the output must parse
        headers:
          X-Event-Kind: "{{ event.type }}"

Templates are compiled when the config is read and run in Jinja2's immutable sandbox
(no attributes starting with "_", no methods that change data), autoescape off, an
undefined name is an error, and `tojson` writes compact JSON. They see (write
`event.data["items"]` for keys that are also dict methods: items, keys, values, get):

    event    the body parsed as JSON, or None when it is not JSON
    body     the body as text (UTF-8, undecodable bytes replaced)
    headers  the original request headers: lowercased names, the first value of each
    meta     event_id, delivery_id, source, target, event_type, attempt, received_at

A header template replaces the header of that name; one that renders empty removes it.
Any failure at send time (an undefined name, a refused attribute, a type error, output
over 1 MiB, a JSON content type whose output does not parse, a line break in a header)
ends the delivery without calling the target, as TRANSFORM_ERROR (permanent) with an error that
starts "transform failed:", so the relay marks it dead. List `transform` before a
signing middleware: the signature must cover the new body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gateway.plugin import (
    Headers,
    Message,
    Middleware,
    Outcome,
    Resources,
    Section,
    Send,
    SendResult,
    header_value_problem,
    settable_header_problem,
    show,
)

MAX_OUTPUT = 1024 * 1024
_JSON_TYPE = re.compile(r"application/(?:[\w.-]+\+)?json", re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+(?:\s*;[^\r\n]*)?")


class TransformError(Exception):
    """The transform failed for this message."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Also refuses `*` and `**` that would build a huge value before any output is seen."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 1000:
            raise SecurityError("exponent too large")
        if operator == "*" and _repeated_size(left, right) > MAX_OUTPUT:
            raise SecurityError("repeated value too large")
        return super().call_binop(context, operator, left, right)


def _repeated_size(left: Any, right: Any) -> int:
    for items, times in ((left, right), (right, left)):
        if isinstance(items, str | list | tuple) and isinstance(times, int):
            return len(items) * times
    return 0


def _tojson(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_not_serializable).decode()
    except TypeError as exc:
        # orjson wraps what `default` raised; the cause names the undefined variable.
        raise exc.__cause__ or exc from None


def _not_serializable(value: Any) -> Any:
    if isinstance(value, Undefined):
        str(value)  # a StrictUndefined raises UndefinedError naming what was undefined
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENV = _Sandbox(autoescape=False, undefined=StrictUndefined)
_ENV.filters["tojson"] = _tojson


@dataclass(frozen=True, slots=True)
class TransformOptions:
    body: Template | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, Template], ...] = ()


class Transformer:
    """Renders the templates for each message; a failure never reaches the target."""

    def __init__(self, options: TransformOptions) -> None:
        self.options = options

    async def __call__(self, message: Message, call_next: Send) -> SendResult:
        try:
            changed = self.transform(message)
        except TransformError as exc:
            return SendResult(Outcome.TRANSFORM_ERROR, error=f"transform failed: {exc}")
        return await call_next(changed)

    def transform(self, message: Message) -> Message:
        """The message with its new body and headers; raises TransformError."""
        context = template_context(message)
        headers = [(name, _header(name, t, context)) for name, t in self.options.headers]
        if self.options.body is None:
            return replace(message, headers=_set(message.headers, headers))
        body = self._body(self.options.body, context)
        headers.append(("Content-Type", self.options.content_type))
        headers.append(("Content-Encoding", ""))  # the new body is not the provider's encoding
        return replace(message, body=body, headers=_set(message.headers, headers))

    def _body(self, template: Template, context: dict[str, Any]) -> bytes:
        body = _render("body", template, context)
        if _JSON_TYPE.fullmatch(self.options.content_type.partition(";")[0].strip()):
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise TransformError(f"body: the output is not valid JSON ({exc})") from None
        return body


def template_context(message: Message) -> dict[str, Any]:
    """What the templates see for `message`."""
    first: dict[str, str] = {}
    for name, value in message.request_headers:
        first.setdefault(name.lower(), value)
    return {
        "event": _parsed(message.body),
        "body": message.body.decode("utf-8", "replace"),
        "headers": first,
        "meta": {
            "event_id": str(message.event_id),
            "delivery_id": str(message.delivery_id),
            "source": message.source,
            "target": message.target,
            "event_type": message.event_type,
            "attempt": message.attempt,
            "received_at": message.received_at.isoformat(),
        },
    }


def _parsed(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _render(where: str, template: Template, context: dict[str, Any]) -> bytes:
    """The output, streamed so that a runaway loop stops at MAX_OUTPUT."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in template.generate(context):
            chunks.append(chunk.encode())
            size += len(chunks[-1])
            if size > MAX_OUTPUT:
                raise TransformError(f"{where}: the output is larger than {MAX_OUTPUT} bytes")
    except TransformError:
        raise
    except Exception as exc:
        # A template can raise whatever Python can; each one is this message failing.
        raise TransformError(f"{where}: {type(exc).__name__}: {exc}") from None
    return b"".join(chunks)


def _header(name: str, template: Template, context: dict[str, Any]) -> str:
    value = _render(f"headers.{name}", template, context).decode().strip()
    if problem := header_value_problem(value):
        raise TransformError(f"headers.{name}: {problem}")
    return value


def _set(headers: Headers, new: list[tuple[str, str]]) -> Headers:
    """Replace the named headers; one rendered empty is only removed."""
    names = {name.lower() for name, _ in new}
    kept = tuple(h for h in headers if h[0].lower() not in names)
    return kept + tuple((name, value) for name, value in new if value)


class TransformPlugin:
    kind: Literal["middleware"] = "middleware"
    name = "transform"

    def parse(self, section: Section) -> TransformOptions:
        has_body = "body" in section
        body = _compile(section, "body", section.text("body", None))
        content_type: str = section.text("content_type", "application/json")
        if not _MEDIA_TYPE.fullmatch(content_type):
            section.fail(
                f"expected a media type like application/json, got {show(content_type)}",
                "content_type",
            )
        elif "content_type" in section and not has_body:
            section.fail("is only used with body", "content_type")
        headers = _header_templates(section.section("headers"), has_body)
        if not has_body and "headers" not in section:
            section.fail("expected body, headers or both")
        return TransformOptions(body, content_type, headers)

    def create(self, options: Any, resources: Resources) -> Middleware:
        return Transformer(options)


def _header_templates(section: Section, body_set: bool) -> tuple[tuple[str, Template], ...]:
    templates = []
    for name, _ in section.items():
        template = _compile(section, name, section.text(name))
        problem = settable_header_problem(name)
        if body_set and name.lower() == "content-type":
            problem = "is set by content_type when there is a body"
        if problem:
            section.fail(problem, name)
        elif template is not None:
            templates.append((name, template))
    return tuple(templates)


def _compile(section: Section, key: str, source: str | None) -> Template | None:
    if source is None:
        return None
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        section.fail(f"template error on line {exc.lineno}: {exc.message}", key)
        return None


plugin = TransformPlugin()
