"""The HTTP edge through a real socket: malformed requests, slow and vanishing clients,
the connection cap, and what every error answer looks like (JSON, nothing echoed)."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import GatewayTestServer, make_config
from structlog.testing import capture_logs

from gateway.app import create_app
from gateway.config import parse_config
from gateway.plugin import VerifierSpec
from gateway.plugins import load_registry

MARK = "Sekr1tMarker"  # must never come back in an answer


def config(database_url: str, server: str = ""):
    return make_config(
        database_url,
        f"""
server: {{{server}}}
sources:
  demo: {{event_type: "json:type"}}
""",
    )


async def exchange(client, data: bytes, *, close_after: bool = False) -> bytes:
    """Send raw bytes on a new connection; everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        if close_after:
            writer.close()
            return b""
        async with asyncio.timeout(20):  # a bound for a broken server, not a measurement
            return await reader.read()
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def assert_json_error(raw: bytes, status: int) -> dict[str, str]:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"].startswith("application/json")
    assert headers["server"] == "hookgate"
    document = json.loads(body)
    assert set(document) == {"error"} and document["error"]
    assert MARK.encode() not in raw and MARK.lower().encode() not in raw.lower()
    return headers


MALFORMED = {
    "bad method": f"G{MARK}\x01T /in/demo HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "header over 16 KiB": (
        f"POST /in/demo HTTP/1.1\r\nHost: x\r\nX-Long: {MARK}{'a' * 17000}\r\n\r\n".encode()
    ),
    "request line over 8 KiB": f"POST /in/{MARK}{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "too many headers": (
        "POST /in/demo HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"X-H{i}: {MARK}\r\n" for i in range(200))
        + "\r\n"
    ).encode(),
    "control byte in a header": (
        f"POST /in/demo HTTP/1.1\r\nHost: x\r\nX-Evil: {MARK}\x01x\r\n\r\n".encode()
    ),
    "control byte in the target": f"POST /in/de\x01mo{MARK} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "bad chunk size": (
        b"POST /in/demo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"zz{MARK}\r\n{MARK}\r\n0\r\n\r\n".encode()
    ),
    "not HTTP at all": f"\x16\x03\x01{MARK}\r\n\r\n".encode(),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_request_the_parser_refuses_is_a_json_400_that_echoes_nothing(
    database_url, gateway, case
):
    client = await gateway(config(database_url))
    with capture_logs() as logs:
        raw = await exchange(client, MALFORMED[case])
    assert_json_error(raw, 400)
    lines = [entry for entry in logs if entry["event"] == "request_malformed"]
    assert len(lines) == 1 and lines[0]["status"] == 400
    assert MARK not in repr(logs)


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        ("GET / HTTP/1.1", 404),
        ("POST /in/ HTTP/1.1", 404),
        ("POST /in/a/b HTTP/1.1", 404),
        (f"POST /{MARK} HTTP/1.1", 404),
        ("POST /in/nope HTTP/1.1", 404),
        ("POST /healthz HTTP/1.1", 405),
        ("GET /in/demo HTTP/1.1", 405),
    ],
)
async def test_router_errors_are_json(database_url, gateway, request_line, status):
    client = await gateway(config(database_url))
    data = f"{request_line}\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    headers = assert_json_error(await exchange(client, data.encode()), status)
    if request_line == "POST /healthz HTTP/1.1":
        assert headers["allow"] == "GET,HEAD"


async def test_the_server_header_names_no_versions(database_url, gateway):
    client = await gateway(config(database_url))
    accepted = await client.post("/in/demo", data=b'{"type": "a"}')
    assert accepted.status == 202
    assert accepted.headers["Server"] == "hookgate"
    health = await client.get("/healthz")
    assert health.headers["Server"] == "hookgate"


SHORT = "header_timeout: 200ms, body_timeout: 200ms"


@pytest.mark.parametrize(
    "data",
    [
        b"",  # connected, never said anything
        b"POST /in/demo HTTP/1.1\r\nHost: x\r\nX-Slow: 1",  # a head that never ends
    ],
)
async def test_a_head_that_does_not_arrive_in_time_is_408_and_closed(database_url, gateway, data):
    client = await gateway(config(database_url, SHORT))
    with capture_logs() as logs:
        raw = await exchange(client, data)  # returns once the server closed the connection
    assert_json_error(raw, 408)
    about_requests = [e for e in logs if e["event"].startswith("request_")]
    assert [(e["event"], e["log_level"], e["stage"]) for e in about_requests] == [
        ("request_timed_out", "info", "head")
    ]


