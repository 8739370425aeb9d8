"""The inspector in headless Chromium: sign in, find an event, open it, replay it and see
the new attempt arrive; bulk-replay dead letters after a dry run; sign out."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from browser.conftest import Inspector, sign_in
from gateway.ui.pages import READ


def accept_dialogs(page: Any) -> None:
    """Say OK to every confirm() the page asks (the replay and pause buttons ask)."""
    page.on("dialog", lambda dialog: dialog.accept())


async def test_find_an_event_open_it_replay_it_and_see_the_new_attempt_arrive(
    inspector: Inspector, browser: Any
) -> None:
    for n in range(3):
        await inspector.ingest(b'{"type": "order.paid", "id": "ord_%d"}' % n)
    wanted = await inspector.ingest(b'{"type": "order.refunded", "id": "needle-42"}')
    await inspector.until_delivered(wanted)  # a replay leaves a delivery in flight alone
    page = await browser.new_page()
    accept_dialogs(page)
    await sign_in(page, inspector, "/admin/events")
    assert await page.locator("tbody tr").count() == 4

    live = await inspector.ingest(b'{"type": "order.created", "id": "live-1"}')
    await page.locator(f'tr[data-key="{live}"]').wait_for()  # arrived without a reload

    await page.fill("input[name=q]", "needle-42")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(re.compile(r"/admin/events\?q=needle-42$"))  # no empty filters
    rows = page.locator("tbody tr")
    assert await rows.count() == 1
    assert await rows.first.get_attribute("data-key") == wanted
    await rows.first.locator("a").first.click()
    await page.wait_for_url(re.compile(f"/admin/events/{wanted}$"))
    assert not await page.locator("#body-raw").is_visible()  # JSON shows pretty first
    await page.get_by_role("button", name="Raw").click()
    assert (
        await page.locator("#body-raw").inner_text()
        == '{"type": "order.refunded", "id": "needle-42"}'
    )
    billing = page.locator('section[aria-label="delivery to billing"]')
    assert await billing.locator("li.attempt").count() == 1
    assert "delivered" in await billing.locator(".pill").first.inner_text()

    inspector.billing.recorder.hold = asyncio.Event()  # the replayed attempt waits for us
    await billing.get_by_role("button", name="Replay to billing").click()
    await page.wait_for_url(re.compile(f"/admin/events/{wanted}\\?notice=replayed&n=1$"))
    await inspector.billing.recorder.wait_for(6)
    answered = billing.locator('li.attempt[data-attempt="2"]', has_text="HTTP_2XX")
    assert await answered.count() == 0  # in flight at most: billing has not answered yet
    inspector.billing.recorder.hold.set()
    await answered.wait_for()  # brought by the live stream, no reload
    assert "replayed by ops" in await billing.inner_text()
    headers, _ = inspector.billing.recorder.requests[-1]
    assert headers["X-Hookgate-Event-Id"] == wanted  # a replay keeps the event's identity


async def test_bulk_replay_of_dead_letters_shows_the_dry_run_count_first(
    inspector: Inspector, browser: Any, clock: Any
) -> None:
    inspector.billing.recorder.script = [(400, {}, b"no such customer")] * 3
    for n in range(3):
        await inspector.ingest(b'{"type": "invoice.paid", "id": "inv_%d"}' % n)
    await inspector.until_dead(3)
    await inspector.crm.recorder.wait_for(3)
    page = await browser.new_page()
    accept_dialogs(page)
    await sign_in(page, inspector, "/admin/dead?target=billing")
    assert await page.locator("tbody tr[data-key]").count() == 3

    await page.get_by_role("button", name="Replay these… (dry run first)").click()
    await page.wait_for_url(re.compile(r"/admin/dead/replay$"))
    assert await page.inner_text("#dry-run-count") == "3 dead deliveries would be sent again"
    assert len(inspector.billing.recorder.requests) == 3  # a dry run sends nothing

    clock.advance(5)  # someone reads the count, then confirms
    await page.click("#confirm-replay")
    await page.wait_for_url(re.compile(r"/admin/replays/[0-9a-f-]+\?notice=replayed&n=3$"))
    clock.advance(60)  # replays are spread out in time; let them all come due
    await inspector.billing.recorder.wait_for(6)
    assert len(inspector.crm.recorder.requests) == 3  # only what was dead went again

    await page.goto(inspector.url("/admin/replays"))
    kinds = await page.locator("tbody tr").all_inner_texts()
    assert len(kinds) == 2
    assert "replayed" in kinds[0] and "dry run" in kinds[1]


async def test_every_page_needs_a_session_and_signing_out_ends_it(
    inspector: Inspector, browser: Any
) -> None:
    page = await browser.new_page()
    some_id = "0193f3c5-0000-7000-8000-000000000000"
    paths = [p.replace("{id}", some_id).replace("{name}", "billing") for p, *_ in READ]
    for path in paths:  # the browser's own requests, without rendering each login page
        answer = await page.request.get(inspector.url(path), max_redirects=0)
        assert answer.status == 303, path
        assert answer.headers["location"].startswith("/admin/login?next="), path
    await page.goto(inspector.url("/admin/events?q=x"))
    assert page.url.endswith("/admin/login?next=%2Fadmin%2Fevents%3Fq%3Dx")
    await sign_in(page, inspector, "/admin/targets")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/admin/login$"))
    await page.goto(inspector.url("/admin/targets"))
    assert "/admin/login?next=" in page.url

    await page.fill("input[name=token]", "not-the-token")
    await page.click("button[type=submit]")
    assert "That token is not valid." in await page.inner_text("[role=alert]")
