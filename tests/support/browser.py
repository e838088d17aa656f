"""A real browser for the web tests: Debian's chromium, driven by Playwright.

`playwright install` cannot download browsers here, so Playwright launches the system's
chromium by its path (ROSTERDROP_CHROMIUM, else `chromium` on PATH; .ci/tools installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support import real_tools

CHROMIUM_ENV = "ROSTERDROP_CHROMIUM"


def chromium_path() -> str | None:
    return os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless chromium per module (each test opens its own context). Not per session:
    Playwright's sync API keeps an event loop running on this thread while it is open, and
    every async test that followed on the same worker would fail to start its own."""
    path = chromium_path()
    if path is None:
        real_tools.missing("chromium (apt-get install chromium, or set ROSTERDROP_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()
