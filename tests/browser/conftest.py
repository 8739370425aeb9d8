"""The inspector in a real headless Chromium, against the whole app on a real database.

Outside CI a machine without Chromium (or Playwright) skips these tests with the reason;
with CI=true they fail instead, since CI must run them (`.ci/run` installs Chromium).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Target, make_config

TOKEN = "browser-test-token"


def require_chromium() -> None:
    reason = None
    try:
        from browser.chromium import EXECUTABLE
    except ImportError as exc:  # playwright is not installed
        reason = f"Playwright is not installed ({exc})"
    else:
        if not EXECUTABLE.exists():
            reason = f"no Chromium at {EXECUTABLE} (apt-get install chromium)"
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI must run the browser tests")
    pytest.skip(reason)


def inspector_config(billing: str, crm: str) -> str:
    return f"""
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type"}}
  keyed: {{verify: {{type: api-key, secret: "k-123", header: X-Api-Key}}}}
  ordered: {{}}
targets:
  billing: {{url: "{billing}", retry: {{schedule: [1h]}}}}
  crm: {{url: "{crm}", retry: {{schedule: [1h]}}}}
  fifo: {{url: "http://127.0.0.1:9/refused", retry: {{schedule: []}},
          ordering: {{key: "json:customer", on_dead: block}}}}
routes:
  - {{source: shop, targets: [billing, crm]}}
  - {{source: keyed, targets: [billing]}}
  - {{source: ordered, targets: [fifo]}}
"""


@dataclass
class Inspector:
    client: TestClient[Any, Any]
    billing: Target
    crm: Target

    def url(self, path: str) -> str:
        return str(self.client.server.make_url(path))

    async def until_dead(self, count: int) -> None:
        """Until `count` deliveries are dead (bounded): the answer is recorded after it."""
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(200):
            found = await self.client.get("/admin/api/deliveries?status=dead", headers=auth)
            if len((await found.json())["items"]) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {count} dead deliveries")

    async def until_delivered(self, event: str) -> None:
        """Until the event's deliveries are all delivered (bounded)."""
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(200):
            found = await self.client.get(f"/admin/api/events/{event}", headers=auth)
            deliveries = (await found.json())["deliveries"]
            if deliveries and all(d["status"] == "delivered" for d in deliveries):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{event} was not delivered")

    async def api(self, path: str, **json: Any) -> Any:
        """GET `path` of the admin API, or POST `json` to it when given."""
        auth = {"Authorization": f"Bearer {TOKEN}"}
        if json:
            answer = await self.client.post(path, headers=auth, json=json)
        else:
            answer = await self.client.get(path, headers=auth)
        assert answer.status < 300, await answer.text()
        return await answer.json()

    async def until_blocked(self, target: str) -> None:
        """Until a dead delivery holds a FIFO key of `target` back (bounded)."""
        for _ in range(200):
            if (await self.api(f"/admin/api/targets/{target}/blocked"))["items"]:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no key of {target} was blocked")

    async def ingest(self, body: bytes, source: str = "shop", **headers: str) -> str:
        response = await self.client.post(f"/in/{source}", data=body, headers=headers)
        assert response.status == 202, await response.text()
        return str((await response.json())["id"])


@pytest.fixture
async def inspector(
    database_url: str,
    target: Callable[[], Awaitable[Target]],
    gateway: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> Inspector:
    billing, crm = await target(), await target()
    config = make_config(database_url, inspector_config(billing.url, crm.url))
    return Inspector(await gateway(config), billing, crm)


@pytest.fixture(scope="session")
def chromium_endpoint() -> Iterator[str]:
    """One headless Chromium for the session (fresh profile), by its DevTools endpoint."""
    require_chromium()
    from browser.chromium import chromium_process

    with chromium_process() as endpoint:
        yield endpoint


@pytest.fixture
async def browser(chromium_endpoint: str) -> AsyncIterator[Any]:
    """A browser context of this test's own: no cookies from another test."""
    from browser.chromium import browser_context

    async with browser_context(chromium_endpoint) as context:
        context.set_default_timeout(10_000)
        yield context


async def sign_in(page: Any, inspector: Inspector, path: str = "/admin") -> None:
    """Open `path`, get sent to the login form, sign in, and land back on `path`."""
    await page.goto(inspector.url(path))
    assert "/admin/login" in page.url
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(inspector.url(path))
