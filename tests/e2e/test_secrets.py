"""Credentials are stored redacted, and no secret or body ever reaches the log,
however the request that carries them is malformed."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import logging

import asyncpg
from conftest import make_config
from structlog.testing import capture_logs

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
    import json

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


async def raw(client, data: bytes, *, hang_up: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
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
    # valid requests, the token where it belongs
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


async def test_no_secret_or_body_is_ever_logged(database_url, gateway, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every stdlib record, aiohttp's and asyncpg's included
    client = await gateway(make_config(database_url, CONFIG))
    with capture_logs() as logs:
        answers = [await raw(client, data) for data in MALFORMED]
        await raw(
            client, request("POST /in/open HTTP/1.1", BODY[:5], Content_Length="99"), hang_up=True
        )
        await client.post("/in/open", data=BODY, headers={"Authorization": BEARER})
        await asyncio.sleep(0.1)  # let the hung-up request's line be written
    statuses = sorted({int(a.split(b" ")[1]) for a in answers if a})
    assert statuses == [202, 400, 401, 408, 415], statuses
    assert logs, "nothing was logged: the test would prove nothing"
    assert any(e["event"] == "request_malformed" for e in logs)
    captured = capfd.readouterr()
    everything = "\n".join([repr(logs), caplog.text, captured.out, captured.err])
    for secret in (TOKEN, B64, TOKEN.encode().hex()):
        assert secret not in everything
    assert '"secret"' not in everything  # no body either
    for answer in answers:
        assert TOKEN.encode() not in answer.partition(b"\r\n\r\n")[2]
