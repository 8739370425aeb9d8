"""The embedded PostgreSQL after a `kill -9` of `serve`: adopted by the next start, and
stopped by that process's clean exit, like a server it had started itself."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from test_first_run import read_until
from test_lifecycle import free_port, hookgate, stop, wait_ready


def embedded_config(path: Path, data_dir: Path, port: int) -> Path:
    path.write_text(
        f"""
database: {{data_dir: "{data_dir}"}}
server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: 1s}}
relay: {{enabled: false}}
sources: {{shop: {{}}}}
"""
    )
    return path


async def ready(process: asyncio.subprocess.Process, port: int) -> None:
    """Until `process` answers /readyz; if it exits first, fail with what it said."""
    waiting = asyncio.ensure_future(wait_ready(port, timeout=50))  # initdb on a busy machine
    exited = asyncio.ensure_future(process.wait())
    await asyncio.wait([waiting, exited], return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():
        waiting.cancel()
        assert process.stderr is not None
        raise AssertionError(f"serve exited: {(await process.stderr.read()).decode()}")
    exited.cancel()
    waiting.result()


def postmaster(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


def stopped(pid: int, within: float) -> bool:
    """Whether process `pid` is gone (or a zombie) within `within` seconds."""
    try:
        psutil.Process(pid).wait(within)
    except psutil.TimeoutExpired:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        pass
    return True


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Every postgres process whose command line names this data directory."""
    pgdata = str((data_dir / "pg").resolve())
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and pgdata in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's tmp_path: as root, pgserver runs postgres as another user, and any
    pytest session starting on the machine resets pytest-of-root to mode 0700."""
    with tempfile.TemporaryDirectory(prefix="hookgate-embedded-") as tmp:
        yield Path(tmp) / "data"


@pytest.mark.timeout(150)
async def test_a_restart_after_kill_9_adopts_the_embedded_server_and_stops_it(tmp_path, data_dir):
    port = free_port()
    config = embedded_config(tmp_path / "h.yaml", data_dir, port)
    try:
        async with hookgate("serve", "--config", str(config)) as first:
            await ready(first, port)
            assert first.stdout is not None  # what a first run tells its user
            lines = await read_until(first.stdout, "hookgate: database:")
            assert (
                lines[-1]
                == f"hookgate: database: embedded PostgreSQL under {data_dir.resolve() / 'pg'}"
            )
            pid = postmaster(data_dir)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert psutil.pid_exists(pid), "the embedded server outlives a kill -9 of serve"

        async with hookgate("serve", "--config", str(config)) as second:
            await ready(second, port)
            assert postmaster(data_dir) == pid  # adopted, not a second server
            code, logs = await stop(second)
        assert code == 0
        assert any(line["event"] == "embedded_postgres_adopted" for line in logs)
        assert await asyncio.to_thread(stopped, pid, 30), "the adopted server is still running"
        assert postgres_processes(data_dir) == []
    finally:
        for process in postgres_processes(data_dir):  # never leave a server behind
            process.kill()
