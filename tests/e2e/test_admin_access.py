"""Nothing admin is reachable without auth; the login flow; hostile payloads stay data."""

from __future__ import annotations

import asyncio
import base64
import socket

import aiohttp
import pytest
import structlog
import structlog.testing
from aiohttp import web
from conftest import make_config

from gateway.admin.auth import COOKIE, is_public
from gateway.app import create_app
from gateway.errors import HookgateError
from gateway.ids import event_id
from gateway.storage.store import EventRecord

TOKEN = "access-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = f"""
admin: {{tokens: {{ops: "{TOKEN}"}}, login_attempts: 3}}
sources:
  shop: {{event_type: "json:type"}}
  keyed: {{verify: {{type: api-key, secret: k3y, query: key}}}}
targets:
  billing: {{url: "http://127.0.0.1:9/never"}}
routes:
  - {{source: shop, targets: [billing]}}
relay: {{enabled: false}}
"""


SAMPLE_ID = "019b76da-a800-7761-8a2a-81dd1bbd9b18"


def concrete(path: str, event: str = SAMPLE_ID, delivery: str = SAMPLE_ID) -> str:
    """`path` with its placeholders filled: a delivery's id where the route takes one."""
    if path.startswith(("/admin/deliveries/", "/admin/api/deliveries/")):
        path = path.replace("{id}", delivery).replace("{delivery}", delivery)
    return path.replace("{id}", event).replace("{name}", "billing")


def admin_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every /admin route of `app` but the public ones."""
    found = []
    for resource in app.router.resources():
        path = resource.canonical
        if not path.startswith("/admin") or is_public(path):
            continue
        for route in resource:
            if route.method != "HEAD":
                found.append(("GET" if route.method == "*" else route.method, path))
    return found


def assert_refused(method: str, path: str, status: int, location: str | None) -> None:
    if path.startswith("/admin/api"):
        assert status == 401, (method, path)
    else:
        assert status == 303, (method, path)
        assert location is not None and location.startswith("/admin/login?next="), path


async def test_every_admin_route_needs_auth(database_url, gateway):
    client = await gateway(make_config(database_url, CONFIG))
    routes = admin_routes(client.app)
    for method, template in routes:
        path = concrete(template)
        response = await client.request(method, path, allow_redirects=False)
        assert_refused(method, path, response.status, response.headers.get("Location"))
    # the API's 19, the pages' 15, logout and the static files' root (login is public)
    assert len(routes) == 36


async def test_on_its_own_listener_every_admin_route_needs_auth_too(database_url, gateway):
    """The own listener mounts the same routes (gateway/admin/setup.py: add_routes); the
    shared layout's route table is the list of what to try there, and on the public one."""
    routes = admin_routes((await gateway(make_config(database_url, CONFIG))).app)
    port = free_port()
    client = await gateway(
        make_config(database_url, CONFIG.replace("login_attempts: 3", f"port: {port}"))
    )
    assert admin_routes(client.app) == []
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as admin:
        for method, template in routes:
            path = concrete(template)
            assert (await client.request(method, path, allow_redirects=False)).status == 404
            async with admin.request(method, path, allow_redirects=False) as response:
                assert_refused(method, path, response.status, response.headers.get("Location"))


async def test_a_session_without_its_csrf_token_changes_nothing(database_url, gateway):
    """Every state-changing /admin route, posted with a valid session cookie but no CSRF
    token (as a forged cross-site form would be), is refused before its handler runs."""
    client = await gateway(make_config(database_url, CONFIG))
    event = (await (await client.post("/in/shop", data=b'{"type": "a"}')).json())["id"]
    signed_in = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
    assert signed_in.status == 303
    posts = [(m, p) for m, p in admin_routes(client.app) if m == "POST"]
    assert len(posts) >= 13
    detail = await (await client.get(f"/admin/api/events/{event}", headers=AUTH)).json()
    delivery = detail["deliveries"][0]["id"]
    for _, template in posts:
        path = concrete(template, event, delivery)
        for data in ({"reason": "x", "key": "k", "target": "billing", "confirm": "yes"},
                     {"csrf_token": "f" * 32}):  # fmt: skip
            response = await client.post(path, data=data, allow_redirects=False)
            assert response.status == 403, path
    after = await (await client.get(f"/admin/api/events/{event}", headers=AUTH)).json()
    assert after["deliveries"] == detail["deliveries"]
    assert (await (await client.get("/admin/api/replays", headers=AUTH)).json())["items"] == []
    state = await (await client.get("/admin/api/targets/billing", headers=AUTH)).json()
    assert state["paused"] is False
    assert (await client.get("/admin/api/me")).status == 200  # the session itself still works


async def test_without_a_token_there_is_no_admin_route(database_url, gateway):
    with structlog.testing.capture_logs() as logs:
        client = await gateway(make_config(database_url, "relay: {enabled: false}\n"))
    assert [e for e in logs if e["event"] == "admin_disabled"] == [
        {"event": "admin_disabled", "log_level": "info",
         "reason": "no admin token configured (admin.tokens)"}
    ]  # fmt: skip
    assert not [r for r in client.app.router.resources() if r.canonical.startswith("/admin")]
    assert (await client.get("/admin/api/events", headers=AUTH)).status == 404


