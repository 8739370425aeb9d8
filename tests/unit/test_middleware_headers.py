"""The headers middleware: forward request headers, remove some, add fixed ones."""

import datetime as dt
import uuid
from typing import Any

import pytest
import yaml

from gateway.plugin import Headers, Message, Outcome, Section, SendResult
from plugins.middleware.headers import HeaderOptions, HeaderRewriter, is_identity_header, plugin

PATH = "targets.crm.middleware[1]"
IDENTITY: Headers = (
    ("User-Agent", "hookgate/0.1"),
    ("X-Hookgate-Event-Id", "e1"),
    ("X-Hookgate-Delivery-Id", "d1"),
    ("X-Hookgate-Attempt", "1"),
    ("X-Hookgate-Source", "github"),
    ("Idempotency-Key", "d1"),
)
OUTGOING: Headers = (
    ("Content-Type", "application/json"),
    ("X-Forwarded-For", "10.0.0.1"),
    *IDENTITY,
)
REQUEST: Headers = (
    ("Host", "hooks.example.com"),
    ("Content-Type", "application/json; charset=utf-8"),
    ("Content-Length", "2"),
    ("User-Agent", "GitHub-Hookshot/abc"),
    ("X-GitHub-Event", "push"),
    ("X-GitHub-Delivery", "72d3162e"),
    ("X-GitHub-Hook-ID", "42"),
    ("X-Hookgate-Source", "spoofed"),
    ("Idempotency-Key", "spoofed"),
    ("X-Tag", "a"),
    ("x-tag", "b"),
)


