"""Headless Chromium for the web console's tests and its screenshot.

The system's Chromium (Debian package ``chromium``, installed by ``make test``
through tests/server/install_tools.sh) driven by Playwright; Playwright's own
browser downloads are never used. Without Chromium a test fails saying how to
install it (skips with MQLOG_ALLOW_MISSING_TOOLS=1, see tests/server/_tools.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.server._tools import require_program

#: Headless, and nothing that reaches beyond loopback on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: Longest wait for the page to show something (a loaded machine; the page
#: updates every second).
PAGE_TIMEOUT_MS = 30_000
expect.set_options(timeout=PAGE_TIMEOUT_MS)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """The system's Chromium, headless, closed at the end of the block."""
    executable = require_program("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                             timeout=PAGE_TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


@dataclasses.dataclass
class WatchedPage:
    """A page, with every error it logged (console errors and uncaught exceptions)."""

    page: Page
    errors: list[str]


@contextlib.contextmanager
def open_page(browser: Browser, url: str, *, width: int = 1280,
              height: int = 900) -> Iterator[WatchedPage]:
    """A new page of its own browser context (its own sessionStorage) at ``url``."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page = context.new_page()
        watched = WatchedPage(page, [])

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watched.errors.append(f"console: {message.text} ({message.location})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: watched.errors.append(f"uncaught: {error}"))
        page.goto(url)
        yield watched
    finally:
        context.close()
