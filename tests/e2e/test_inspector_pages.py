"""The inspector's pages and forms through the whole app, without a browser: what each page
shows, that forms need the session's CSRF token and do what the API does, the partial
fragments the live updates fetch, and error pages."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid

import aiohttp
from conftest import make_config

from gateway import keys

TOKEN = "pages-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config_text(url: str, extra: str = "") -> str:
    return f"""
admin: {{tokens: {{ops: "{TOKEN}"}}{extra}}}
sources:
  shop: {{event_type: "json:type"}}
targets:
  billing: {{url: "{url}", retry: {{schedule: [1h]}}}}
  backfill: {{url: "{url}"}}
routes:
  - {{source: shop, targets: [billing]}}
"""


async def signed_in(client) -> str:
    """Sign the client's cookie jar in; the session's CSRF token."""
    response = await client.post(
        "/admin/login", data={"token": TOKEN, "next": "/admin"}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/admin"
    me = await (await client.get("/admin/api/me")).json()
    return str(me["csrf_token"])


async def ingest(client, body: bytes) -> str:
    response = await client.post("/in/shop", data=body)
    assert response.status == 202
    return str((await response.json())["id"])


async def page(client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status == status, path
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    return await response.text()


async def test_every_page_renders_and_links_its_json_twin(database_url, target, gateway):
    billing = await target()
    client = await gateway(make_config(database_url, config_text(billing.url)))
    event = await ingest(client, b'{"type": "order.paid"}')
    await billing.recorder.wait_for(1)
    await signed_in(client)
    twins = {
        "/admin": "/admin/api/dashboard",
        "/admin/events?source=shop": "/admin/api/events?source=shop",
        f"/admin/events/{event}": f"/admin/api/events/{event}",
        "/admin/dead?target=billing": "/admin/api/deliveries?target=billing&amp;status=dead",
        "/admin/rejected": "/admin/api/rejected",
        "/admin/targets": "/admin/api/targets",
        "/admin/replays": "/admin/api/replays",
    }
    for path, twin in twins.items():
        assert f'href="{twin}"' in await page(client, path), path
    assert (await client.get(twins[f"/admin/events/{event}"].replace("&amp;", "&"))).status == 200


async def test_the_login_page_is_the_inspectors_and_a_wrong_token_is_401(
    database_url, target, gateway
):
    client = await gateway(make_config(database_url, config_text((await target()).url)))
    form = await page(client, "/admin/login?next=/admin/targets")
    assert 'name="next" value="/admin/targets"' in form and "inspector.css" in form
    wrong = await client.post("/admin/login", data={"token": "nope", "next": "/admin"})
    assert wrong.status == 401
    assert "That token is not valid." in await wrong.text()


async def test_a_form_without_the_csrf_token_is_refused(database_url, target, gateway):
    client = await gateway(make_config(database_url, config_text((await target()).url)))
    csrf = await signed_in(client)
    refused = await client.post("/admin/targets/billing/pause", data={"reason": "x"})
    assert refused.status == 403
    forged = await client.post("/admin/targets/billing/pause", data={"csrf_token": "f" * 32})
    assert forged.status == 403
    done = await client.post(
        "/admin/targets/billing/pause",
        data={"csrf_token": csrf, "reason": "db migration"},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/admin/targets?notice=paused"
    state = await (await client.get("/admin/api/targets/billing", headers=AUTH)).json()
    assert (state["paused"], state["reason"], state["changed_by"]) == (
        True,
        "db migration",
        "admin ops",
    )
    shown = await page(client, "/admin/targets?notice=paused")
    assert "Target paused" in shown and "db migration" in shown
    await client.post("/admin/targets/billing/resume", data={"csrf_token": csrf})
    state = await (await client.get("/admin/api/targets/billing", headers=AUTH)).json()
    assert state["paused"] is False


async def test_replay_forms_do_what_the_api_does(database_url, target, gateway):
    billing = await target()
    client = await gateway(make_config(database_url, config_text(billing.url)))
    event = await ingest(client, b'{"type": "order.paid"}')
    await until_delivered(client, event)
    csrf = await signed_in(client)
    replayed = await client.post(
        f"/admin/events/{event}/replay",
        data={"csrf_token": csrf, "target": ["billing", "backfill"], "new_key": "on"},
        allow_redirects=False,
    )
    assert replayed.status == 303
    assert replayed.headers["Location"] == f"/admin/events/{event}?notice=replayed&n=2"
    (audit,) = (await (await client.get("/admin/api/replays", headers=AUTH)).json())["items"]
    assert (audit["created_by"], audit["new_key"], audit["deliveries"]) == ("ops", True, 2)
    await billing.recorder.wait_for(3)  # billing again, and backfill for the first time
    detail = await page(client, f"/admin/events/{event}?notice=replayed&n=2")
    assert "Replay queued: 2 deliveries will be sent again." in detail
    assert "replayed by ops" in detail


async def test_bulk_replay_is_a_dry_run_until_confirmed(database_url, target, gateway, clock):
    billing = await target()
    billing.recorder.script = [(400, {}, b"bad")] * 2
    client = await gateway(make_config(database_url, config_text(billing.url)))
    for n in range(2):
        await ingest(client, b'{"type": "order.paid", "n": %d}' % n)
    await until_dead(client, 2)
    csrf = await signed_in(client)
    dry = await client.post("/admin/dead/replay", data={"csrf_token": csrf, "target": "billing"})
    assert dry.status == 200
    assert "2 dead deliveries would be sent again" in await dry.text()
    dead = await (await client.get("/admin/api/deliveries?status=dead", headers=AUTH)).json()
    assert len(dead["items"]) == 2  # still dead: a dry run changes nothing
    confirmed = await client.post(
        "/admin/dead/replay",
        data={"csrf_token": csrf, "target": "billing", "confirm": "yes"},
        allow_redirects=False,
    )
    assert confirmed.status == 303
    assert re.fullmatch(
        r"/admin/replays/[0-9a-f-]{36}\?notice=replayed&n=2", confirmed.headers["Location"]
    )
    clock.advance(60)
    await billing.recorder.wait_for(4)
    audit = await page(client, confirmed.headers["Location"])
    assert audit.count('data-key="') == 2  # the two deliveries it touched


async def test_partials_are_what_live_updates_swap_in(database_url, target, gateway):
    billing = await target()
    client = await gateway(make_config(database_url, config_text(billing.url)))
    event = await ingest(client, b'{"type": "order.paid"}')
    await signed_in(client)
    rows = await page(client, "/admin/events?partial=rows")
    assert rows.lstrip().startswith("<tr") and "<html" not in rows and event in rows
    deliveries = await page(client, f"/admin/events/{event}?partial=deliveries")
    assert 'aria-label="delivery to billing"' in deliveries and "<html" not in deliveries
    summary = await page(client, "/admin?partial=summary")
    assert "events received" in summary and "<svg" in summary and "<html" not in summary


async def test_notices_are_fixed_texts_and_errors_are_pages(database_url, target, gateway):
    client = await gateway(make_config(database_url, config_text((await target()).url)))
    await signed_in(client)
    crafted = await page(client, "/admin/events?notice=<b>owned</b>&n=<i>")
    assert "owned" not in crafted
    counted = await page(client, "/admin/targets?notice=replayed&n=<i>5</i>")
    assert "Replay queued: some deliveries" in counted and "<i>5" not in counted
    missing = await page(client, f"/admin/events/{uuid.uuid4()}", status=404)
    assert "no event with this id" in missing
    assert "no event with this id" in await page(client, "/admin/events/nope", status=404)
    assert "no replay with this id" in await page(client, "/admin/replays/nope", status=404)
    assert "not a cursor" in await page(client, "/admin/events?cursor=@@", status=400)
    assert "status: expected one of" in await page(client, "/admin/events?status=odd", status=400)


async def until_delivered(client, event: str) -> None:
    """Until the event's deliveries are all delivered (bounded): a replay leaves one in flight alone."""
    for _ in range(200):
        detail = await (await client.get(f"/admin/api/events/{event}", headers=AUTH)).json()
        if detail["deliveries"] and all(d["status"] == "delivered" for d in detail["deliveries"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{event} was not delivered")


async def until_dead(client, count: int) -> None:
    """Until `count` deliveries are dead (bounded): the target's answer is recorded after it."""
    for _ in range(200):
        dead = await (await client.get("/admin/api/deliveries?status=dead", headers=AUTH)).json()
        if len(dead["items"]) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} dead deliveries")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_on_its_own_listener_the_pages_are_there_and_not_on_the_public_one(
    database_url, target, gateway
):
    port = free_port()
    extra = f", host: 127.0.0.1, port: {port}"
    client = await gateway(make_config(database_url, config_text((await target()).url, extra)))
    assert (await client.get("/admin", allow_redirects=False)).status == 404
    jar = aiohttp.CookieJar(unsafe=True)  # cookies from an IP address
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", cookie_jar=jar) as admin:
        response = await admin.post("/admin/login", data={"token": TOKEN, "next": "/admin/targets"})
        assert response.status == 200 and str(response.url).endswith("/admin/targets")
        assert "billing" in await response.text()
        style = await admin.get("/admin/static/inspector.css")
        assert style.status == 200