class Recorder:
    """Stands in for the next middleware: keeps what it was given, answers 2xx."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> SendResult:
        self.messages.append(message)
        return SendResult(Outcome.HTTP_2XX, status=200)


def message() -> Message:
    now = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    return Message(
        event_id=uuid.uuid4(),
        delivery_id=uuid.uuid4(),
        attempt=1,
        source="github",
        target="crm",
        event_type="push",
        received_at=now,
        now=now,
        body=b"{}",
        headers=OUTGOING,
        request_headers=REQUEST,
    )


def options(config: str) -> HeaderOptions:
    problems: list[str] = []
    parsed = plugin.parse(Section(yaml.safe_load(config), PATH, problems))
    assert problems == []
    assert isinstance(parsed, HeaderOptions)
    return parsed


def problems_of(config: Any) -> list[str]:
    problems: list[str] = []
    plugin.parse(Section(yaml.safe_load(config), PATH, problems))
    return problems


async def sent_headers(config: str) -> Headers:
    recorder = Recorder()
    result = await HeaderRewriter(options(config))(message(), recorder)
    assert result.outcome is Outcome.HTTP_2XX
    [sent] = recorder.messages
    assert sent.body == b"{}"
    return sent.headers


def test_plugin_is_the_headers_middleware() -> None:
    assert (plugin.kind, plugin.name) == ("middleware", "headers")


async def test_add_sets_static_values_replacing_same_name() -> None:
    headers = await sent_headers("add: {X-Team: payments, content-type: text/plain, X-Version: 2}")
    assert headers == (
        ("X-Forwarded-For", "10.0.0.1"),
        *IDENTITY,
        ("X-Team", "payments"),
        ("content-type", "text/plain"),
        ("X-Version", "2"),
    )


@pytest.mark.parametrize(
    ("remove", "gone"),
    [
        (["X-Forwarded-For"], {"x-forwarded-for"}),
        (["x-forwarded-*"], {"x-forwarded-for"}),  # globs
        (["CONTENT-TYPE"], {"content-type"}),  # case-insensitive
        (["User-Agent"], {"user-agent"}),  # not an identity header: may go
        (["x-nothing-*"], set()),
    ],
)
async def test_remove_drops_matching_headers(remove: list[str], gone: set[str]) -> None:
    headers = await sent_headers(yaml.safe_dump({"remove": remove}))
    assert [h for h in OUTGOING if h[0].lower() not in gone] == list(headers)


@pytest.mark.parametrize(
    ("forward", "copied"),
    [
        (["X-GitHub-Event"], [("X-GitHub-Event", "push")]),
        (
            ["x-github-*"],
            [
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e"),
                ("X-GitHub-Hook-ID", "42"),
            ],
        ),
        (["X-Tag"], [("X-Tag", "a"), ("x-tag", "b")]),  # every value of the header
        (
            ["*"],
            [
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e"),
                ("X-GitHub-Hook-ID", "42"),
                ("X-Tag", "a"),
                ("x-tag", "b"),
            ],
        ),
    ],
)
async def test_forward_copies_request_headers(
    forward: list[str], copied: list[tuple[str, str]]
) -> None:
    headers = await sent_headers(yaml.safe_dump({"forward": forward}))
    added = [h for h in headers if h not in OUTGOING]
    # "*" also copies Content-Type, replacing the outgoing one; never Host, User-Agent or identity.
    if forward == ["*"]:
        copied = [("Content-Type", "application/json; charset=utf-8"), *copied]
    assert added == copied


async def test_forward_never_copies_identity_or_hop_by_hop_headers() -> None:
    headers = await sent_headers("forward: ['*']")
    values = dict((name.lower(), value) for name, value in headers)
    assert values["x-hookgate-source"] == "github"
    assert values["idempotency-key"] == "d1"
    assert values["user-agent"] == "hookgate/0.1"
    assert "host" not in values and "content-length" not in values


async def test_forward_then_remove_then_add() -> None:
    headers = await sent_headers(
        "forward: [X-GitHub-*]\nremove: [x-github-hook-id]\nadd: {X-GitHub-Event: replaced}"
    )
    github = [h for h in headers if h[0].lower().startswith("x-github-")]
    assert github == [("X-GitHub-Delivery", "72d3162e"), ("X-GitHub-Event", "replaced")]


async def test_remove_never_touches_identity_headers_even_with_a_broad_glob() -> None:
    # A glob the config check cannot foresee still leaves future X-Hookgate-* headers alone.
    rewriter = HeaderRewriter(HeaderOptions(remove=("*",)))
    recorder = Recorder()
    await rewriter(message(), recorder)
    assert [h for h in recorder.messages[0].headers] == [
        h for h in IDENTITY if h[0] != "User-Agent"
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("X-Hookgate-Event-Id", True),
        ("x-hookgate-anything", True),
        ("IDEMPOTENCY-KEY", True),
        ("User-Agent", False),
        ("X-Hookgate", False),
    ],
)
def test_identity_headers(name: str, expected: bool) -> None:
    assert is_identity_header(name) is expected


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            "add: {X-Hookgate-Source: me}",
            f"{PATH}.add.X-Hookgate-Source: is one of hookgate's identity headers and cannot be changed",
        ),
        (
            "add: {Idempotency-Key: abc}",
            f"{PATH}.add.Idempotency-Key: is one of hookgate's identity headers and cannot be changed",
        ),
        (
            "add: {Host: example.com}",
            f"{PATH}.add.Host: is managed by the HTTP client and cannot be set",
        ),
        ("add: {'X Bad': 1}", f'{PATH}.add.X Bad: "X Bad" is not a valid header name'),
        (
            'add: {X-A: "a\\r\\nX-Evil: 1"}',
            f"{PATH}.add.X-A: a header value cannot hold line breaks or control characters",
        ),
        ("add: {X-A: [1]}", f"{PATH}.add.X-A: expected a string, got [1]"),
        ("add: {X-A: null}", f"{PATH}.add.X-A: is required"),
        ("add: [X-A]", f"{PATH}.add: expected a mapping, got ['X-A']"),
        (
            "remove: [X-Hookgate-Event-Id]",
            f'{PATH}.remove: "x-hookgate-event-id" would remove hookgate\'s identity headers',
        ),
        (
            "remove: [x-hookgate-*]",
            f'{PATH}.remove: "x-hookgate-*" would remove hookgate\'s identity headers',
        ),
        ("remove: ['*']", f'{PATH}.remove: "*" would remove hookgate\'s identity headers'),
        ("remove: ['X-*']", f'{PATH}.remove: "x-*" would remove hookgate\'s identity headers'),
        (
            "remove: ['idempotency-*']",
            f'{PATH}.remove: "idempotency-*" would remove hookgate\'s identity headers',
        ),
        ("remove: [1]", f"{PATH}.remove: expected a list of strings, got [1]"),
        ("forward: [Host]", f'{PATH}.forward: "host" is never forwarded: the sender controls it'),
        (
            "forward: [X-Hookgate-Source]",
            f'{PATH}.forward: "x-hookgate-source" is never forwarded: the sender controls it',
        ),
        ("forward: {a: b}", f"{PATH}.forward: expected a list of strings, got {{'a': 'b'}}"),
        ("{}", f"{PATH}: expected at least one of add, remove or forward"),
    ],
)
def test_config_errors_name_the_key_path(config: str, problem: str) -> None:
    assert problems_of(config) == [problem]


def test_single_string_lists_are_accepted() -> None:
    assert options("remove: X-Forwarded-For\nforward: X-GitHub-*") == HeaderOptions(
        remove=("x-forwarded-for",), forward=("x-github-*",)
    )
