"""Headless Chromium for the inspector's browser tests and the screenshot script.

The system's Chromium (Debian's `chromium`), driven by Playwright; Playwright's own
browser download is never used (CI cannot reach it). Each launch gets a fresh profile.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


@asynccontextmanager
async def chromium(
    width: int = 1280, height: int = 800, scale: float = 1.0
) -> AsyncIterator[BrowserContext]:
    """A browser context of a freshly started Chromium with its own user-data dir."""
    with tempfile.TemporaryDirectory(prefix="hookgate-chromium-") as profile:
        async with async_playwright() as driver:
            context = await driver.chromium.launch_persistent_context(
                profile,
                executable_path=str(EXECUTABLE),
                args=ARGS,
                headless=True,
                viewport={"width": width, "height": height},
                device_scale_factor=scale,
            )
            try:
                yield context
            finally:
                await context.close()
