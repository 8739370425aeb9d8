"""The real image: built from the Dockerfile (base image as a build ARG, so a machine
with no registry builds it on a Debian base of its own), run, and asked for a 202, a
relayed delivery, `/readyz`, its broker extras and a clean stop.

Skipped when no Docker daemon answers, except in CI (CI=true), which must run it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis
from test_lifecycle import free_port, wait_ready

ROOT = Path(__file__).parents[2]
BASE = os.environ.get("HOOKGATE_TEST_DOCKER_BASE", "hookgate-base")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # pip inside the build must trust it

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


def docker_cli() -> str:
    """A docker client that can build with BuildKit (build secrets), or skip/fail."""
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    for cli in (os.environ.get("HOOKGATE_TEST_DOCKER"), "docker", "/usr/bin/docker"):
        path = shutil.which(cli) if cli else None
        if path and _works(path, env):
            return path
    reason = "no Docker daemon with a BuildKit-capable client answers"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI must run this test")
    pytest.skip(reason)


def _works(cli: str, env: dict[str, str]) -> bool:
    for args in (["info"], ["build", "--help"]):
        done = subprocess.run([cli, *args], capture_output=True, env=env, timeout=60)
        if done.returncode != 0:
            return False
    return True


def has_ca_bundle() -> bool:
    return CA_BUNDLE.exists()


async def run(*args: str, timeout: float = 600) -> str:  # noqa: ASYNC109
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
    async with asyncio.timeout(timeout):
        out, _ = await process.communicate()
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"{' '.join(args)} failed:\n{text[-4000:]}"
    return text


async def build(cli: str, tag: str, context: Path = ROOT) -> str:
    """Build `context` as `tag`; BuildKit's plain progress output."""
    await run(str(ROOT / "scripts" / "docker-base"), BASE)  # cached by name
    secret = [f"--secret=id=pip-cert,src={CA_BUNDLE}"] if has_ca_bundle() else []
    return await run(cli, "build", "--progress=plain", "--build-arg", f"BASE={BASE}",
                     "--network", "host", *secret, "-t", tag, str(context))  # fmt: skip


def cached(progress: str, step: str) -> bool:
    """Whether the build step whose command contains `step` came from the cache."""
    numbers = re.findall(r"^(#\d+) \[.*" + re.escape(step), progress, flags=re.MULTILINE)
    assert numbers, f"no step {step!r} in:\n{progress[-3000:]}"
    return all(f"\n{n} CACHED" in progress for n in numbers)


async def health(cli: str, name: str) -> str:
    """The container's health once its HEALTHCHECK has answered (every 10 s)."""
    for _ in range(60):  # a bound for a broken check, not a measurement
        state = (await run(cli, "inspect", "--format", "{{.State.Health.Status}}", name)).strip()
        if state != "starting":
            return state
        await asyncio.sleep(1)
    return state


async def test_the_image_serves_relays_and_stops_cleanly(target):
    cli = docker_cli()
    tag, name = "hookgate-e2e", f"hookgate-e2e-{uuid.uuid4().hex[:8]}"
    await build(cli, tag)
    sink, port = await target(), free_port()
    await run(cli, "run", "-d", "--name", name, "--network", "host",
              "-e", f"PORT={port}", "-e", f"TARGET_URL={sink.url}", tag)  # fmt: skip
    try:
        await wait_ready(port, timeout=120)
        url = f"http://127.0.0.1:{port}/in/demo"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=b'{"type": "order.created"}') as answer,
        ):
            assert answer.status == 202
            event_id = (await answer.json())["id"]
        await sink.recorder.wait_for(1, timeout=60)
        assert sink.recorder.requests[0][0]["X-Hookgate-Event-Id"] == event_id
        extras = "import redis, nats, aio_pika, brotli, opentelemetry.sdk"
        await run(cli, "exec", name, "python3", "-c", extras)
        # PID 1 is tini (it reaps the embedded PostgreSQL), and the HEALTHCHECK asks $PORT
        pid1 = await run(cli, "exec", name, "cat", "/proc/1/cmdline")
        assert pid1.split("\0")[0] in ("tini", "/usr/bin/tini"), pid1
        assert await health(cli, name) == "healthy"
        logs = await run(cli, "logs", name)
        assert f"hookgate: listening on http://0.0.0.0:{port} (every interface)" in logs
        await run(cli, "stop", name)
        state = await run(cli, "inspect", "--format", "{{.State.ExitCode}}", name)
        assert state.strip() == "0"
    finally:
        await run(cli, "rm", "-f", name)


async def test_a_code_change_rebuilds_only_the_code_layers(tmp_path):
    """The dependencies are installed from pyproject.toml alone, before the code is copied."""
    cli = docker_cli()
    context = tmp_path / "context"
    context.mkdir()
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    for name in ("gateway", "plugins", "config"):
        shutil.copytree(ROOT / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
    await build(cli, "hookgate-e2e-layers", context)  # the dependency layer is now cached
    with (context / "gateway" / "__init__.py").open("a") as file:
        file.write(f"# a code change {uuid.uuid4().hex}\n")
    try:
        progress = await build(cli, "hookgate-e2e-layers", context)
    finally:
        await run(cli, "rmi", "-f", "hookgate-e2e-layers")
    assert cached(progress, "pip install -r /src/requirements.txt")
    assert not cached(progress, "pip install --no-deps /src")


async def test_a_redis_stream_target_delivers_from_inside_the_image(tmp_path, redis_url):
    """The broker extras are not only importable: a redis-stream target relays from the
    container (the config mounted over the default one, as the README says to)."""
    cli = docker_cli()
    tag, name = "hookgate-e2e", f"hookgate-e2e-{uuid.uuid4().hex[:8]}"
    await build(cli, tag)  # cached after the first test
    stream = f"hookgate-test-docker:{uuid.uuid4().hex[:12]}"
    config = tmp_path / "hookgate.yaml"
    config.write_text(
        f"""
database: {{data_dir: /data}}
server:
  host: 0.0.0.0
  port: ${{PORT:-8080}}
sources: {{demo: {{event_type: "json:type"}}}}
targets: {{stream: {{type: redis-stream, url: "{redis_url}", stream: "{stream}"}}}}
routes: [{{source: demo, targets: [stream]}}]
"""
    )
    config.chmod(0o644)  # read by the image's own user
    port = free_port()
    await run(cli, "run", "-d", "--name", name, "--network", "host", "-e", f"PORT={port}",
              "-v", f"{config}:/etc/hookgate/hookgate.yaml:ro", tag)  # fmt: skip
    admin = redis.from_url(redis_url)
    try:
        await wait_ready(port, timeout=120)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/in/demo", data=b'{"type": "t"}') as answer,
        ):
            assert answer.status == 202
        for _ in range(300):  # until the relay has written it (a bound, not a measurement)
            entries = await admin.xrange(stream)
            if entries:
                break
            await asyncio.sleep(0.1)
        assert len(entries) == 1
        await run(cli, "stop", name)
    finally:
        await admin.delete(stream)
        await admin.aclose()
        await run(cli, "rm", "-f", name)
