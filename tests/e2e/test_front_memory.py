"""A real `hookgate serve` streams large bodies through the pass-through with flat memory
(and, through the same server, a websocket).

A few hundred MiB each way, generated and consumed on the fly, while the peak RSS of the
serve process (VmHWM in /proc) is compared with its peak after a small warm-up transfer.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import free_port, wait_ready
from front_app import CHUNK, ExistingApp, block

MIB = 1024 * 1024
SIZE = 256 * MIB  # each way
FLAT = 24 * MIB  # what buffering even one 256 MiB body would blow past ten times over


def peak_rss(pid: int) -> int:
    """The process's peak resident set so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


async def generated(size: int):
    for offset in range(0, size, CHUNK):
        yield block(offset, min(CHUNK, size - offset))


async def download(session: aiohttp.ClientSession, url: str, size: int) -> int:
    async with session.get(url, params={"size": str(size)}) as response:
        assert response.status == 200
        received = 0
        async for chunk in response.content.iter_chunked(CHUNK):
            received += len(chunk)
        return received


async def upload(session: aiohttp.ClientSession, url: str, size: int) -> dict[str, object]:
    async with session.post(url, data=generated(size)) as response:
        assert response.status == 200
        answer: dict[str, object] = await response.json()
        return answer


def start_serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--log-json", "serve", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def check_running(process: subprocess.Popen[bytes], log: Path) -> None:
    assert process.poll() is None, log.read_text()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_a_large_upload_and_download_keep_the_serve_process_flat(tmp_path, database_url):
    existing, app_port, port = ExistingApp(), free_port(), free_port()
    server = TestServer(existing.app(), host="127.0.0.1", port=app_port)
    await server.start_server()
    config = tmp_path / "front.yaml"
    config.write_text(
        f"""
database: {{url: "{database_url}"}}
server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: 1s}}
relay: {{enabled: false}}
upstream: {{url: "http://127.0.0.1:{app_port}"}}
"""
    )
    log = tmp_path / "serve.log"
    process = start_serve(config, log)
    try:
        await wait_ready(port, check=lambda: check_running(process, log))
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            assert await download(session, f"{base}/download", 4 * MIB) == 4 * MIB  # warm-up
            await upload(session, f"{base}/upload", 4 * MIB)
            before = peak_rss(process.pid)
            assert await download(session, f"{base}/download", SIZE) == SIZE
            answer = await upload(session, f"{base}/upload", SIZE)
            after = peak_rss(process.pid)
            async with session.ws_connect(f"{base}/ws") as ws:  # through the real server too
                await ws.send_str("still here")
                assert (await ws.receive()).data == "STILL HERE"
        expected = hashlib.sha256()
        async for chunk in generated(SIZE):
            expected.update(chunk)
        assert answer == {"sha256": expected.hexdigest(), "size": SIZE}
        print(f"peak RSS {before / MIB:.1f} -> {after / MIB:.1f} MiB")
        assert after - before < FLAT, f"peak RSS grew by {(after - before) / MIB:.1f} MiB"
    finally:
        process.terminate()
        process.wait(15)
        await server.close()
