"""With encryption on, no file of the database (tables, WAL) holds a request's body or
header values in the clear, while the target still gets them as sent.

A throwaway embedded cluster (the gateway starts it under data_dir), so the test can read
every file of its data directory; a control row written in the clear proves the search
would have found the body."""

from __future__ import annotations

import base64
import json
import os
import uuid

import asyncpg
import pytest

from gateway import keys
from gateway.app import create_app
from gateway.config import parse_config

KEY = base64.b64encode(os.urandom(32)).decode()


def files_holding(root, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and needle in p.read_bytes()]  # fmt: skip


@pytest.mark.timeout(120)
async def test_no_database_file_holds_a_plaintext_body(tmp_path, target, aiohttp_client):
    billing = await target()
    config = parse_config(
        f"""
database: {{data_dir: '{tmp_path}', pool_size: 4}}
encryption: {{keys: {{k1: '{KEY}'}}, active: k1}}
sources: {{shop: {{event_type: "json:type"}}}}
targets: {{billing: {{url: "{billing.url}", forward_headers: [X-Customer]}}}}
routes: [{{source: shop, targets: [billing]}}]
""",
        env={},
    )
    client = await aiohttp_client(create_app(config))
    secret = f"ann-{uuid.uuid4().hex}@example.com"
    body = json.dumps({"type": "order.paid", "email": secret}).encode()

    response = await client.post("/in/shop", data=body, headers={"X-Customer": f"h-{secret}"})

    assert response.status == 202
    await billing.recorder.wait_for(1, timeout=60)  # an embedded server on a busy machine
    headers, delivered = billing.recorder.requests[0]
    assert delivered == body and headers["X-Customer"] == f"h-{secret}"
    control = f"control-{uuid.uuid4().hex}"
    conn = await asyncpg.connect(client.app[keys.DSN])
    try:
        await conn.execute("CREATE TABLE public.control (t text)")
        await conn.execute("INSERT INTO public.control VALUES ($1)", control)
        await conn.execute("CHECKPOINT")  # every page written to its file
    finally:
        await conn.close()
    pgdata = tmp_path / "pg"
    assert files_holding(pgdata, control.encode())  # the search does find plaintext
    assert any("pg_wal" in f for f in files_holding(pgdata, control.encode()))
    assert files_holding(pgdata, secret.encode()) == []
