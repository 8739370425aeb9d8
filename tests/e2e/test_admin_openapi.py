"""The OpenAPI document is checked against the API's real answers, endpoint by endpoint."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import jsonschema
from conftest import make_config
from openapi_spec_validator import validate

TOKEN = "openapi-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = f"""
admin: {{tokens: {{ops: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type", verify: {{type: api-key, secret: k}}}}
targets:
  billing: {{url: "URL", retry: {{schedule: [], jitter: 0}}, ordering: {{key: "json:c", on_dead: block}}}}
routes:
  - {{source: shop, targets: [billing]}}
"""


class Checker:
    """Validates each answer against the document's schema for its path, method and status."""

    def __init__(self, client, document: dict[str, Any]) -> None:
        self.client, self.document = client, document
        self.seen: set[tuple[str, str]] = set()

    def template(self, path: str) -> str:
        for candidate in self.document["paths"]:
            pattern = re.sub(r"\{[a-z]+\}", "[^/]+", candidate)
            if re.fullmatch(pattern, path):
                return candidate
        raise AssertionError(f"{path} is not in the OpenAPI document")

    async def call(
        self, method: str, url: str, expect: int = 200, auth: bool = True, **kwargs: Any
    ) -> Any:
        headers = AUTH if auth else {}
        response = await self.client.request(method, url, headers=headers, **kwargs)
        assert response.status == expect, await response.text()
        data = await response.json()
        path = self.template(url.split("?")[0])
        operation = self.document["paths"][path][method.lower()]
        schema = operation["responses"][str(expect)]["content"]["application/json"]["schema"]
        jsonschema.validate(data, {**schema, "components": self.document["components"]},
                            format_checker=jsonschema.FormatChecker())  # fmt: skip
        self.seen.add((path, method.lower()))
        return data


async def test_every_answer_matches_the_openapi_document(database_url, target, gateway, clock):
    billing = await target()
    billing.recorder.script = [(400, {}, b"no")]
    client = await gateway(make_config(database_url, CONFIG.replace("URL", billing.url)))
    document = await (await client.get("/admin/api/openapi.json", headers=AUTH)).json()
    validate(document)  # a valid OpenAPI document (3.1's meta-schema), not only a readable one
    assert document["openapi"] == "3.1.0"
    jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})
    api = Checker(client, document)

    first = (
        await (
            await client.post(
                "/in/shop", data=b'{"type": "a", "c": "k1"}', headers={"X-API-Key": "k"}
            )
        ).json()
    )["id"]
    await client.post("/in/shop", data=b"{}", headers={"X-API-Key": "wrong"})  # rejected
    for _ in range(100):
        detail = await api.call("GET", f"/admin/api/events/{first}")
        if detail["deliveries"][0]["status"] == "dead":
            break
        await asyncio.sleep(0.05)
    assert ["X-API-Key", "[redacted]"] in detail["request"]["headers"]
    clock.advance(1)
    second = (
        await (
            await client.post(
                "/in/shop", data=b'{"type": "b", "c": "k1"}', headers={"X-API-Key": "k"}
            )
        ).json()
    )["id"]

    await api.call("GET", "/admin/api/me")
    await api.call("GET", "/admin/api/events?status=dead&type=a*&q=k1&since=1h")
    await api.call("GET", "/admin/api/events?limit=1")
    await api.call("GET", "/admin/api/deliveries?status=dead&target=billing")
    await api.call("GET", "/admin/api/rejected?source=shop")
    await api.call("GET", "/admin/api/targets")
    await api.call("GET", "/admin/api/targets/billing/blocked")
    await api.call("GET", "/admin/api/dashboard")
    await api.call("POST", "/admin/api/targets/billing/pause", json={"reason": "r"})
    await api.call("POST", "/admin/api/targets/billing/resume")
    await api.call("POST", "/admin/api/targets/billing/release", json={"key": "k1"})
    await api.call("GET", "/admin/api/targets/billing")
    await api.call("POST", "/admin/api/replays", json={"filter": {"status": "dead"}})
    clock.advance(1)
    real = await api.call(
        "POST", "/admin/api/replays", 201, json={"filter": {"status": "dead"}, "dry_run": False}
    )
    await api.call("POST", f"/admin/api/events/{second}/replay", 201, json={"targets": ["billing"]})
    await api.call("GET", "/admin/api/replays")
    await api.call("GET", f"/admin/api/replays/{real['id']}")
    await api.call("GET", f"/admin/api/events/{second}")
    await api.call("POST", "/admin/api/targets/billing/pause", json={})
    clock.advance(1)
    third = (
        await (
            await client.post("/in/shop", data=b'{"type": "c"}', headers={"X-API-Key": "k"})
        ).json()
    )["id"]
    delivery = (await api.call("GET", f"/admin/api/events/{third}"))["deliveries"][0]["id"]
    await api.call("POST", f"/admin/api/deliveries/{delivery}/cancel")
    await api.call("POST", f"/admin/api/deliveries/{delivery}/cancel", 409)
    await api.call("GET", "/admin/api/events/019b76da-a800-7761-8a2a-81dd1bbd9b18", 404)
    await api.call("GET", "/admin/api/events?status=colour", 400)
    await api.call("POST", f"/admin/api/events/{third}/replay", 422, json={"targets": ["nope"]})
    await api.call("GET", "/admin/api/targets/nope", 404)
    await api.call("GET", "/admin/api/events", 401, auth=False)
    signed_in = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
    assert signed_in.status == 303
    await api.call("POST", "/admin/api/targets/billing/resume", 403, auth=False)  # no CSRF
    client.session.cookie_jar.clear()

    documented = {(p, m) for p, ops in document["paths"].items() for m in ops}
    untested = (
        documented - api.seen - {("/admin/api/openapi.json", "get"), ("/admin/api/stream", "get")}
    )
    assert not untested
    routes = {(r.resource.canonical, r.method.lower()) for r in client.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/admin/api") and r.method != "HEAD"}  # fmt: skip
    assert routes == documented
