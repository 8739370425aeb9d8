"""Compressed bodies: stored, verified and relayed as the wire bytes; inflated, bounded,
only for routing."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import uuid
import zlib

import asyncpg
import brotli
import pytest
from conftest import make_config

SECRET = "wire-secret"
BODY = b'{"type": "order.created", "id": "ord_1", "padding": "' + b"x" * 200 + b'"}'


def config(database_url: str, target_url: str, verify: bool = False, max_body: str = "1MiB"):
    check = f'verify: {{type: github, secret: "{SECRET}"}}' if verify else ""
    return make_config(
        database_url,
        f"""
server: {{max_body: {max_body}}}
sources:
  shop:
    event_type: "json:type"
    dedupe: false
    {check}
targets: {{sink: {{url: "{target_url}"}}}}
routes:
  - {{source: shop, targets: [sink], filter: {{event_type: ["order.*"]}}}}
""",
    )


def signature(data: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": uuid.uuid4().hex}


async def stored(database_url: str, event_id: str):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT event_type, body, headers FROM hookgate.events WHERE id = $1",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("br", brotli.compress(BODY)),
    ],
)
async def test_a_compressed_body_is_stored_and_relayed_as_received(
    database_url, target, gateway, encoding, wire
):
    sink = await target()
    client = await gateway(config(database_url, sink.url))
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    response = await client.post("/in/shop", data=wire, headers=headers)
    assert response.status == 202, await response.text()
    row = await stored(database_url, (await response.json())["id"])
    assert row["body"] == wire  # the wire bytes, not the inflated ones
    assert row["event_type"] == "order.created"  # read from the inflated copy
    assert ["Content-Encoding", encoding] in json.loads(row["headers"])  # stored with its coding
    await sink.recorder.wait_for(1)
    sent_headers, sent_body = sink.recorder.requests[0]
    assert sent_body == wire
    assert sent_headers["Content-Encoding"] == encoding


async def test_hmac_is_checked_over_the_wire_bytes(database_url, target, gateway):
    sink = await target()
    client = await gateway(config(database_url, sink.url, verify=True))
    wire = gzip.compress(BODY)
    over_wire = await client.post(
        "/in/shop", data=wire, headers={"Content-Encoding": "gzip", **signature(wire)}
    )
    assert over_wire.status == 202
    over_inflated = await client.post(
        "/in/shop", data=wire, headers={"Content-Encoding": "gzip", **signature(BODY)}
    )
    assert over_inflated.status == 401


@pytest.mark.parametrize(
    ("encoding", "wire", "status"),
    [
        ("gzip", BODY, 400),  # claims gzip, is not
        ("gzip", gzip.compress(BODY)[:-10], 400),  # cut short
        ("br", b"\xffnope", 400),
        ("compress", BODY, 415),
    ],
)
async def test_a_body_that_does_not_decode_is_a_clear_4xx(
    database_url, target, gateway, encoding, wire, status
):
    sink = await target()
    client = await gateway(config(database_url, sink.url))
    response = await client.post("/in/shop", data=wire, headers={"Content-Encoding": encoding})
    assert response.status == status
    assert "Content-Encoding" in (await response.json())["error"]


async def test_a_gzip_bomb_is_413(database_url, target, gateway):
    sink = await target()
    client = await gateway(config(database_url, sink.url, max_body="64KiB"))
    bomb = gzip.compress(b'{"type": "order.created", "x": "' + b"0" * (8 * 1024 * 1024) + b'"}')
    assert len(bomb) < 64 * 1024
    response = await client.post("/in/shop", data=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status == 413
    assert (await client.get("/healthz")).status == 200


async def test_a_source_that_does_not_read_the_body_stores_it_without_inflating(
    database_url, target, gateway
):
    sink = await target()
    client = await gateway(
        make_config(
            database_url,
            f"""
sources: {{raw: {{event_type: "header:X-Kind"}}}}
targets: {{sink: {{url: "{sink.url}"}}}}
routes: [{{source: raw, targets: [sink]}}]
""",
        )
    )
    wire = b"opaque bytes, not gzip"
    response = await client.post(
        "/in/raw", data=wire, headers={"Content-Encoding": "gzip", "X-Kind": "k"}
    )
    assert response.status == 202  # nothing here needed the JSON: it is relayed as it came
    await sink.recorder.wait_for(1)
    assert sink.recorder.requests[0][1] == wire


async def test_a_transform_that_writes_a_new_body_drops_the_encoding(database_url, target, gateway):
    sink = await target()
    client = await gateway(
        make_config(
            database_url,
            f"""
sources: {{shop: {{event_type: "header:X-Kind"}}}}
targets:
  sink:
    url: "{sink.url}"
    middleware: [{{type: transform, body: '{{"kind": "new"}}'}}]
routes: [{{source: shop, targets: [sink]}}]
""",
        )
    )
    wire = gzip.compress(BODY)
    headers = {"Content-Encoding": "gzip", "X-Kind": "k"}
    assert (await client.post("/in/shop", data=wire, headers=headers)).status == 202
    await sink.recorder.wait_for(1)
    sent_headers, sent_body = sink.recorder.requests[0]
    assert sent_body == b'{"kind": "new"}'
    assert "Content-Encoding" not in sent_headers  # the new body is not gzip