async def test_a_blocked_fifo_key_is_listed_and_released_from_its_page(
    database_url, target, gateway, clock
):
    billing = await target()
    billing.recorder.script = [(400, {}, b"bad")]
    fifo = "retry: {schedule: [1h]}, ordering: {key: 'json:customer', on_dead: block}}"
    text = config_text(billing.url).replace("retry: {schedule: [1h]}}", fifo, 1)
    client = await gateway(make_config(database_url, text))
    await ingest(client, b'{"type": "a", "customer": "cus_<1>"}')
    await until_dead(client, 1)
    clock.advance(1)
    await ingest(client, b'{"type": "b", "customer": "cus_<1>"}')
    csrf = await signed_in(client)
    assert "1 key blocked" in await page(client, "/admin/targets")
    listed = await page(client, "/admin/targets/billing/blocked")
    assert "cus_&lt;1&gt;" in listed and 'href="/admin/api/targets/billing/blocked"' in listed
    released = await client.post(
        "/admin/targets/billing/release",
        data={"csrf_token": csrf, "key": "cus_<1>"},
        allow_redirects=False,
    )
    assert released.status == 303
    assert released.headers["Location"] == "/admin/targets/billing/blocked?notice=released&n=1"
    await billing.recorder.wait_for(2)  # the one waiting behind it went
    assert "No key of billing is blocked." in await page(client, "/admin/targets/billing/blocked")
    again = await client.post(
        "/admin/targets/billing/release", data={"csrf_token": csrf, "key": "cus_<1>"}
    )
    assert again.status == 404 and "no dead delivery holds this key" in await again.text()


async def test_the_database_down_is_a_503_page_with_retry_after(database_url, target, gateway):
    text = config_text((await target()).url) + "relay: {enabled: false}\n"
    client = await gateway(make_config(database_url, text))
    await signed_in(client)
    await client.app[keys.STORE].pool.close()
    for path in ("/admin", "/admin/events", "/admin/targets"):
        down = await page(client, path, status=503)
        assert "The database is not answering right now" in down
    assert (await client.get("/admin/events")).headers["Retry-After"] == "5"
