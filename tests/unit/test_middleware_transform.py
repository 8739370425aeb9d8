"""The transform middleware: sandboxed Jinja2 templates reshape the outgoing body and headers."""

import datetime as dt
import uuid
from typing import Any

import orjson
import pytest
import yaml

from gateway.plugin import Message, Outcome, Section, SendResult
from plugins.middleware.transform import MAX_OUTPUT, Transformer, TransformOptions, plugin

PATH = "targets.crm.middleware[0]"
EVENT_ID = uuid.UUID("00000000-0000-0000-0000-0000000000e1")
DELIVERY_ID = uuid.UUID("00000000-0000-0000-0000-0000000000d1")
RECEIVED = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
INVOICE = {
    "type": "invoice.paid",
    "data": {"object": {"amount": 1500, "currency": "usd", "items": [1, 2]}},
}


class Recorder:
    """Stands in for the next middleware: keeps what it was given, answers 2xx."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> SendResult:
        self.messages.append(message)
        return SendResult(Outcome.HTTP_2XX, status=200)


def message(body: bytes = orjson.dumps(INVOICE), **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "event_id": EVENT_ID,
        "delivery_id": DELIVERY_ID,
        "attempt": 2,
        "source": "stripe",
        "target": "crm",
        "event_type": "invoice.paid",
        "received_at": RECEIVED,
        "now": RECEIVED + dt.timedelta(minutes=5),
        "body": body,
        "headers": (
            ("Content-Type", "application/json"),
            ("X-Hookgate-Event-Id", str(EVENT_ID)),
            ("Idempotency-Key", str(DELIVERY_ID)),
        ),
        "request_headers": (
            ("Content-Type", "application/json"),
            ("Stripe-Signature", "t=1,v1=abc"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
        ),
    }
    return Message(**(fields | changes))


def options(config: str) -> TransformOptions:
    problems: list[str] = []
    parsed = plugin.parse(Section(yaml.safe_load(config), PATH, problems))
    assert problems == []
    assert isinstance(parsed, TransformOptions)
    return parsed


def problems_of(config: str) -> list[str]:
    problems: list[str] = []
    plugin.parse(Section(yaml.safe_load(config), PATH, problems))
    return problems


async def run(config: str, msg: Message | None = None) -> tuple[SendResult, Recorder]:
    recorder = Recorder()
    middleware = Transformer(options(config))
    result = await middleware(msg or message(), recorder)
    return result, recorder


async def transformed(config: str, msg: Message | None = None) -> Message:
    result, recorder = await run(config, msg)
    assert result.outcome is Outcome.HTTP_2XX, result.error
    [sent] = recorder.messages
    return sent


async def failure(config: str, msg: Message | None = None) -> str:
    result, recorder = await run(config, msg)
    assert recorder.messages == []  # the next middleware is never called
    assert result.outcome is Outcome.TRANSFORM_ERROR
    assert result.error is not None and result.error.startswith("transform failed: ")
    return result.error.removeprefix("transform failed: ")


def test_plugin_is_the_transform_middleware() -> None:
    assert (plugin.kind, plugin.name) == ("middleware", "transform")


async def test_body_is_rendered_from_the_event() -> None:
    sent = await transformed(
        """body: '{"kind": {{ event.type | tojson }}, "amount": {{ event.data.object.amount }}}'"""
    )
    assert orjson.loads(sent.body) == {"kind": "invoice.paid", "amount": 1500}
    assert ("Content-Type", "application/json") in sent.headers


async def test_tojson_is_compact_and_not_html_escaped() -> None:
    msg = message(orjson.dumps({"o": {"a": [1, "<b>&'"]}}))
    sent = await transformed("body: '{{ event.o | tojson }}'", msg)
    assert sent.body == b'{"a":[1,"<b>&\'"]}'


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ meta.event_id }}", str(EVENT_ID)),
        ("{{ meta.delivery_id }}", str(DELIVERY_ID)),
        ("{{ meta.source }}/{{ meta.target }}", "stripe/crm"),
        ("{{ meta.event_type }}", "invoice.paid"),
        ("{{ meta.attempt + 1 }}", "3"),
        ("{{ meta.received_at }}", "2024-05-01T12:00:00+00:00"),
        ("{{ headers['stripe-signature'] }}", "t=1,v1=abc"),  # lowercased names
        ("{{ headers['x-multi'] }}", "one"),  # the first value
        ("{{ body | length }}", str(len(orjson.dumps(INVOICE)))),
        ('{{ event.data.object["items"] | sum }}', "3"),  # a key that is also a dict method
        ("{{ event.data.object.items is callable }}", "True"),
    ],
)
async def test_template_context(template: str, expected: str) -> None:
    config = yaml.safe_dump({"content_type": "text/plain", "body": template})
    sent = await transformed(config)
    assert sent.body.decode() == expected
    assert ("Content-Type", "text/plain") in sent.headers


async def test_event_is_none_and_body_is_text_when_the_body_is_not_json() -> None:
    config = "content_type: text/plain\nbody: '{{ event is none }} {{ body }}'"
    sent = await transformed(config, message(b"caf\xc3\xa9 \xff"))
    assert sent.body.decode() == "True café \ufffd"


async def test_headers_are_rendered_and_replace_those_of_the_same_name() -> None:
    msg = message(headers=(("X-Kind", "old"), ("X-Keep", "1"), ("X-Drop", "2")))
    config = "headers: {x-kind: '{{ event.type }}', X-Drop: '{% if false %}x{% endif %}', X-New: ' {{ meta.attempt }} '}"
    sent = await transformed(config, msg)
    assert sent.headers == (("X-Keep", "1"), ("x-kind", "invoice.paid"), ("X-New", "2"))
    assert sent.body == msg.body  # no body template: the body is untouched


async def test_content_type_follows_the_option_and_replaces_the_original() -> None:
    config = "content_type: application/cloudevents+json; charset=utf-8\nbody: '{\"a\": 1}'"
    sent = await transformed(config)
    types = [value for name, value in sent.headers if name.lower() == "content-type"]
    assert types == ["application/cloudevents+json; charset=utf-8"]


async def test_non_json_content_type_skips_the_json_check() -> None:
    sent = await transformed(
        "content_type: text/plain\nbody: 'amount={{ event.data.object.amount }}'"
    )
    assert sent.body == b"amount=1500"


async def test_identity_headers_are_kept() -> None:
    sent = await transformed("body: '{}'")
    assert ("X-Hookgate-Event-Id", str(EVENT_ID)) in sent.headers
    assert ("Idempotency-Key", str(DELIVERY_ID)) in sent.headers


# Send-time failures: a dead delivery with the reason, the target never called.


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (
            "{{ ''.__class__.__mro__ }}",
            "body: SecurityError: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ event.__class__ }}",
            "body: SecurityError: access to attribute '__class__' of 'dict' object is unsafe.",
        ),
        (
            "{{ meta.attempt.__class__.__subclasses__() }}",
            "body: SecurityError: access to attribute '__class__' of 'int' object is unsafe.",
        ),
        (
            "{{ event.clear() }}",
            "body: SecurityError: access to attribute 'clear' of 'dict' object is unsafe.",
        ),
        (
            "{{ event.data.update({'a': 1}) }}",
            "body: SecurityError: access to attribute 'update' of 'dict' object is unsafe.",
        ),
        (
            "{{ cycler.__init__.__globals__ }}",
            "body: SecurityError: access to attribute '__init__' of 'type' object is unsafe.",
        ),
        ("{{ event.nope }}", "body: UndefinedError: 'dict object' has no attribute 'nope'"),
        ("{{ nothing }}", "body: UndefinedError: 'nothing' is undefined"),
        (
            "{{ event.nope | tojson }}",
            "body: UndefinedError: 'dict object' has no attribute 'nope'",
        ),
        ("{{ event.type + 1 }}", 'body: TypeError: can only concatenate str (not "int") to str'),
        ("{{ 1 / 0 }}", "body: ZeroDivisionError: division by zero"),
        ("{{ 'x' * 2000000 }}", "body: SecurityError: repeated value too large"),
        ("{{ 10 ** 100000 }}", "body: SecurityError: exponent too large"),
        ("{{ cycler | tojson }}", "body: TypeError: type is not JSON serializable"),
    ],
)
async def test_render_errors_end_the_delivery(template: str, reason: str) -> None:
    assert await failure(yaml.safe_dump({"content_type": "text/plain", "body": template})) == reason


async def test_sandbox_escape_output_is_never_sent() -> None:
    result, recorder = await run(
        "content_type: text/plain\nbody: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\""
    )
    assert recorder.messages == []
    assert (
        result.error
        == "transform failed: body: SecurityError: access to attribute '__class__' of 'str' object is unsafe."
    )
    assert "<class" not in result.error


async def test_invalid_json_output_ends_the_delivery() -> None:
    reason = await failure(
        """body: '{"amount": {{ event.data.object.missing_ok | default(None) }}}'"""
    )
    assert reason.startswith("body: the output is not valid JSON (")


async def test_output_over_the_limit_ends_the_delivery() -> None:
    config = "content_type: text/plain\nbody: '{% for i in range(100000) %}{{ body }}{% endfor %}'"
    msg = message(b"x" * 100)
    assert await failure(config, msg) == f"body: the output is larger than {MAX_OUTPUT} bytes"


async def test_output_just_under_the_limit_is_sent() -> None:
    config = "content_type: text/plain\nbody: '{% for i in range(1024) %}{{ body }}{% endfor %}'"
    sent = await transformed(config, message(b"y" * 1024))
    assert len(sent.body) == MAX_OUTPUT


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (
            "headers: {X-Kind: '{{ event.nope }}'}",
            "headers.X-Kind: UndefinedError: 'dict object' has no attribute 'nope'",
        ),
        (
            "headers: {X-Kind: \"a{{ '\\n' }}b\"}",
            "headers.X-Kind: a header value cannot hold line breaks or control characters",
        ),
        (
            "headers: {X-Kind: \"a{{ '\\r\\nX-Evil: 1' }}\"}",
            "headers.X-Kind: a header value cannot hold line breaks or control characters",
        ),
    ],
)
async def test_header_render_errors_end_the_delivery(config: str, reason: str) -> None:
    assert await failure(config) == reason


# Config errors, with key paths.


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            "body: '{{ event.type '",
            f"{PATH}.body: template error on line 1: unexpected end of template, expected 'end of print statement'.",
        ),
        (
            "body: '{% for x in y %}'",
            f"{PATH}.body: template error on line 1: Unexpected end of template. Jinja was looking for the following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'.",
        ),
        (
            "body: '{{ x | nosuchfilter }}'",
            f"{PATH}.body: template error on line 1: No filter named 'nosuchfilter'.",
        ),
        (
            "headers: {X-A: '{{ ) }}'}",
            f"{PATH}.headers.X-A: template error on line 1: unexpected ')'",
        ),
        (
            "headers: {X-Hookgate-Source: x}",
            f"{PATH}.headers.X-Hookgate-Source: is one of hookgate's identity headers and cannot be changed",
        ),
        (
            "headers: {idempotency-key: x}",
            f"{PATH}.headers.idempotency-key: is one of hookgate's identity headers and cannot be changed",
        ),
        (
            "headers: {Content-Length: '1'}",
            f"{PATH}.headers.Content-Length: is managed by the HTTP client and cannot be set",
        ),
        (
            "headers: {'Bad Name': x}",
            f'{PATH}.headers.Bad Name: "Bad Name" is not a valid header name',
        ),
        (
            "body: '{}'\nheaders: {content-type: text/plain}",
            f"{PATH}.headers.content-type: is set by content_type when there is a body",
        ),
        (
            "body: '{}'\ncontent_type: json",
            f'{PATH}.content_type: expected a media type like application/json, got "json"',
        ),
        (
            "headers: {X-A: x}\ncontent_type: text/plain",
            f"{PATH}.content_type: is only used with body",
        ),
        ("body: [1]", f"{PATH}.body: expected a string, got [1]"),
        ("headers: [X-A]", f"{PATH}.headers: expected a mapping, got ['X-A']"),
        ("{}", f"{PATH}: expected body, headers or both"),
    ],
)
def test_config_errors_name_the_key_path(config: str, problem: str) -> None:
    assert problems_of(config) == [problem]


def test_headers_only_with_content_type_header_is_allowed() -> None:
    parsed = options("headers: {Content-Type: 'text/plain'}")
    assert parsed.body is None
    assert [name for name, _ in parsed.headers] == ["Content-Type"]


async def test_a_template_that_looks_like_the_data_is_not_evaluated_twice() -> None:
    # Data is inserted, never compiled: a payload holding template syntax stays text.
    msg = message(orjson.dumps({"type": "{{ ''.__class__ }}"}))
    sent = await transformed("body: '{{ event.type | tojson }}'", msg)
    assert sent.body == b"\"{{ ''.__class__ }}\""
