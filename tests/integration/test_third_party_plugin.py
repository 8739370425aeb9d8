"""A third-party plugin package, installed for real, is loaded through the entry points.

The example package under examples/ is pip-installed into this venv (no network, no build
isolation) and uninstalled afterwards, whatever the outcome. Every check runs in a fresh
interpreter, so nothing imported by this test process can stand in for the installed
package. Building without isolation needs a setuptools that builds wheels by itself
(>= 70.1) or the wheel package: without one the test is skipped, and fails under CI.
The import-linter contract docs/plugins.md offers plugin packages is run on a copy too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import free_port, hookgate_process, wait_ready

EXAMPLE = Path(__file__).parents[2] / "examples" / "hookgate-plugin-example"
DIST = "hookgate-plugin-example"
PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input")

GOOD = """\
sources:
  partner:
    verify: {type: shared-token, token: s3cret, header: X-Partner-Token}
targets:
  orders:
    url: http://127.0.0.1:9000/hooks
    middleware: [{type: add-received-at}]
  archive: {type: jsonl-file, path: /var/lib/hookgate/archive.jsonl}
routes:
  - {source: partner, targets: [orders, archive]}
"""

# Runs in a fresh interpreter after the install: the plugins as hookgate loads them,
# exercised on a Message and an Inbound; prints what it saw as JSON.
PROBE = textwrap.dedent("""
    import asyncio, datetime as dt, json, sys, uuid
    from multidict import CIMultiDict
    from gateway.plugin import Inbound, Message, Outcome, Section, SendResult, VerificationError
    from gateway.plugins import load_registry
    from gateway.send import SendRequest, signed_request

    registry = load_registry()
    received = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    seen = {}

    async def target(message):
        seen["headers"] = dict(message.headers)
        return SendResult(Outcome.HTTP_2XX, status=204)

    def middleware(options):
        plugin = registry.middleware("add-received-at")
        return plugin.create(plugin.parse(Section(options, "m", [])), None)

    message = Message(
        event_id=uuid.uuid4(), delivery_id=uuid.uuid4(), attempt=2, source="partner",
        target="orders", event_type=None, received_at=received,
        now=received + dt.timedelta(hours=1), body=b"{}", headers=(("X-Received-At", "old"),),
    )
    result = asyncio.run(middleware({})(message, target))
    default = seen["headers"]
    asyncio.run(middleware({"header": "X-Got-It"})(message, target))

    verifier = registry.verifier("shared-token")
    options = verifier.parse(Section({"token": "s3cret"}, "verify", []))
    created = verifier.create(options, None)

    def verdict(headers):
        inbound = Inbound("POST", "http://h/in/partner", CIMultiDict(headers), {}, b"{}", received)
        try:
            asyncio.run(created.verify(inbound))
            return "accepted"
        except VerificationError as exc:
            return str(exc)

    _, sent = signed_request(SendRequest("shared-token", "http://h/in/partner", {"token": "s3cret"}))
    module = type(registry.middleware("add-received-at")).__module__
    print(json.dumps({
        "module": module,
        "file": sys.modules[module].__file__,
        "status": result.status,
        "default": default,
        "custom": seen["headers"],
        "signed": sent,
        "right": verdict({"x-shared-token": "s3cret"}),
        "wrong": verdict({"X-Shared-Token": "s3cre7"}),
        "missing": verdict({}),
        "credentials": list(verifier.credentials(options).headers),
    }))
