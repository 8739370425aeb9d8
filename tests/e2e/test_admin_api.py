"""The admin JSON API through the whole app: listing, one event in full, filters, errors."""

from __future__ import annotations

import uuid

from conftest import make_config

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config_text(url: str, extra: str = "") -> str:
    return f"""
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type"}}
  other: {{}}
targets:
  billing: {{url: "{url}"}}
routes:
  - {{source: shop, targets: [billing]}}
{extra}"""


async def ingest(client, body: bytes, source: str = "shop", **headers: str) -> str:
    response = await client.post(f"/in/{source}", data=body, headers=headers)
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def test_events_are_listed_newest_first_and_shown_in_full(
    database_url, target, gateway, clock
):
    billing = await target()
    client = await gateway(make_config(database_url, config_text(billing.url)))
    first = await ingest(client, b'{"type": "order.paid", "n": 1}')
    clock.advance(1)
    second = await ingest(client, b'{"type": "order.created", "n": 2}', Authorization="Bearer x")
    await billing.recorder.wait_for(2)

    listed = await client.get("/admin/api/events", headers=AUTH)
    assert listed.status == 200
    page = await listed.json()
    assert [e["id"] for e in page["items"]] == [second, first]
    assert page["next_cursor"] is None

    detail = await (await client.get(f"/admin/api/events/{second}", headers=AUTH)).json()
    assert detail["request"]["body"]["text"] == '{"type": "order.created", "n": 2}'
    assert ["Authorization", "Bearer [redacted]"] in detail["request"]["headers"]
    assert detail["matched_routes"] == [{"index": 0, "targets": ["billing"]}]
    (delivery,) = detail["deliveries"]
    assert delivery["target"] == "billing"
    assert [a["outcome"] for a in delivery["history"]] in ([None], ["HTTP_2XX"])


async def test_without_a_token_the_api_answers_401(database_url, target, gateway):
    client = await gateway(make_config(database_url, config_text((await target()).url)))
    response = await client.get("/admin/api/events")
    assert response.status == 401
    assert (await response.json())["error"]
    wrong = await client.get("/admin/api/events", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401


async def test_an_unknown_event_is_404(database_url, target, gateway):
    client = await gateway(make_config(database_url, config_text((await target()).url)))
    response = await client.get(f"/admin/api/events/{uuid.uuid4()}", headers=AUTH)
    assert response.status == 404
    assert await response.json() == {"error": "no event with this id"}
