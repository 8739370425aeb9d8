"""Headless Chromium for the inspector's browser tests and the screenshot script.

The system's Chromium (Debian's `chromium`), driven by Playwright over the DevTools
protocol; Playwright's own browser download is never used (CI cannot reach it). One
Chromium process, with a fresh user-data dir, serves a whole test session (starting it
is most of a browser test's cost); each test gets its own context (own cookies).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from playwright.async_api import BrowserContext, async_playwright

EXECUTABLE = Path(os.environ.get("HOOKGATE_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
START_TIMEOUT = 30.0


@contextmanager
def chromium_process() -> Iterator[str]:
    """Start Chromium with a fresh profile; yield its DevTools endpoint; stop it after."""
    with tempfile.TemporaryDirectory(prefix="hookgate-chromium-") as profile:
        process = subprocess.Popen(
            [str(EXECUTABLE), *ARGS, f"--user-data-dir={profile}", "--remote-debugging-port=0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its helpers are stopped with it
        )
        try:
            yield _endpoint(Path(profile) / "DevToolsActivePort", process)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium and every helper process it started (renderers, crash handler), so
    none still writes into the profile while it is removed (rmtree failed with 'Directory
    not empty' when one did)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # what is left of its group


def _endpoint(port_file: Path, process: subprocess.Popen[bytes]) -> str:
    """Chromium writes its port and browser path to DevToolsActivePort once it listens."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{EXECUTABLE} exited with {process.returncode} at start-up")
        lines = port_file.read_text().split() if port_file.exists() else []
        if len(lines) == 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise RuntimeError(f"{EXECUTABLE} did not open its DevTools port in {START_TIMEOUT} s")


@asynccontextmanager
async def browser_context(
    endpoint: str, width: int = 1280, height: int = 800, scale: float = 1.0
) -> AsyncIterator[BrowserContext]:
    """A new context (cookies and storage of its own) in the Chromium at `endpoint`."""
    async with async_playwright() as driver:
        browser = await driver.chromium.connect_over_cdp(endpoint)
        context = await browser.new_context(
            viewport={"width": width, "height": height}, device_scale_factor=scale
        )
        try:
            yield context
        finally:
            await context.close()