""")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30, check=False)


def hookgate_check(config: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = cwd / "hookgate.yaml"
    path.write_text(config)
    return run(sys.executable, "-m", "gateway.cli", "check", str(path), cwd=cwd)


def installed() -> bool:
    try:
        distribution(DIST)
    except PackageNotFoundError:
        return False
    return True


@pytest.fixture
def install(tmp_path: Path) -> Iterator[None]:
    """Installs the example package into this venv; uninstalls it on the way out."""
    if installed():
        pytest.skip(f"{DIST} is already installed here; this test would uninstall it")
    # A copy: pip builds local projects in place and would leave build/ in examples/.
    source = shutil.copytree(
        EXAMPLE, tmp_path / EXAMPLE.name, ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    try:
        done = run(*PIP, "install", "--no-deps", "--no-build-isolation", "--no-index",
                   str(source), cwd=tmp_path)  # fmt: skip
        if "invalid command 'bdist_wheel'" in done.stdout + done.stderr:
            needs_wheel_builder()
        assert done.returncode == 0, done.stdout + done.stderr
        yield
    finally:
        # Always, even if the install failed half-way: the venv must be left as found.
        run(*PIP, "uninstall", "--yes", DIST, cwd=tmp_path)
    assert not installed(), f"{DIST} is still installed: pip uninstall -y {DIST}"


def needs_wheel_builder() -> None:
    reason = (
        "the venv's setuptools cannot build wheels without build isolation: "
        "it needs setuptools>=70.1 (or the wheel package) in the dev dependencies"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def test_example_plugins_are_unknown_until_installed(tmp_path: Path) -> None:
    if installed():
        pytest.skip(f"{DIST} is installed here")
    before = hookgate_check(GOOD, tmp_path)
    assert before.returncode == 1
    assert 'sources.partner.verify.type: unknown verifier type "shared-token"' in before.stderr
    assert "targets.orders.middleware[0].type: unknown middleware type" in before.stderr
    assert 'targets.archive.type: unknown target type "jsonl-file"' in before.stderr


@pytest.mark.usefixtures("install")
def test_installed_example_plugins_are_checked_and_run(tmp_path: Path) -> None:
    good = hookgate_check(GOOD, tmp_path)
    assert good.returncode == 0, good.stderr
    assert "ok: 1 sources, 2 targets, 1 routes" in good.stdout

    bad = hookgate_check(
        GOOD.replace("header: X-Partner-Token", "header: X Partner")
        .replace("{type: add-received-at}", "{type: add-received-at, header: X-Hookgate-Attempt}")
        .replace("path: /var/lib/hookgate/archive.jsonl", "path: archive.jsonl"),
        tmp_path,
    )
    assert bad.returncode == 1
    assert "sources.partner.verify.header: expected a header name" in bad.stderr
    assert "targets.orders.middleware[0].header: is one of hookgate's identity" in bad.stderr
    assert 'targets.archive.path: expected an absolute path, got "archive.jsonl"' in bad.stderr

    probe = run(sys.executable, "-c", PROBE, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert seen["module"] == "hookgate_plugin_example.received_at"
    assert "site-packages" in seen["file"], seen["file"]  # the installed copy, not examples/
    assert seen["status"] == 204  # the target's result comes back through the middleware
    assert seen["default"]["X-Received-At"] == "2024-05-01T12:30:00+00:00"
    assert seen["custom"]["X-Got-It"] == "2024-05-01T12:30:00+00:00"
    assert seen["custom"]["X-Received-At"] == "old"  # another header name leaves it be
    assert seen["signed"]["X-Shared-Token"] == "s3cret"
    assert seen["right"] == "accepted"
    assert seen["wrong"] == "X-Shared-Token does not match"
    assert seen["missing"] == "missing X-Shared-Token header"
    assert seen["credentials"] == ["X-Shared-Token"]  # stored redacted, like api-key's


def guide_block(marker: str) -> str:
    """The toml block of docs/plugins.md that contains `marker`."""
    guide = (EXAMPLE.parents[1] / "docs" / "plugins.md").read_text()
    (found,) = [b for b in re.findall(r"^```toml\n(.*?)^```$", guide, re.M | re.S) if marker in b]
    return found


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--no-cache", str(project / "pyproject.toml")],
        cwd=project, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
    )  # fmt: skip


def test_the_guides_import_contract_for_a_plugin_package_keeps_and_breaks(tmp_path: Path) -> None:
    # docs/plugins.md offers plugin authors an import-linter contract of their own: run it,
    # as written, on a copy of the example package under the guide's package name.
    project = tmp_path / "my-plugins"
    shutil.copytree(
        EXAMPLE / "src" / "hookgate_plugin_example", project / "src" / "my_hookgate_plugins"
    )
    (project / "pyproject.toml").write_text(guide_block("[tool.importlinter]"))
    kept = lint_imports(project)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "Contracts: 1 kept, 0 broken." in kept.stdout

    module = project / "src" / "my_hookgate_plugins" / "received_at.py"
    module.write_text(module.read_text() + "\nfrom gateway.section import show as _show\n")
    broken = lint_imports(project)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "my_hookgate_plugins.received_at -> gateway.section" in broken.stdout


SERVED = """\
database: {{url: "{database}"}}
server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: 1s}}
relay: {{enabled: true, poll_interval: 200ms}}
sources:
  partner:
    verify: {{type: shared-token, token: s3cret, header: X-Partner-Token}}
    event_type: "json:type"
targets:
  archive:
    type: jsonl-file
    path: {path}
    middleware: [{{type: add-received-at}}]
routes:
  - {{source: partner, targets: [archive]}}
"""


async def answer(port: int, token: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POSTs `body` to /in/partner once serve answers /readyz with 200."""
    await wait_ready(port)
    url, headers = f"http://127.0.0.1:{port}/in/partner", {"X-Partner-Token": token}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


CUT_SHORT = b'{"event_id": "0b1e", "body": "eyJ0'  # a line a crash cut short, mid-write


def complete_lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes() if path.exists() else b""
    lines = data.split(b"\n")[:-1]  # not a line being written
    return [json.loads(line) for line in lines if line != CUT_SHORT]


async def lines_of(path: Path, count: int) -> list[dict[str, Any]]:
    """The file's first `count` lines, once the target has written them."""
    async with asyncio.timeout(30):
        while True:
            lines = await asyncio.to_thread(complete_lines, path)
            if len(lines) >= count:
                return lines
            await asyncio.sleep(0.1)


@pytest.mark.usefixtures("install")
async def test_a_real_serve_verifies_stamps_and_delivers_with_the_example_plugins(
    tmp_path: Path, database_url: str
) -> None:
    # The worked case end to end: hookgate serve, started as a real process, verifies with
    # shared-token, and relays through add-received-at into the jsonl-file target.
    port, archive = free_port(), tmp_path / "archive.jsonl"
    config = tmp_path / "hookgate.yaml"
    config.write_text(SERVED.format(database=database_url, port=port, path=archive))
    archive.write_bytes(CUT_SHORT)  # the last run crashed mid-line
    body = b'{"type": "order.paid", "id": 7}'
    async with hookgate_process("serve", "--config", str(config)) as process:
        assert await answer(port, "wrong", body) == (
            401,
            {"error": "X-Partner-Token does not match"},
        )
        status, accepted = await answer(port, "s3cret", body)
        assert status == 202, accepted
        (line,) = await lines_of(archive, 1)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await process.communicate()
    assert line["event_id"] == accepted["id"]
    assert (line["source"], line["target"], line["type"]) == ("partner", "archive", "order.paid")
    assert base64.b64decode(line["body"]) == body
    headers = dict(line["headers"])
    assert headers["X-Received-At"] == line["received_at"]
    assert headers["Idempotency-Key"] == line["delivery_id"]
    assert process.returncode == 0
    # The cut line is ended, not joined to the new one, and not a byte of it is lost.
    first, written, end = archive.read_bytes().split(b"\n")
    assert (first, json.loads(written)["delivery_id"], end) == (CUT_SHORT, line["delivery_id"], b"")
