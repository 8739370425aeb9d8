"""Credentials are stored redacted, and no secret or body ever reaches the log,
however the request that carries them is malformed."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import json
import logging
import signal

import asyncpg
from conftest import hookgate_process, make_config
from structlog.testing import capture_logs
from test_lifecycle import free_port, wait_ready

from gateway.middleware import own_first_segments

TOKEN = "tok_9f3c1d7e5b2a48c6"  # the secret, in every position a request can carry it
B64 = base64.b64encode(f"hooks:{TOKEN}".encode()).decode()
GH_SECRET = "gh-secret"

CONFIG = f"""
server: {{header_timeout: 300ms, body_timeout: 300ms}}
sources:
  key: {{verify: {{type: api-key, secret: "{TOKEN}"}}}}
  keyq: {{verify: {{type: api-key, secret: "{TOKEN}", query: key}}}}
  basic: {{verify: {{type: basic, username: hooks, password: "{TOKEN}"}}}}
  gh: {{verify: {{type: github, secret: "{GH_SECRET}"}}, dedupe: false}}
  open: {{event_type: "json:type"}}
  custom: {{redact_headers: [X-Custom-Token]}}
"""


async def rows(database_url: str, query: str):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def eventually(database_url: str, query: str, count: int):
    for _ in range(200):  # the rejected log is written in the background
        found = await rows(database_url, query)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} rows: {query}")


def header(stored, name: str) -> str:
    return next(v for k, v in json.loads(stored) if k.lower() == name.lower())


async def test_credentials_are_stored_redacted_and_signatures_kept(database_url, gateway):
    client = await gateway(make_config(database_url, CONFIG))
    body = b'{"type": "t"}'
    digest = hmac.new(GH_SECRET.encode(), body, hashlib.sha256).hexdigest()
    sent = [
        await client.post("/in/key", data=body, headers={"X-API-Key": TOKEN}),
        await client.post(f"/in/keyq?a=1&key={TOKEN}", data=body),
        await client.post("/in/basic", data=body, headers={"Authorization": f"Basic {B64}"}),
        await client.post("/in/gh", data=body, headers={"X-Hub-Signature-256": f"sha256={digest}"}),
        await client.post(
            "/in/open",
            data=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Cookie": f"s={TOKEN}; t=1"},
        ),
        await client.post(
            "/in/custom",
            data=body,
            headers={"X-Custom-Token": TOKEN, "Authorization": "Bearer visible"},
        ),
    ]
    assert [r.status for r in sent] == [202] * 6
    events = {
        r["source"]: r
        for r in await rows(database_url, "SELECT source, query, headers FROM hookgate.events")
    }
    assert header(events["key"]["headers"], "X-API-Key") == "[redacted]"
    assert events["keyq"]["query"] == "a=1&key=[redacted]"
    assert header(events["basic"]["headers"], "Authorization") == "Basic [redacted]"
    assert header(events["gh"]["headers"], "X-Hub-Signature-256") == f"sha256={digest}"
    assert header(events["open"]["headers"], "Authorization") == "Bearer [redacted]"
    assert header(events["open"]["headers"], "Cookie") == "s=[redacted]; t=[redacted]"
    assert header(events["custom"]["headers"], "X-Custom-Token") == "[redacted]"
    assert header(events["custom"]["headers"], "Authorization") == "Bearer visible"  # replaced list
    assert TOKEN not in repr([dict(r) for r in events.values()])

    refused = [
        await client.post("/in/key", headers={"X-API-Key": TOKEN + "x"}),
        await client.post(f"/in/keyq?key={TOKEN}x"),
        await client.post(
            "/in/basic",
            headers={"Authorization": "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()},
        ),
    ]
    assert [r.status for r in refused] == [401] * 3
    stored = await eventually(database_url, "SELECT query, headers FROM hookgate.rejected", count=3)
    assert TOKEN not in repr([dict(r) for r in stored])


async def raw(address: tuple[str, int], data: bytes, *, hang_up: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        if hang_up:
            return b""
        async with asyncio.timeout(20):  # a bound for a broken server, not a measurement
            return await reader.read()
    finally:
        writer.close()


def request(head: str, body: bytes = b"", **headers: str) -> bytes:
    headers.setdefault("Connection", "close")  # read each answer to its end
    lines = [head, "Host: x", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


BEARER = f"Bearer {TOKEN}"
BODY = f'{{"type": "t", "secret": "{TOKEN}"}}'.encode()
MALFORMED = [
    # a header over 16 KiB, the token in it and beside it
    request("POST /in/open HTTP/1.1", Authorization=BEARER, X_Pad=TOKEN + "a" * 17000),
    # a control byte after the token
    request("POST /in/open HTTP/1.1", Authorization=BEARER + "\x01"),
    request("POST /in/open HTTP/1.1", X_Api_Key=TOKEN + "\x7f", Authorization=BEARER),
    # bad chunked encoding, the token in the chunks
    request(
        "POST /in/open HTTP/1.1",
        TOKEN.encode() + b"\r\n" + BODY + b"\r\n",
        Transfer_Encoding="chunked",
        Authorization=BEARER,
    ),
    # a bad method and a bad request target carrying the token
    request(f"P{TOKEN}\x01ST /in/keyq?key={TOKEN} HTTP/1.1", Authorization=BEARER),
    request(f"POST /in/keyq?key={TOKEN}\x01 HTTP/1.1"),
    request(f"POST /in/keyq?key={TOKEN}{'a' * 9000} HTTP/1.1"),
    # too many headers
    ("POST /in/open HTTP/1.1\r\n" + f"X-T: {TOKEN}\r\n" * 200 + "\r\n").encode(),
    # the token as a Content-Length, a Transfer-Encoding, an HTTP version, a Host with a
    # control byte, an Expect; not HTTP at all (TLS, HTTP/2's preface)
    request("POST /in/open HTTP/1.1", Content_Length=TOKEN),
    request("POST /in/open HTTP/1.1", Transfer_Encoding=TOKEN),
    f"POST /in/open HTTP/{TOKEN}\r\nHost: x\r\n\r\n".encode(),
    f"POST /in/open HTTP/1.1\r\nHost: {TOKEN}\x01\r\n\r\n".encode(),
    request("POST /in/open HTTP/1.1", b"{}", Content_Length="2", Expect=TOKEN),
    f"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03{TOKEN}\r\n\r\n".encode(),
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + TOKEN.encode(),
    # a path nothing answers to, the token in it: an unknown source, an unknown route
    request(f"POST /in/{TOKEN} HTTP/1.1", BODY, Content_Length=str(len(BODY))),
    request(f"GET /hooks/{TOKEN}/x?key={TOKEN} HTTP/1.1"),
    # a method the source does not take, a body over max_body, a WebSocket upgrade
    request(f"GET /in/keyq?key={TOKEN} HTTP/1.1", Authorization=BEARER),
    request("POST /in/open HTTP/1.1", BODY, Content_Length="2000000", Authorization=BEARER),
    request(
        "GET /in/open HTTP/1.1",
        Upgrade="websocket",
        Connection="Upgrade, close",
        Sec_WebSocket_Key=TOKEN,
        Sec_WebSocket_Version="13",
    ),
    # a body that stops short (408 after body_timeout), and a head that never ends
    request("POST /in/open HTTP/1.1", BODY[:10], Content_Length="500", Authorization=BEARER),
    f"POST /in/open HTTP/1.1\r\nAuthorization: {BEARER}\r\nX-Slow: {TOKEN}".encode(),
    # bad auth, bad signature, a body that does not decode
    request(
        "POST /in/basic HTTP/1.1",
        BODY,
        Content_Length=str(len(BODY)),
        Authorization=f"Basic {B64}x",
    ),
    request("POST /in/key HTTP/1.1", BODY, Content_Length=str(len(BODY)), X_Api_Key=TOKEN + "x"),
    request(
        "POST /in/gh HTTP/1.1",
        BODY,
        Content_Length=str(len(BODY)),
        X_Hub_Signature_256=f"sha256={TOKEN}",
        Authorization=BEARER,
    ),
    request(
        "POST /in/open HTTP/1.1",
        BODY,
        Content_Length=str(len(BODY)),
        Content_Encoding="gzip",
        Authorization=BEARER,
    ),
    request(
        "POST /in/open HTTP/1.1",
        gzip.compress(BODY),
        Content_Length=str(len(gzip.compress(BODY))),
        Content_Encoding=f"gzip, {TOKEN}",
    ),
    # valid requests, the token where it belongs (and in a header's name, an absolute target)
    request(
        f"POST http://hooks:{TOKEN}@x/in/open?t={TOKEN} HTTP/1.1",
        BODY,
        Content_Length=str(len(BODY)),
        **{TOKEN: "x"},
    ),
    request(
        f"POST /in/keyq?key={TOKEN} HTTP/1.1",
        BODY,
        Content_Length=str(len(BODY)),
    ),
    request(
        "POST /in/basic HTTP/1.1",
        BODY,
        Content_Length=str(len(BODY)),
        Authorization=f"Basic {B64}",
        Cookie=f"session={TOKEN}",
    ),
    request(
        "POST /in/key HTTP/1.1",
        BODY,
        Content_Length=str(len(BODY)),
        X_Api_Key=TOKEN,
    ),
]


async def send_every_way(address: tuple[str, int]) -> list[bytes]:
    """Each of MALFORMED on its own connection (the answers), then a hang-up mid-body and
    a valid request with a bearer token."""
    answers = [await raw(address, data) for data in MALFORMED]
    hang_up = request("POST /in/open HTTP/1.1", BODY[:5], Content_Length="99", Authorization=BEARER)
    await raw(address, hang_up, hang_up=True)
    valid = request(
        "POST /in/open HTTP/1.1", BODY, Content_Length=str(len(BODY)), Authorization=BEARER
    )
    answers.append(await raw(address, valid))
    return answers


def assert_answered_as_expected(answers: list[bytes]) -> None:
    statuses = sorted({int(a.split(b" ")[1]) for a in answers if a})
    assert statuses == [202, 400, 401, 404, 405, 408, 413, 415, 417], statuses
    for answer in answers:
        assert TOKEN.encode() not in answer.partition(b"\r\n\r\n")[2]


def assert_no_secret_in(everything: str) -> None:
    for secret in (TOKEN, B64, TOKEN.encode().hex()):
        assert secret not in everything
    assert '"secret"' not in everything  # no body either


async def test_a_path_nothing_answers_to_is_logged_up_to_its_first_segment(database_url, gateway):
    client = await gateway(make_config(database_url, CONFIG))
    paths = [f"/in/{TOKEN}", f"/hooks/{TOKEN}/x?key={TOKEN}", f"/admin/{TOKEN}", "/in/", "/in/open"]
    with capture_logs() as logs:
        answers = [await client.post(path, data=b"{}") for path in paths]
    assert [a.status for a in answers] == [404, 404, 404, 404, 202]
    logged = [(e["status"], e["path"]) for e in logs if e["event"] == "request_handled"]
    assert logged == [
        (404, "/in/[redacted]"),  # which route family was asked, not what was typed into it
        (404, "/hooks/[redacted]"),
        (404, "/admin/[redacted]"),
        (404, "/in/"),
        (202, "/in/open"),  # a path something answers to is the route's own
    ]
    assert TOKEN not in repr(logs)


async def test_a_one_segment_path_nothing_answers_to_is_logged_only_if_it_is_hookgates_own(
    database_url, gateway
):
    extra = "admin: {tokens: {ops: an-admin-token}}\n"
    extra += "sources: {shop: {path: /webhooks/shop}}\n"
    client = await gateway(make_config(database_url, extra))
    own = own_first_segments(client.app.router)  # read from the router, not a list
    assert {"in", "healthz", "readyz", "metrics", "admin", "webhooks"} <= own
    paths = [f"/{TOKEN}", f"/{TOKEN}/", "/in", "/webhooks", "/"]
    with capture_logs() as logs:
        answers = [await client.post(path, data=b"{}") for path in paths]
    assert [a.status for a in answers] == [404] * 5
    logged = [(e["status"], e["path"]) for e in logs if e["event"] == "request_handled"]
    assert logged == [
        (404, "/[redacted]"),  # the client's text: perhaps a token pasted into a URL
        (404, "/[redacted]/"),
        (404, "/in"),  # one of hookgate's own first segments: the router's text
        (404, "/webhooks"),  # a source path's
        (404, "/"),
    ]
    assert TOKEN not in repr(logs)


async def test_no_secret_or_body_is_ever_logged(database_url, gateway, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every stdlib record, aiohttp's and asyncpg's included
    client = await gateway(make_config(database_url, CONFIG))
    with capture_logs() as logs:
        answers = await send_every_way((client.server.host, client.server.port))
        await asyncio.sleep(0.1)  # let the hung-up request's line be written
    assert_answered_as_expected(answers)
    assert logs, "nothing was logged: the test would prove nothing"
    assert any(e["event"] == "request_malformed" for e in logs)
    captured = capfd.readouterr()
    assert_no_secret_in("\n".join([repr(logs), caplog.text, captured.out, captured.err]))


async def test_a_real_serve_logs_no_secret_or_body_at_debug_level(tmp_path, database_url):
    """The same requests to `hookgate --log-level debug serve`: its whole output, as
    written by the process (structlog's JSON, the libraries' records, anything printed)."""
    port = free_port()
    config = tmp_path / "h.yaml"
    server = f"server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: 1s, "
    config.write_text(
        f"database: {{url: '{database_url}'}}\n" + CONFIG.replace("server: {", server)
    )
    async with hookgate_process(
        "--log-level", "debug", "serve", "--config", str(config)
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        output = [asyncio.ensure_future(s.read()) for s in (process.stdout, process.stderr)]
        await wait_ready(port)
        answers = await send_every_way(("127.0.0.1", port))
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            out, err = [b.decode(errors="replace") for b in await asyncio.gather(*output)]
            assert await process.wait() == 0
    assert_answered_as_expected(answers)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    assert {"request_malformed", "request_timed_out", "client_disconnected"} <= events
    assert_no_secret_in(out + err)
