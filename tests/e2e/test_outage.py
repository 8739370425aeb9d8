"""A PostgreSQL outage, on a throwaway server this test starts and stops (never the
shared one): 503 with Retry-After while it is down, a few log lines and no
traceback, and 202 again once it is back."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path

import pytest
from conftest import make_config
from structlog.testing import capture_logs

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver._commands import pg_ctl


@pytest.fixture
def throwaway_postgres(tmp_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    yield server
    server.cleanup()


def stop(server) -> None:
    pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=server.pgdata, user=server.system_user)


@pytest.mark.timeout(120)
async def test_an_outage_is_503_in_a_few_lines_then_ingest_recovers(
    throwaway_postgres, gateway, caplog, capfd
):
    caplog.set_level(logging.INFO)
    config = make_config(throwaway_postgres.get_uri(), "sources: {demo: {event_type: 'json:type'}}")
    client = await gateway(config)
    body = b'{"type": "t"}'
    assert (await client.post("/in/demo", data=body)).status == 202
    with capture_logs() as logs:
        await asyncio.to_thread(stop, throwaway_postgres)
        down = [await client.post("/in/demo", data=body) for _ in range(8)]
        ready = await client.get("/readyz")
        assert [r.status for r in down] == [503] * 8
        assert {r.headers["Retry-After"] for r in down} == {"5"}
        assert ready.status == 503
        during = list(logs)
        await asyncio.to_thread(throwaway_postgres.ensure_postgres_running)
        for _ in range(100):  # the pool reconnects on its own (a bound, not a measurement)
            again = await client.post("/in/demo", data=body)
            if again.status == 202:
                break
            await asyncio.sleep(0.1)
        assert again.status == 202
    captured = capfd.readouterr()
    events = [e["event"] for e in during]
    assert "batch_write_crashed" not in events
    for sampled in ("batch_write_failed", "relay_claim_failed", "listener_disconnected"):
        assert events.count(sampled) <= 1  # the first at once, the rest as a count later
    assert not [e for e in logs if e["log_level"] in ("error", "critical") or "exc_info" in e]
    assert [e["status"] for e in during if e["event"] == "request_handled"] == [503] * 9
    for text in (caplog.text, captured.out, captured.err):
        assert "Traceback" not in text
    floor = [r for r in caplog.records if "connection floor" in r.getMessage()]
    assert len(floor) <= 1 and all(r.exc_info is None for r in floor)
    # the outage's count, said once the next write succeeded: the first failure was said
    # at once, the others (the 7 other refused requests at least) in this one line
    later = [e for e in logs[len(during) :] if e["event"] == "batch_write_failed"]
    assert [e["count"] >= 7 for e in later] == [True], later
