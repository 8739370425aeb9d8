"""The admin commands against a real running hookgate: events, show, replay, tail, listen, targets."""

from __future__ import annotations

import asyncio
import io

import pytest
from aiohttp import web
from conftest import make_config

from gateway import keys
from gateway.admin.cli import wants_api
from gateway.cli import _parser
from gateway.errors import HookgateError

TOKEN = "cli-token"
CONFIG = f"""
admin: {{tokens: {{dev: "{TOKEN}"}}}}
sources:
  shop: {{event_type: "json:type"}}
  other: {{}}
  keyed: {{verify: {{type: api-key, secret: "gw-secret", query: key}}}}
targets:
  billing: {{url: "URL", retry: {{schedule: [], jitter: 0}}}}
routes:
  - {{source: shop, targets: [billing]}}
"""


async def run(client, *argv: str) -> str:
    args = _parser().parse_args([*argv, "--url", str(client.make_url("")), "--token", TOKEN])
    out = io.StringIO()
    assert await asyncio.wait_for(args.arun(args, out), 20) == 0
    return out.getvalue()


async def started(database_url, target, gateway, status: int = 200):
    billing = await target()
    billing.recorder.script = [(status, {}, b"answer")]
    client = await gateway(make_config(database_url, CONFIG.replace("URL", billing.url)))
    return client, billing


