"""Reloading the config without a restart: in process, by SIGHUP and `hookgate reload`."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import asyncpg
from structlog.testing import capture_logs
from test_lifecycle import free_port, hookgate, stop, wait_ready

from gateway import keys
from gateway.config import load_config
from gateway.reload import reload
from gateway.storage.migrate import latest_version

SHOP_ONLY = "sources:\n  shop: {}\n"
SHOP_AND_CRM = "sources:\n  shop: {}\n  crm: {verify: {type: api-key, header: X-Key, secret: s3}}\n"


def write(path: Path, database_url: str, sources: str, extra: str = "") -> Path:
    path.write_text(
        f"database: {{url: '{database_url}', data_dir: '{path.parent}'}}\n{extra}{sources}"
    )
    return path


async def test_reload_adds_a_source_that_answers_at_once(tmp_path, database_url, gateway):
    path = write(tmp_path / "h.yaml", database_url, SHOP_ONLY)
    client = await gateway(load_config(path))
    assert (await client.post("/in/crm", data=b"{}", headers={"X-Key": "s3"})).status == 404
    write(path, database_url, SHOP_AND_CRM)
    assert await reload(client.app, path)
    assert (await client.post("/in/crm", data=b"{}", headers={"X-Key": "s3"})).status == 202
    assert (await client.post("/in/crm", data=b"{}", headers={"X-Key": "no"})).status == 401
    assert (await client.post("/in/shop", data=b"{}")).status == 202


async def test_an_invalid_reload_keeps_the_old_config_serving_and_logs_every_error(
    tmp_path, database_url, gateway
):
    path = write(tmp_path / "h.yaml", database_url, SHOP_ONLY)
    client = await gateway(load_config(path))
    path.write_text(
        path.read_text() + "server: {port: many}\nroutes: [{source: nope, targets: []}]\n"
    )
    with capture_logs() as logs:
        assert not await reload(client.app, path)
    (failed,) = [line for line in logs if line["event"] == "config_reload_failed"]
    assert len(failed["errors"]) >= 2
    assert any("server.port" in error for error in failed["errors"])
    assert (await client.post("/in/shop", data=b"{}")).status == 202


async def test_a_request_in_flight_finishes_under_the_config_it_started_with(
    tmp_path, database_url, gateway
):
    path = write(tmp_path / "h.yaml", database_url, SHOP_AND_CRM)
    client = await gateway(load_config(path))
    started, go_on = asyncio.Event(), asyncio.Event()

    async def body():
        yield b'{"a":'
        started.set()
        await go_on.wait()
        yield b"1}"

    request = asyncio.create_task(client.post("/in/crm", data=body(), headers={"X-Key": "s3"}))
    await started.wait()
    await asyncio.sleep(0.05)  # the handler has read the head and the snapshot
    write(path, database_url, SHOP_ONLY)  # crm is gone for new requests
    assert await reload(client.app, path)
    go_on.set()
    assert (await request).status == 202
    assert (await client.post("/in/crm", data=b"{}", headers={"X-Key": "s3"})).status == 404


async def test_removed_target_keeps_its_pending_deliveries_and_is_reported(
    tmp_path, database_url, gateway
):
    routed = "targets:\n  billing: {url: 'http://127.0.0.1:9/hook'}\nroutes: [{source: shop, targets: [billing]}]\n"
    path = write(tmp_path / "h.yaml", database_url, SHOP_ONLY, "relay: {enabled: false}\n" + routed)
    client = await gateway(load_config(path))
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    assert (await client.post("/in/shop", data=b"{}")).status == 202
    await client.app[keys.STORE].pool.execute(  # one of them queued by a bulk replay
        "UPDATE hookgate.deliveries SET status = 'queued'"
        " WHERE id = (SELECT id FROM hookgate.deliveries ORDER BY id LIMIT 1)"
    )
    write(path, database_url, SHOP_ONLY, "relay: {enabled: false}\n")
    with capture_logs() as logs:
        assert await reload(client.app, path)
    (line,) = [line for line in logs if line["event"] == "removed_target_has_pending"]
    assert (line["target"], line["backlog"], line["queued"]) == ("billing", 1, 1)
    # Targets are live: removing one needs no restart.
    assert not any(line["event"] == "config_reload_needs_restart" for line in logs)


async def test_a_reload_applies_relay_settings_and_reports_only_what_needs_a_restart(
    tmp_path, database_url, gateway
):
    client = await gateway(load_config(write(tmp_path / "h.yaml", database_url, SHOP_ONLY)))
    extra = "server: {port: 9999}\ningest: {writers: 2}\nrelay: {enabled: false, batch_size: 7}\n"
    path = write(tmp_path / "h.yaml", database_url, SHOP_AND_CRM, extra)
    with capture_logs() as logs:
        assert await reload(client.app, path)
    (line,) = [line for line in logs if line["event"] == "config_reload_needs_restart"]
    assert line["sections"] == ["server", "ingest", "relay.enabled"]
    assert client.app[keys.RELAY].config.batch_size == 7  # from the next claim
    assert client.app[keys.RELAY].alive()  # relay.enabled: false waits for a restart


async def test_readyz_is_503_when_the_schema_is_not_current(tmp_path, database_url, gateway):
    client = await gateway(load_config(write(tmp_path / "h.yaml", database_url, SHOP_ONLY)))
    assert (await client.get("/readyz")).status == 200
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO hookgate.migrations (version, name) VALUES ($1, 'future')",
            latest_version() + 1,
        )
    finally:
        await conn.close()
    response = await client.get("/readyz")
    assert response.status == 503
    assert "schema" in (await response.json())["error"]


async def test_readyz_is_503_when_the_relay_loop_stopped(tmp_path, database_url, gateway):
    client = await gateway(load_config(write(tmp_path / "h.yaml", database_url, SHOP_ONLY)))
    await client.app[keys.RELAY].stop(1.0)
    response = await client.get("/readyz")
    assert (response.status, (await response.json())["error"]) == (
        503,
        "the relay loop has stopped",
    )


async def post(port: int, source: str) -> int:
    url = f"http://127.0.0.1:{port}/in/{source}"
    async with aiohttp.ClientSession() as session, session.post(url, data=b"{}") as response:
        return response.status


async def until_accepted(port: int, source: str) -> None:
    """The reload is asynchronous to the signal: poll, bounded, until it took effect."""
    for _ in range(200):
        if await post(port, source) == 202:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/in/{source} was never accepted")


async def test_sighup_and_hookgate_reload_reload_a_running_serve(tmp_path, database_url):
    port = free_port()
    server = f"server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: 1s}}\n"
    path = write(tmp_path / "h.yaml", database_url, "sources:\n  shop: {}\n", server)
    async with hookgate("serve", "--config", str(path)) as process:
        await wait_ready(port)
        assert await post(port, "crm") == 404
        write(path, database_url, "sources:\n  shop: {}\n  crm: {}\n", server)
        process.send_signal(signal.SIGHUP)
        await until_accepted(port, "crm")
        write(path, database_url, "sources:\n  shop: {}\n  crm: {}\n  ops: {}\n", server)
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "reload", "--config", str(path),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await command.communicate()
        assert command.returncode == 0, out
        await until_accepted(port, "ops")
        code, logs = await stop(process)
    assert code == 0
    assert [line["event"] for line in logs].count("config_reloaded") == 2
    assert not (tmp_path / "hookgate.pid").exists()
