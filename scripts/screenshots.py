"""Screenshots of the inspector's main pages for the README (docs/screenshots/*.png).

Runs the whole gateway (relay included) on DATABASE_URL, or on an embedded PostgreSQL in
a temporary directory, with three local sinks as targets; feeds it an hour of webhooks
on a clock that starts an hour ago and catches up with the wall clock (some fail, some
retry, some go dead, one target is paused), replays a little, then opens each page in
headless Chromium (tests/browser/chromium.py) and saves it.

    scripts/screenshots [--out docs/screenshots] [--width 1280]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser.chromium import browser_context, chromium_process  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.send import SendRequest, signed_request  # noqa: E402

TOKEN = "screenshot-token"
SECRET = "gh-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGES = {
    "dashboard": "/admin",
    "events": "/admin/events",
    "dead-letters": "/admin/dead",
    "targets": "/admin/targets",
    "rejected": "/admin/rejected",
    "replays": "/admin/replays",
}


class CatchUpClock:
    """The wall clock, `behind` seconds late; the seeding brings it to 0."""

    def __init__(self, behind: float) -> None:
        self.behind = behind

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.behind)


class Sinks:
    """The internal services: billing fails now and then, crm refuses some customers."""

    def __init__(self) -> None:
        self.crm_fixed = False
        self.rng = random.Random(7)

    async def billing(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.rng.uniform(0.005, 0.04))
        if self.rng.random() < 0.08:
            return web.json_response({"error": "database is locked"}, status=503)
        return web.json_response({"ok": True})

    async def crm(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if body.get("data", {}).get("customer", "").endswith("7") and not self.crm_fixed:
            return web.json_response({"error": "unknown customer"}, status=422)
        return web.Response(text="accepted")

    async def search(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.rng.uniform(0.02, 0.12))
        return web.Response(status=204)


def config_text(sink: str, data_dir: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    return f"""
database: {{url: "{url}", data_dir: "{data_dir}"}}
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  stripe: {{event_type: "json:type"}}
  github: {{event_type: "header:X-GitHub-Event", verify: {{type: github, secret: {SECRET}}}}}
targets:
  billing: {{url: "{sink}/billing", retry: {{schedule: [20s, 2m, 10m]}}}}
  crm: {{url: "{sink}/crm", retry: {{schedule: [1m]}}}}
  search: {{url: "{sink}/search"}}
  warehouse: {{url: "{sink}/search"}}
routes:
  - source: stripe
    targets: [billing, crm]
    filter: {{event_type: ["invoice.*", "charge.*", "customer.*"]}}
  - {{source: stripe, targets: [search]}}
  - {{source: github, targets: [search, warehouse]}}
"""


STRIPE_TYPES = ["invoice.paid", "charge.succeeded", "customer.updated", "invoice.created",
                "payout.paid", "charge.refunded"]  # fmt: skip


async def seed(http: aiohttp.ClientSession, base: str, clock: CatchUpClock) -> None:
    rng = random.Random(42)
    await http.post(f"{base}/admin/api/targets/warehouse/pause", headers=AUTH,
                    json={"reason": "warehouse schema migration until 18:00"})  # fmt: skip
    for minute in range(60):
        clock.behind = (60 - minute) * 60.0
        for n in range(2 + int(3 * (1 + (minute % 20) / 10)) + rng.randint(0, 3)):
            kind = rng.choice(STRIPE_TYPES)
            customer = f"cus_{rng.randint(1000, 9999)}"
            body = {"id": f"evt_{minute:02d}{n:02d}{rng.randint(100, 999)}", "type": kind,
                    "data": {"customer": customer, "amount": rng.randint(500, 90000)}}  # fmt: skip
            await http.post(f"{base}/in/stripe", json=body)
        if minute % 6 == 0:
            await github_push(http, base, minute)
        if minute % 17 == 3:
            forged = {"X-Hub-Signature-256": "sha256=00", "X-GitHub-Event": "push"}
            await http.post(f"{base}/in/github", data=b'{"zen": "forged"}', headers=forged)
        await asyncio.sleep(0.25)
    clock.behind = 0.0
    await asyncio.sleep(2)


async def github_push(http: aiohttp.ClientSession, base: str, minute: int) -> None:
    payload = {"ref": "refs/heads/main", "after": f"{minute:040x}",
               "repository": {"full_name": "acme/shop"}, "pusher": {"name": "dana"}}  # fmt: skip
    request = SendRequest(
        "github", f"{base}/in/github", {"secret": SECRET}, json.dumps(payload).encode()
    )
    body, headers = signed_request(request)
    headers |= {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"d-{minute}",
                "Authorization": "token ghp_live_should_never_show"}  # fmt: skip
    await http.post(f"{base}/in/github", data=body, headers=headers)


async def replays(http: aiohttp.ClientSession, base: str, sinks: Sinks) -> str:
    """Fix crm, replay one of its dead events, dry-run the rest; the replayed event's id."""
    dead = await (
        await http.get(f"{base}/admin/api/deliveries?status=dead&target=crm", headers=AUTH)
    ).json()
    event = dead["items"][0]["event_id"]
    sinks.crm_fixed = True
    await http.post(
        f"{base}/admin/api/events/{event}/replay", headers=AUTH, json={"targets": ["crm"]}
    )
    dry_run = {"filter": {"status": "dead", "target": "crm"}, "dry_run": True}
    await http.post(f"{base}/admin/api/replays", headers=AUTH, json=dry_run)
    await asyncio.sleep(2)
    return str(event)


async def shoot(base: str, out: Path, event: str, width: int) -> None:
    with chromium_process() as endpoint:
        async with browser_context(endpoint, width=width, height=820) as context:
            page = await context.new_page()
            await page.goto(f"{base}/admin/login")
            await page.fill("input[name=token]", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/admin")
            for name, path in {**PAGES, "event": f"/admin/events/{event}"}.items():
                await page.goto(base + path)
                await page.screenshot(path=str(out / f"{name}.png"), full_page=name == "event")
                print(out / f"{name}.png")


async def main(out: Path, width: int) -> None:
    sinks = Sinks()
    sink_app = web.Application()
    sink_app.router.add_post("/billing", sinks.billing)
    sink_app.router.add_post("/crm", sinks.crm)
    sink_app.router.add_post("/search", sinks.search)
    sink_runner = web.AppRunner(sink_app, access_log=None)
    await sink_runner.setup()
    sink_site = web.TCPSite(sink_runner, "127.0.0.1", 0)
    await sink_site.start()
    sink = f"http://127.0.0.1:{sink_runner.addresses[0][1]}"
    clock = CatchUpClock(3600.0)
    with tempfile.TemporaryDirectory(prefix="hookgate-shots-") as data_dir:
        app = create_app(parse_config(config_text(sink, data_dir), env={}), clock=clock)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as http:
            await seed(http, base, clock)
            event = await replays(http, base, sinks)
        await shoot(base, out, event, width)
        await runner.cleanup()
    await sink_runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1280, help="the browser's width in pixels")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(args.out, args.width))
