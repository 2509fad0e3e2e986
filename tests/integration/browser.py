"""Headless Chromium for the console's tests: Debian's ``chromium`` (``make apt-deps``)
driven by Playwright's Python client. Playwright's own browser downloads are never used:
the executable is given, and the flags keep the browser off the network (no component
updates, no sync, no QUIC probes) and in a fresh profile of its own."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import BrowserContext, async_playwright

VIEWPORT = {"width": 1280, "height": 800}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's Chromium (``FRAUDMON_CHROMIUM`` overrides); a missing one fails the test
    with the fix, it is never skipped."""
    given = os.environ.get("FRAUDMON_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(given).exists():
        raise AssertionError(f"no Chromium at {given}: run `make apt-deps` (Debian's chromium)")
    return given


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[BrowserContext]:
    """A headless Chromium at 1280x800 with a fresh profile in ``profile`` (Chromium
    makes the folder)."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path(), headless=True, args=FLAGS,
            viewport=VIEWPORT, service_workers="block", timeout=60_000)
        try:
            yield context
        finally:
            await context.close()
