"""Proxy mode: a verified request is stored, forwarded, and answered with the target's answer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import uuid

import orjson
import pytest
from conftest import GatewayTestServer, fetch, make_config
from structlog.testing import capture_logs

from gateway import keys
from gateway.app import create_app
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.ids import delivery_id
from gateway.ingress.proxy import passed_back
from gateway.plugin import Message, Outcome, Send, SendResult
from gateway.plugins import load_registry
from gateway.sources import ProxyConfig, ProxyFallback

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
COMMAND = b"command=%2Fweather&text=oslo&user_id=U2147483697"
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>Sunny</Message></Response>'


def slack(body: bytes, clock, secret: str = SECRET) -> dict[str, str]:
    """Headers Slack would send for `body` at the test clock's time."""
    stamp = str(int(clock.now().timestamp()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def proxy_config(database_url: str, target_url: str, proxy: str = "", top: str = ""):
    return make_config(
        database_url,
        f"""
{top}
sources:
  commands:
    verify: {{type: slack, secret: "{SECRET}"}}
    mode: proxy
    proxy: {{target: bot, {proxy}}}
targets:
  bot:
    url: "{target_url}"
    sign: {{type: standard-webhooks, secret: "{SIGNING}"}}
""",
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def test_the_provider_gets_the_targets_status_headers_and_body(
    database_url, target, gateway, clock
):
    bot = await target()
    bot.recorder.script.append((200, {"Content-Type": "application/xml", "X-Bot": "1"}, TWIML))
    client = await gateway(proxy_config(database_url, bot.url))
    response = await client.post("/in/commands", data=COMMAND, headers=slack(COMMAND, clock))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/xml"
    assert response.headers["X-Bot"] == "1"
    assert await response.read() == TWIML

    (event,) = await fetch(database_url, "SELECT id FROM hookgate.events")
    ((sent, body),) = bot.recorder.requests
    assert body == COMMAND
    assert sent["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["X-Hookgate-Event-Id"] == str(event["id"])
    assert sent["Idempotency-Key"] == str(delivery_id(event["id"], "bot"))
    assert sent["webhook-signature"].startswith("v1,")  # the target's sign: applies


async def test_a_4xx_or_5xx_answer_is_passed_through_not_replaced_by_the_fallback(
    database_url, target, gateway, clock
):
    bot = await target()
    bot.recorder.script += [(403, {}, b"not your channel"), (503, {"Retry-After": "9"}, b"busy")]
    fallback = 'fallback: {status: 200, body: "try later"}'
    client = await gateway(proxy_config(database_url, bot.url, fallback))
    refused = await client.post("/in/commands", data=COMMAND, headers=slack(COMMAND, clock))
    assert (refused.status, await refused.read()) == (403, b"not your channel")
    busy = await client.post("/in/commands", data=COMMAND, headers=slack(COMMAND, clock))
    assert (busy.status, busy.headers["Retry-After"], await busy.read()) == (503, "9", b"busy")


async def test_hookgates_own_credential_is_not_forwarded_but_stored_redacted(
    database_url, target, gateway
):
    bot = await target()
    bot.recorder.script = [(200, {}, b"ok")]
    config = make_config(
        database_url,
        f"""
sources:
  keyed:
    verify: {{type: api-key, secret: "gw-secret", header: X-API-Key}}
    mode: proxy
    proxy: {{target: bot}}
targets:
  bot: {{url: "{bot.url}", forward_headers: ["*"]}}
""",
    )
    client = await gateway(config)
    headers = {"X-API-Key": "gw-secret", "X-Other": "kept", "Authorization": "Bearer theirs"}
    answer = await client.post("/in/keyed", data=b"{}", headers=headers)
    assert (answer.status, await answer.read()) == (200, b"ok")
    ((sent, _),) = bot.recorder.requests
    assert "X-API-Key" not in sent  # hookgate's, checked: of no use to the target
    assert (sent["X-Other"], sent["Authorization"]) == ("kept", "Bearer theirs")  # as received
    (row,) = await fetch(database_url, "SELECT headers FROM hookgate.events")
    stored = dict(json.loads(row["headers"]))
    assert (stored["X-API-Key"], stored["Authorization"]) == ("[redacted]", "Bearer [redacted]")


async def test_a_forged_request_is_401_and_never_forwarded(database_url, target, gateway, clock):
    bot = await target()
    client = await gateway(proxy_config(database_url, bot.url))
    forged = slack(COMMAND, clock, secret="not the secret")
    response = await client.post("/in/commands", data=COMMAND, headers=forged)
    assert response.status == 401
    assert bot.recorder.requests == []
    assert await fetch(database_url, "SELECT 1 FROM hookgate.events") == []


async def test_a_handshake_is_answered_by_the_verifier_and_never_forwarded(
    database_url, target, gateway, clock
):
    bot = await target()
    client = await gateway(proxy_config(database_url, bot.url))
    body = b'{"type": "url_verification", "challenge": "c-123"}'
    response = await client.post("/in/commands", data=body, headers=slack(body, clock))
    assert response.status == 200
    assert "c-123" in await response.text()
    assert bot.recorder.requests == []


async def test_the_request_and_the_targets_answer_are_stored_and_never_relayed(
    database_url, target, gateway, clock
):
    bot = await target()
    bot.recorder.script.append((200, {"Content-Type": "application/xml"}, TWIML))
    client = await gateway(proxy_config(database_url, bot.url))
    response = await client.post("/in/commands", data=COMMAND, headers=slack(COMMAND, clock))
    assert response.status == 200
    (event,) = await fetch(database_url, "SELECT source, body, routes FROM hookgate.events")
    assert (event["source"], event["body"]) == ("commands", COMMAND)
    assert json.loads(event["routes"]) == {"verified_by": "slack"}  # nothing routed
    query = (
        "SELECT d.target, d.status, a.outcome, a.status_code, a.response_body"
        " FROM hookgate.deliveries d JOIN hookgate.attempts a ON a.delivery_id = d.id"
    )
    for _ in range(100):  # the answer is written in the background, after the response
        rows = await fetch(database_url, query)
        if rows:
            break
        await asyncio.sleep(0.02)
    assert [tuple(r) for r in rows] == [("bot", "delivered", "HTTP_2XX", 200, TWIML)]
    relay = client.app[keys.RELAY]
    assert await relay.run_once() == 0  # nothing for the relay to claim, now or later
    await relay.drain()
    assert len(bot.recorder.requests) == 1


async def test_the_targets_answer_is_on_the_request_log_line(database_url, target, gateway, clock):
    bot = await target()
    bot.recorder.script.append((201, {"Content-Type": "application/json"}, b'{"ok": true}'))
    client = await gateway(proxy_config(database_url, bot.url))
    with capture_logs() as logs:
        await client.post("/in/commands", data=COMMAND, headers=slack(COMMAND, clock))
    (line,) = [entry for entry in logs if entry["event"] == "request_handled"]
    assert line["status"] == 201
    assert (line["proxy_target"], line["proxy_outcome"], line["proxy_answer"]) == (
        "bot",
        "HTTP_2XX",
        "target",
    )
    assert (line["proxy_status"], line["proxy_bytes"], line["proxy_error"]) == (201, 12, None)
    assert line["proxy_headers"] == {"content-type": "application/json"}
    assert uuid.UUID(line["event_id"])


MARK = "Sekr1tMarker"  # in the command a crashing middleware quotes: never in a log line


class Crashing:
    """A middleware plugin with a bug: it raises, quoting the request it was handed."""

    kind = "middleware"
    name = "crashing"

    def parse(self, section):
        return None

    def create(self, options, resources):
        return self

    async def __call__(self, message: Message, call_next: Send) -> SendResult:
        raise RuntimeError(f"cannot read {message.body!r}")


async def test_a_crashing_forward_is_logged_by_type_and_place_never_by_its_message(
    database_url, target, aiohttp_client, clock, capsys
):
    bot = await target()
    registry = load_registry()
    registry.add(Crashing())
    text = f"""
database: {{url: '{database_url}'}}
sources:
  commands:
    verify: {{type: slack, secret: "{SECRET}"}}
    mode: proxy
    proxy: {{target: bot, fallback: {{body: "Busy"}}}}
targets:
  bot: {{url: "{bot.url}", middleware: [{{type: crashing}}]}}
"""
    config = parse_config(text, registry, env={})
    app = create_app(config, clock=clock, registry=registry)
    client = await aiohttp_client(GatewayTestServer(app))
    command = COMMAND + f"&token={MARK}".encode()
    with capture_logs() as logs:
        answer = await client.post("/in/commands", data=command, headers=slack(command, clock))
    assert (answer.status, await answer.text()) == (200, "Busy")  # the provider's answer
    (crashed,) = [e for e in logs if e["event"] == "proxy_forward_crashed"]
    assert (crashed["log_level"], crashed["target"]) == ("error", "bot")
    assert crashed["error"] == "builtins.RuntimeError"
    assert crashed["frames"][-1].endswith(" in __call__")  # the middleware's place
    assert "exc_info" not in crashed  # no rendered traceback: it would carry the message
    (line,) = [e for e in logs if e["event"] == "request_handled"]
    assert line["proxy_error"] == "the forward crashed: builtins.RuntimeError"
    assert MARK not in repr(logs)
    capsys.readouterr()
    await client.post("/in/commands", data=command, headers=slack(command, clock))
    rendered = capsys.readouterr()  # what the renderer wrote of it
    assert "proxy_forward_crashed" in rendered.out + rendered.err
    assert MARK not in rendered.out + rendered.err
    assert bot.recorder.requests == []
    stored: list = []
    for _ in range(100):  # the attempt is written in the background
        stored = await fetch(database_url, "SELECT error FROM hookgate.attempts")
        if len(stored) == 2:
            break
        await asyncio.sleep(0.02)
    assert [row["error"] for row in stored] == ["the forward crashed: builtins.RuntimeError"] * 2


async def test_a_slow_target_gets_the_fallback(database_url, target, gateway, clock):
    bot = await target()
    bot.recorder.hold = asyncio.Event()  # never set while the provider waits
    fallback = 'timeout: 500ms, fallback: {status: 200, body: "<Response/>", content_type: application/xml}'
    client = await gateway(proxy_config(database_url, bot.url, fallback))
    try:  # the target never answers; the 500 ms timeout is the only real wait here
        response = await client.post("/in/commands", data=COMMAND, headers=slack(COMMAND, clock))
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/xml"
        assert await response.read() == b"<Response/>"
        assert len(bot.recorder.requests) == 1
    finally:
        bot.recorder.hold.set()


async def test_an_unreachable_target_gets_the_fallback_or_else_a_502(database_url, gateway, clock):
    config = make_config(
        database_url,
        f"""
sources:
  with-fallback:
    verify: {{type: slack, secret: "{SECRET}"}}
    mode: proxy
    proxy: {{target: down, fallback: {{status: 200, body: "Sorry, try again"}}}}
  bare:
    verify: {{type: slack, secret: "{SECRET}"}}
    mode: proxy
    proxy: {{target: down}}
targets:
  down: {{url: "{closed_port_url()}"}}
""",
    )
    client = await gateway(config)
    with capture_logs() as logs:
        answered = await client.post(
            "/in/with-fallback", data=COMMAND, headers=slack(COMMAND, clock)
        )
        failed = await client.post("/in/bare", data=COMMAND, headers=slack(COMMAND, clock))
    assert (answered.status, await answered.text()) == (200, "Sorry, try again")
    assert answered.headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = [entry for entry in logs if entry["event"] == "request_handled"]
    assert [(line["proxy_outcome"], line["proxy_answer"]) for line in lines] == [
        ("CONNECT_ERROR", "fallback"),
        ("CONNECT_ERROR", "502"),
    ]
    assert all(line["proxy_status"] is None and line["proxy_error"] for line in lines)
    assert failed.status == 502
    reply = orjson.loads(await failed.read())
    assert reply["error"] == "the target did not answer"
    stored = await fetch(database_url, "SELECT id FROM hookgate.events WHERE source = 'bare'")
    assert [str(row["id"]) for row in stored] == [reply["id"]]


async def test_an_answer_over_max_body_gets_the_fallback_not_a_truncated_answer(
    database_url, target, gateway, clock
):
    bot = await target()
    bot.recorder.script.append((200, {}, b"x" * 2048))
    config = proxy_config(
        database_url, bot.url, 'fallback: {body: "too much"}', top="server: {max_body: 1KiB}"
    )
    client = await gateway(config)
    response = await client.post("/in/commands", data=COMMAND, headers=slack(COMMAND, clock))
    assert (response.status, await response.text()) == (200, "too much")


def test_hop_by_hop_headers_are_not_passed_back_and_repeated_ones_are():
    result = SendResult(
        Outcome.HTTP_2XX,
        status=200,
        headers=(
            ("Connection", "close, X-Hop"),
            ("X-Hop", "internal"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "2"),
            ("Server", "billing/1.0"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Content-Type", "text/xml"),
        ),
    )
    assert list(passed_back(result).items()) == [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Type", "text/xml"),
    ]


def test_a_proxy_source_parses_with_defaults():
    config = parse_config(
        "sources: {s: {mode: proxy, proxy: {target: t}}, r: {}}\n"
        "targets: {t: {url: 'http://t.internal/x'}}",
        env={},
    )
    assert config.sources["s"].proxy == ProxyConfig(target="t", timeout=5.0, fallback=None)
    assert config.sources["r"].proxy is None
    fallback = (
        parse_config(
            "sources: {s: {mode: proxy, proxy: {target: t, timeout: 2500ms, fallback: {status: 503}}}}\n"
            "targets: {t: {url: 'http://t.internal/x'}}",
            env={},
        )
        .sources["s"]
        .proxy
    )
    assert fallback == ProxyConfig("t", 2.5, ProxyFallback(status=503))


TARGETS = "targets: {t: {url: 'http://t.internal/x'}, q: {type: redis-stream, stream: q}}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sources: {s: {mode: proxy, proxy: {target: nope}}}", 'sources.s.proxy.target: no target named "nope"'),
        ("sources: {s: {mode: proxy, proxy: {target: q}}}", 'sources.s.proxy.target: "q" is a redis-stream target; a proxy needs an http target'),
        ("sources: {s: {mode: proxy}}", "sources.s.proxy.target: is required"),
        ("sources: {s: {mode: proxy, proxy: {}}}", "sources.s.proxy.target: is required"),
        ("sources: {s: {mode: relay}}", 'sources.s.mode: expected "store" or "proxy", got "relay"'),
        ("sources: {s: {proxy: {target: t}}}", "sources.s.proxy: only used with mode: proxy"),
        ("sources: {s: {mode: proxy, proxy: {target: t, timeout: 0s}}}", "sources.s.proxy.timeout: must be longer than 0s"),
        ("sources: {s: {mode: proxy, proxy: {target: t, timeout: soon}}}", 'sources.s.proxy.timeout: expected a duration'),
        ("sources: {s: {mode: proxy, proxy: {target: t, fallback: {status: 700}}}}", "sources.s.proxy.fallback.status: expected an HTTP status from 200 to 599"),
        ("sources: {s: {mode: proxy, proxy: {target: t, fallback: {code: 200}}}}", "sources.s.proxy.fallback.code: unknown key"),
        ("sources: {s: {mode: proxy, proxy: {target: t, retries: 2}}}", "sources.s.proxy.retries: unknown key"),
        ("sources: {s: {mode: proxy, proxy: {target: t}, dedupe: {key: 'header:X-Id'}}}", "sources.s.dedupe: not used with mode: proxy"),
        ("sources: {s: {mode: proxy, proxy: {target: t}}}\nroutes: [{source: s, targets: [t]}]", 'routes[0].source: "s" is a proxy source'),
    ],
)  # fmt: skip
def test_proxy_config_mistakes_name_their_key_path(text, expected):
    with pytest.raises(ConfigError) as raised:
        parse_config(TARGETS + text, env={})
    found = raised.value.problems
    assert any(problem.startswith(expected) for problem in found), found
