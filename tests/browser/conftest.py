"""Browser tests: the real app on a local port, driven by Debian's Chromium through Playwright.

* ``live_server``: ``create_app`` on the parametrised ``db``, served by werkzeug on 127.0.0.1 in a thread;
  yields the base URL.
* ``browser``: one headless Chromium for the session (``/usr/bin/chromium``; Playwright cannot download
  browsers here). Missing Chromium skips the tests, or fails them with ``CALLCENTER_REQUIRE_BROWSER=1``.
* ``page``: a fresh browser context per test (own cookies), Chinese locale; a full-page screenshot of
  where the test ended is saved in ``test-artifacts/``, pass or fail.
* ``browser_errors``: JavaScript errors and console errors (CSP violations among them) seen by ``page``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, ViewportSize, sync_playwright
from werkzeug.serving import make_server

from callcenter.db import Database
from tests.web.factories import ROOT, web_settings_for
from web import create_app
from web.i18n import compile_catalogs

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REQUIRE_BROWSER = os.environ.get("CALLCENTER_REQUIRE_BROWSER") == "1"
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogs() -> None:
    compile_catalogs()


@pytest.fixture
def live_server(tmp_path: Path, db: Database) -> Iterator[str]:
    app = create_app(web_settings_for(tmp_path, db.url), db)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not installed (apt-get install chromium fonts-noto-cjk)"
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_errors() -> list[str]:
    return []


def _screenshot_path(node_id: str) -> Path:
    return ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", node_id).strip("_") + ".png")


@pytest.fixture
def page(browser: Browser, browser_errors: list[str], request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORT)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            browser_errors.append(f"console: {message.text}")

    def on_page_error(error: Error) -> None:
        browser_errors.append(f"page error: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=_screenshot_path(request.node.nodeid), full_page=True)
        context.close()
