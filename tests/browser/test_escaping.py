"""Payloads are attacker-controlled: every page shows `<script>`, quotes and broken UTF-8
from bodies, headers and target answers as text, runs none of it, and redacts credentials.

The pages' Content Security Policy would also stop an inline script, so the checks do not
rely on `window.__pwned` alone: the page's DOM must hold no element the payload made
(no extra <script>, no <img>), and the payload must be visible as text.
"""

from __future__ import annotations

import json
from typing import Any

from browser.conftest import Inspector, sign_in

SCRIPT = "<script>window.__pwned='{}'</script>"
IMG = "<img src=x onerror=\"window.__pwned='img'\">"


async def assert_inert(page: Any, at: Inspector, path: str, *, shows: str | None = None) -> str:
    """`path` ran no payload and made no element of it; return the page's text."""
    await page.goto(at.url(path))
    assert await page.evaluate("window.__pwned") is None, path
    scripts = await page.eval_on_selector_all("script", "els => els.map(e => e.src)")
    assert len(scripts) == 1 and "/admin/static/inspector.js" in scripts[0], path
    assert await page.locator("img").count() == 0, path
    text = str(await page.evaluate("document.body.textContent"))
    if shows is not None:
        assert shows in text, path
    return text


async def test_payloads_are_shown_as_text_on_every_page(inspector: Inspector, browser: Any) -> None:
    inspector.billing.recorder.script = [
        (500, {"Content-Type": "text/html"}, SCRIPT.format("answer").encode())
    ]
    inspector.crm.recorder.script = [(400, {}, IMG.encode())] * 2
    evil_type = SCRIPT.format("type")
    body = json.dumps({"type": evil_type, "note": f'it\'s "quoted" {IMG}'})
    json_event = await inspector.ingest(
        body.encode(),
        **{"X-Evil": SCRIPT.format("header"), "Authorization": "Bearer supersecret-token"},
    )
    binary_event = await inspector.ingest(b"\xff\xfe" + SCRIPT.format("binary").encode())
    refused = await inspector.client.post(
        "/in/keyed", data=SCRIPT.format("rejected"), headers={"X-Api-Key": "wrong-key-123"}
    )
    assert refused.status == 401
    for n in range(2):  # the first dies (nothing listens), the second waits behind its key
        await inspector.ingest(
            json.dumps({"customer": SCRIPT.format("key"), "n": n}).encode(), source="ordered"
        )
    await inspector.until_blocked("fifo")
    await inspector.billing.recorder.wait_for(2)
    await inspector.crm.recorder.wait_for(2)

    page = await browser.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    await sign_in(page, inspector)
    await assert_inert(page, inspector, "/admin")
    await assert_inert(page, inspector, "/admin/events", shows=evil_type)
    await assert_inert(
        page, inspector, "/admin/events?q=<img src=x", shows=evil_type
    )  # the search box too
    detail = await assert_inert(
        page, inspector, f"/admin/events/{json_event}", shows=SCRIPT.format("header")
    )
    assert IMG in detail and "it's" in detail and SCRIPT.format("answer") in detail
    assert "supersecret-token" not in detail and "Bearer [redacted]" in detail
    binary = await assert_inert(
        page, inspector, f"/admin/events/{binary_event}", shows="Not UTF-8: shown as base64"
    )
    assert "//48c2NyaXB0PndpbmRvdy5fX3B3bmVkPSdiaW5hcnknPC9zY3JpcHQ+" in binary
    await assert_inert(page, inspector, "/admin/dead", shows=evil_type)
    rejected = await assert_inert(
        page, inspector, "/admin/rejected", shows=SCRIPT.format("rejected")
    )
    assert "wrong-key-123" not in rejected  # the api-key source's key header is redacted
    await assert_inert(page, inspector, "/admin/targets")
    await assert_inert(
        page, inspector, "/admin/targets/fifo/blocked", shows=SCRIPT.format("key")
    )  # a FIFO key comes from the payload
    searched = await inspector.api(
        "/admin/api/replays", filter={"q": SCRIPT.format("filter")}, dry_run=True
    )
    replayed = await inspector.api(f"/admin/api/events/{json_event}/replay", new_key=False)
    await assert_inert(page, inspector, "/admin/replays", shows=SCRIPT.format("filter"))
    await assert_inert(
        page, inspector, f"/admin/replays/{searched['id']}", shows=SCRIPT.format("filter")
    )
    await assert_inert(page, inspector, f"/admin/replays/{replayed['id']}", shows=json_event)
    origin = inspector.url("/")
    assert fetched and [url for url in fetched if not url.startswith(origin)] == []  # no CDN
    assert any(url.endswith(".css") or ".css?" in url for url in fetched)