async def until_dead(client, event_id: str) -> None:
    """Until the event's delivery is recorded dead (bounded)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(200):
        detail = await (await client.get(f"/admin/api/events/{event_id}", headers=auth)).json()
        if detail["deliveries"][0]["status"] == "dead":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the delivery never died")


async def ingest(client, body: bytes, source: str = "shop", **headers: str) -> str:
    response = await client.post(f"/in/{source}", data=body, headers=headers)
    return str((await response.json())["id"])


async def test_events_show_and_targets(database_url, target, gateway):
    client, _ = await started(database_url, target, gateway, status=500)
    event_id = await ingest(client, b'{"type": "order.paid"}')
    await until_dead(client, event_id)

    listed = await run(client, "events", "--type", "order.*")
    assert event_id in listed and "order.paid" in listed
    assert event_id not in await run(client, "events", "--source", "other")
    shown = await run(client, "show", event_id)
    assert '{"type": "order.paid"}' in shown and "billing: dead" in shown and "HTTP_5XX" in shown
    targets = await run(client, "targets")
    assert targets.startswith("billing\tactive\tpending 0\tdue 0\tin flight 0\tqueued 0\tdead 1")


async def test_replay_one_and_by_filter_with_a_dry_run(database_url, target, gateway):
    client, billing = await started(database_url, target, gateway, status=500)
    event_id = await ingest(client, b'{"type": "a"}')
    await until_dead(client, event_id)

    dry = await run(
        client, "replay", "--filter", "status=dead", "--filter", "source=shop", "--dry-run"
    )
    assert dry.startswith("would replay 1 deliveries (billing: 1)")
    assert (await run(client, "replay", event_id)).startswith("replayed 1 deliveries (billing: 1)")
    await billing.recorder.wait_for(2)
    keys = {h["Idempotency-Key"] for h, _ in billing.recorder.requests}
    assert len(keys) == 1
    with pytest.raises(HookgateError, match="not both or neither"):
        await run(client, "replay")


class Output(io.StringIO):
    """What a command printed so far, awaitable line by line."""

    async def until(self, text: str) -> str:
        for _ in range(400):
            if text in self.getvalue():
                return self.getvalue()
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never printed; so far: {self.getvalue()!r}")


async def test_tail_follows_new_events_and_their_attempts(database_url, target, gateway):
    client, billing = await started(database_url, target, gateway, status=503)
    args = _parser().parse_args(
        ["tail", "--count", "2", "--url", str(client.make_url("")), "--token", TOKEN]
    )
    out = Output()
    task = asyncio.create_task(args.arun(args, out))
    first = await ingest(client, b'{"type": "live"}')
    printed = await out.until(" HTTP_5XX 503")  # billing's answer to the first, live
    assert f"{first}  shop  live" in printed
    (delivery,) = (
        await (
            await client.get(
                f"/admin/api/events/{first}", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        ).json()
    )["deliveries"]
    assert f"{delivery['id']} → billing  #1 HTTP_5XX 503" in printed
    second = await ingest(client, b"later", source="other")  # no type, no route
    assert await asyncio.wait_for(task, 20) == 0  # the second event was the last one
    assert f"{second}  other  -  5 bytes" in out.getvalue()
    assert len(billing.recorder.requests) == 1


async def test_listen_forwards_the_original_request(database_url, target, gateway, aiohttp_server):
    client, _ = await started(database_url, target, gateway)
    received: list[tuple[str, str, list[tuple[str, str]], bytes]] = []

    async def laptop_hook(request: web.Request) -> web.Response:
        headers = [(k.decode(), v.decode()) for k, v in request.raw_headers]
        received.append((request.method, request.path_qs, headers, await request.read()))
        return web.Response(status=204)

    laptop = web.Application(handler_args={"auto_decompress": False})
    laptop.router.add_route("*", "/hooks", laptop_hook)
    local = str((await aiohttp_server(laptop)).make_url("/hooks"))
    task = asyncio.create_task(
        run(client, "listen", "--forward", local, "--source", "other", "--count", "1")
    )
    await ingest(client, b'{"ignored": true}')  # another source: not forwarded
    response = await client.post(
        "/in/other?shop=a%20b&n=1",
        data=b"\x00raw bytes\xff",
        headers=[("X-Signature", "sig=1"), ("Authorization", "Bearer secret"),
                 ("Content-Type", "application/octet-stream"), ("X-Second", "two")],
    )  # fmt: skip
    event_id = (await response.json())["id"]
    out = await task
    assert out == f"{event_id}  other  → 204 {local}\n"
    ((method, path_qs, headers, body),) = received
    assert (method, path_qs, body) == ("POST", "/hooks?shop=a%20b&n=1", b"\x00raw bytes\xff")
    names = [name for name, _ in headers]
    assert "Authorization" not in names  # a redacted credential is not forwarded
    sent = [(n, v) for n, v in headers if n in ("X-Signature", "Content-Type", "X-Second")]
    assert sent == [
        ("X-Signature", "sig=1"),
        ("Content-Type", "application/octet-stream"),
        ("X-Second", "two"),
    ]  # the provider's headers, in the provider's order


async def test_listen_forwards_no_credential_of_hookgates_in_the_query(
    database_url, target, gateway, aiohttp_server
):
    client, _ = await started(database_url, target, gateway)
    received: list[tuple[str, list[tuple[str, str]]]] = []

    async def laptop_hook(request: web.Request) -> web.Response:
        received.append((request.rel_url.raw_path_qs, list(request.headers.items())))
        return web.Response(status=204)

    laptop = web.Application()
    laptop.router.add_route("*", "/hooks", laptop_hook)
    local = str((await aiohttp_server(laptop)).make_url("/hooks"))
    task = asyncio.create_task(
        run(client, "listen", "--forward", local, "--source", "keyed", "--count", "1")
    )
    response = await client.post("/in/keyed?a=1&key=gw-secret&b=%20", data=b"{}")
    assert response.status == 202
    await task
    ((path_qs, _),) = received
    assert path_qs == "/hooks?a=1&b=%20"  # the key parameter is dropped, like a redacted header
    assert "gw-secret" not in repr(received) and "redacted" not in repr(received)


@pytest.mark.parametrize("command", ["tail", "listen"])
async def test_tail_and_listen_say_so_when_the_server_ends_the_stream(
    database_url, target, gateway, command
):
    client, _ = await started(database_url, target, gateway)
    extra = ["--forward", "http://127.0.0.1:9/nothing-listens"] if command == "listen" else []
    argv = [command, *extra, "--url", str(client.make_url("")), "--token", TOKEN]
    args = _parser().parse_args(argv)
    out = Output()
    task = asyncio.create_task(args.arun(args, out))
    event_id = await ingest(client, b'{"type": "live"}')
    await out.until(event_id)  # the command follows the stream
    await client.app[keys.ADMIN_STREAM].close()  # what the server's shutdown does
    with pytest.raises(HookgateError, match="ended: the server closed it"):
        await asyncio.wait_for(task, 20)


async def test_a_wrong_token_is_a_clear_error(database_url, target, gateway):
    client, _ = await started(database_url, target, gateway)
    args = _parser().parse_args(["events", "--url", str(client.make_url("")), "--token", "nope"])
    with pytest.raises(HookgateError, match="401: invalid token"):
        await args.arun(args, io.StringIO())


async def test_the_url_and_token_come_from_the_environment(
    database_url, target, gateway, monkeypatch
):
    client, _ = await started(database_url, target, gateway)
    event_id = await ingest(client, b'{"type": "from.env"}')
    monkeypatch.setenv("HOOKGATE_URL", str(client.make_url("")))
    monkeypatch.setenv("HOOKGATE_ADMIN_TOKEN", TOKEN)
    for argv in (["events"], ["targets"]):
        args = _parser().parse_args(argv)
        if argv == ["targets"]:  # HOOKGATE_URL and no --config: the API, not the database
            assert wants_api(args)
            assert not wants_api(_parser().parse_args([*argv, "--config", "h.yaml"]))
        out = io.StringIO()
        assert await asyncio.wait_for(args.arun(args, out), 20) == 0
        assert (event_id if argv == ["events"] else "billing\tactive") in out.getvalue()
    monkeypatch.delenv("HOOKGATE_ADMIN_TOKEN")
    args = _parser().parse_args(["events"])
    with pytest.raises(HookgateError, match="--token or HOOKGATE_ADMIN_TOKEN"):
        await args.arun(args, io.StringIO())