async def test_a_kept_alive_connection_gets_the_head_timeout_for_its_next_request(
    database_url, gateway
):
    client = await gateway(config(database_url, SHORT))
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(
            b'POST /in/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{"type": "a"}'
        )
        async with asyncio.timeout(20):  # a bound for a broken server, not a measurement
            head = await reader.readuntil(b"\r\n\r\n")
            _, headers, _ = parse(head)
            await reader.readexactly(int(headers["content-length"]))
            assert head.startswith(b"HTTP/1.1 202")
            writer.write(b"POST /in/demo HTTP/1.1\r\nHost: x")  # ... and nothing more
            assert_json_error(await reader.read(), 408)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "data",
    [
        b'POST /in/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"type":',
        b'POST /in/demo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"ty"\r\n',
    ],
    ids=["shorter than its Content-Length", "chunked without its terminator"],
)
async def test_a_body_that_does_not_arrive_in_time_is_408(database_url, gateway, data):
    client = await gateway(config(database_url, SHORT))
    with capture_logs() as logs:
        raw = await exchange(client, data)
    assert_json_error(raw, 408)
    assert [e["status"] for e in logs if e["event"] == "request_handled"] == [408]


ADMIN_TOKEN = "tok_0123456789abcdef0123"


@pytest.mark.parametrize(
    "data",
    [
        b"POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=",
        b"POST /admin/api/targets/t/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b'\r\n\r\n{"reason":',
    ],
    ids=["the login form", "the admin API"],
)
async def test_an_admin_body_that_does_not_arrive_in_time_is_408(database_url, gateway, data):
    """The admin surface reads its forms and JSON within body_timeout too: a client
    dripping a login form (no token needed to send one) cannot hold a connection."""
    yaml = f"""
server: {{{SHORT}}}
admin: {{tokens: {{ops: {ADMIN_TOKEN}}}}}
targets: {{t: {{url: "http://127.0.0.1:9/"}}}}
"""
    client = await gateway(make_config(database_url, yaml))
    assert_json_error(await exchange(client, data), 408)


async def test_a_client_that_hangs_up_mid_body_is_one_info_line(database_url, gateway):
    client = await gateway(config(database_url))
    data = b'POST /in/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"type":'
    with capture_logs() as logs:
        await exchange(client, data, close_after=True)
        for _ in range(200):  # until the server noticed (a bound, not a measurement)
            if any(e["event"] == "client_disconnected" for e in logs):
                break
            await asyncio.sleep(0.01)
    about_requests = [e for e in logs if e["event"].startswith(("request_", "client_"))]
    assert [(e["event"], e["log_level"]) for e in about_requests] == [
        ("client_disconnected", "info")
    ]
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    assert (await client.get("/healthz")).status == 200


async def test_connections_over_max_connections_are_refused_at_once(database_url, gateway):
    client = await gateway(config(database_url, "max_connections: 2"))
    held = [await asyncio.open_connection(client.server.host, client.server.port) for _ in range(2)]
    try:
        with capture_logs() as logs:
            for _ in range(3):  # a flood: one line at once, the rest counted for later
                raw = await exchange(client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                headers = assert_json_error(raw, 503)
                assert headers["retry-after"] == "1"
        refused = [e for e in logs if e["event"] == "connection_refused"]
        assert [(e["log_level"], e["count"]) for e in refused] == [("warning", 1)]
    finally:
        for _, writer in held:
            writer.close()
    for _ in range(200):  # the held connections' slots free up once they are closed
        if (await client.get("/healthz")).status == 200:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the cap never let a connection in again")


def crash(inbound, options):
    raise RuntimeError(f"a bug that knows {MARK}")  # what a 500 must not tell the client


async def test_an_unexpected_failure_is_a_json_500_with_a_request_id_in_the_log(
    database_url, aiohttp_client, clock, capsys
):
    registry = load_registry()
    registry.add(VerifierSpec(name="crashing", parse=lambda section: None, check=crash))
    text = "sources: {demo: {verify: {type: crashing}}}"
    config = parse_config(f"database: {{url: '{database_url}'}}\n{text}", registry, env={})
    client = await aiohttp_client(
        GatewayTestServer(create_app(config, clock=clock, registry=registry))
    )
    with capture_logs() as logs:
        answer = await client.post("/in/demo", data=b"{}")
    assert answer.status == 500
    assert answer.headers["Server"] == "hookgate"
    document = await answer.json()
    assert set(document) == {"error", "request_id"} and document["error"] == "internal error"
    assert MARK not in await answer.text()
    crashed = [e for e in logs if e["event"] == "request_crashed"]
    handled = [e for e in logs if e["event"] == "request_handled"]
    assert [(e["log_level"], e["request_id"]) for e in crashed] == [
        ("error", document["request_id"])
    ]  # logged once, with where it happened, for whoever reads the log
    (line,) = crashed
    assert line["error"] == "builtins.RuntimeError"
    assert line["frames"][-1].endswith(" in crash")  # the traceback's places, innermost last
    assert any("test_http_edges.py:" in frame for frame in line["frames"])
    assert "exc_info" not in line  # no rendered traceback: it would carry the message
    assert MARK not in repr(logs)  # an exception's text may hold request data
    capsys.readouterr()
    assert (await client.post("/in/demo", data=b"{}")).status == 500
    rendered = capsys.readouterr()  # what the configured renderer wrote of it
    assert "request_crashed" in rendered.out + rendered.err
    assert MARK not in rendered.out + rendered.err
    assert [(e["status"], e["request_id"]) for e in handled] == [(500, document["request_id"])]