async def test_login_sets_a_strict_httponly_cookie_and_logout_needs_csrf(database_url, gateway):
    client = await gateway(make_config(database_url, CONFIG))
    form = await client.get("/admin/login?next=/admin/api/me")
    assert form.status == 200 and 'type="password"' in await form.text()
    response = await client.post("/admin/login", data={"token": TOKEN, "next": "/admin/api/me"},
                                 allow_redirects=False)  # fmt: skip
    assert response.status == 303 and response.headers["Location"] == "/admin/api/me"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert TOKEN not in cookie
    me = await (await client.get("/admin/api/me")).json()
    assert me["name"] == "ops" and me["via"] == "session"

    assert (await client.post("/admin/logout", allow_redirects=False)).status == 403
    assert (await client.post("/admin/api/targets/billing/pause")).status == 403
    out = await client.post("/admin/logout", data={"csrf_token": me["csrf_token"]},
                            allow_redirects=False)  # fmt: skip
    assert out.status == 303 and out.headers["Location"] == "/admin/login"
    client.session.cookie_jar.clear()
    assert (await client.get("/admin/api/me")).status == 401


async def test_a_multipart_login_sent_in_two_parts_works_as_an_urlencoded_one(
    database_url, gateway
):
    """The guard reads a body that is still arriving before the handler does (within
    body_timeout): a multipart form is parsed there and kept, not swallowed as raw bytes."""
    client = await gateway(make_config(database_url, CONFIG))
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n{TOKEN}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    head = (
        f"POST /admin/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(0.2)  # the body comes later: the guard has to wait for it
        writer.write(body)
        async with asyncio.timeout(20):  # a bound for a broken server, not a measurement
            answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 303"), answer[:200]
    assert f"{COOKIE}=".encode() in answer


async def test_failed_logins_are_rate_limited(database_url, gateway):
    client = await gateway(make_config(database_url, CONFIG))
    for _ in range(3):
        assert (await client.post("/admin/login", data={"token": "guess"})).status == 401
    limited = await client.post("/admin/login", data={"token": TOKEN})
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    assert (await client.get("/admin/api/me", headers=AUTH)).status == 429


async def test_hostile_payloads_come_back_as_data(database_url, gateway):
    client = await gateway(make_config(database_url, CONFIG))
    script = b'<script>alert("x")</script> \' " \xff\xfe broken'
    response = await client.post("/in/shop", data=script,
                                 headers={"X-Evil": '<img src=x onerror="alert(1)">'})  # fmt: skip
    event_id = (await response.json())["id"]
    keyed = await client.post("/in/keyed?key=k3y&x=<b>", data=b'{"ok": "<script>"}',
                              headers={"Cookie": "session=abc"})  # fmt: skip
    keyed_id = (await keyed.json())["id"]

    detail = await client.get(f"/admin/api/events/{event_id}", headers=AUTH)
    assert detail.content_type == "application/json"
    request = (await detail.json())["request"]
    assert request["body"]["text"] is None
    assert base64.b64decode(request["body"]["base64"]) == script
    assert ["X-Evil", '<img src=x onerror="alert(1)">'] in request["headers"]
    other = (await (await client.get(f"/admin/api/events/{keyed_id}", headers=AUTH)).json())[
        "request"
    ]
    assert other["query"] == "key=[redacted]&x=%3Cb%3E"
    assert ["Cookie", "session=[redacted]"] in other["headers"]
    found = await (
        await client.get("/admin/api/events", params={"q": "<script>"}, headers=AUTH)
    ).json()
    assert {e["id"] for e in found["items"]} == {event_id, keyed_id}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_admin_surface_can_have_its_own_listener(database_url, gateway):
    port = free_port()
    client = await gateway(
        make_config(database_url, CONFIG.replace("login_attempts: 3", f"port: {port}"))
    )
    assert (await client.get("/admin/api/events", headers=AUTH)).status == 404
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/admin/api/events"
        async with session.get(url, headers=AUTH) as response:
            assert response.status == 200
        async with session.get(url) as response:
            assert response.status == 401
    assert COOKIE


async def test_requests_stored_before_redaction_are_shown_redacted(
    database_url, gateway, store, clock
):
    client = await gateway(make_config(database_url, CONFIG))
    new_id = event_id(clock.now())
    headers = [("Authorization", "Basic dXNlcjpwYXNz"), ("Cookie", "s=1"), ("X-Other", "v")]
    await store.insert_events([EventRecord(new_id, "keyed", None, clock.now(), "POST", "/in/keyed",
                                           "key=k3y&x=1", headers, b"{}", None, [])])  # fmt: skip
    request = (await (await client.get(f"/admin/api/events/{new_id}", headers=AUTH)).json())[
        "request"
    ]
    assert request["query"] == "key=[redacted]&x=1"
    assert request["headers"] == [
        ["Authorization", "Basic [redacted]"],
        ["Cookie", "s=[redacted]"],
        ["X-Other", "v"],
    ]


async def test_an_admin_port_in_use_is_one_clear_error(database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(database_url, CONFIG.replace("login_attempts: 3", f"port: {port}"))
        runner = web.AppRunner(create_app(config))
        try:
            with pytest.raises(
                HookgateError,
                match=rf"cannot listen on 127.0.0.1:{port}: .* another port with admin.port\)$",
            ):
                await runner.setup()
        finally:
            await runner.cleanup()
