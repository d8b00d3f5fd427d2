"""Headless Chromium (Debian's package, driven by Playwright) sends beacons from a page on another origin.

Events sent on load and during `pagehide` (navigating away, closing the tab) must all be stored, exactly once.
"""

import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

from scripts.devstack import Service
from shared.records import event_record_id
from shared.settings import Settings
from tests.conftest import make_settings
from tests.helpers import drain, queued_records, stored
from tests.processes import api_service, app_env, wait_ready, wait_until

pytestmark = pytest.mark.browser
T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
SITE = Path(__file__).parent / "site"
INGEST_KEY = "browser-key"
USER = "browser-user"
LAUNCH_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


def expected_event_ids(phase: str) -> set[str]:
    """What beacons.html sends, on load and on pagehide."""
    counts = {"load-beacon": 5, "load-beacon-batch": 20, "load-fetch": 5, "load-fetch-json": 20,
              "load-fetch-gzip": 10, "hide-beacon-batch": 10, "hide-fetch-batch": 10}
    ids = {f"{phase}-{prefix}-{i}" for prefix, count in counts.items() for i in range(count)}
    return ids | {f"{phase}-hide-beacon", f"{phase}-hide-fetch"}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The page's own origin: another port than the API, so every send is cross-origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(SITE)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(redis_server: Service, mongo_server: Service, page_origin: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A real `python -m api` process that allows only the page's origin."""
    settings = make_settings(redis_server, mongo_server)
    env = app_env(settings.REDIS_URL, settings.MONGODB_URI, MONGO_DB=settings.MONGO_DB,
                  STREAM_PREFIX=settings.STREAM_PREFIX, CORS_ORIGINS=page_origin, INGEST_API_KEYS=INGEST_KEY)
    api = api_service(env, tmp_path_factory.mktemp("browser-logs")).start(ready_timeout_s=120)
    url = f"http://127.0.0.1:{api.port}"
    try:
        wait_ready(url)
        yield settings, url
    finally:
        api.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    # Fail, never skip: CI installs it with `scripts/install-system.sh --browser`.
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} not found: run scripts/install-system.sh --browser"
    with sync_playwright() as playwright:
        # A persistent context is how Playwright takes a (fresh, empty) --user-data-dir.
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=CHROMIUM, headless=True, args=LAUNCH_FLAGS)
        try:
            yield context
        finally:
            context.close()


def _open_beacon_page(browser: BrowserContext, page_origin: str, api_url: str, phase: str):
    page = browser.new_page()
    query = urlencode({"api": api_url, "key": INGEST_KEY, "user": USER, "phase": phase})
    page.goto(f"{page_origin}/beacons.html?{query}")
    sent = page.evaluate("window.loaded")
    assert sent == {"beacons": [True] * 6, "statuses": [202] * 7}, sent
    return page


def _off_loop(function: Callable[..., T], *args: object) -> T:
    """Playwright's sync API runs an event loop in this thread; the asyncio helpers need their own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result(timeout=60)


def _assert_all_stored(settings: Settings, phase: str, already: int) -> None:
    wanted = {event_record_id(USER, event_id) for event_id in expected_event_ids(phase)}
    # Beacons from a page that is gone are still in flight for a moment; wait for all of them.
    assert wait_until(lambda: _off_loop(queued_records, settings) >= len(wanted), timeout_s=20)
    _off_loop(drain, settings)
    ids = [d["_id"] for d in _off_loop(stored, settings, "events")]
    assert len(ids) == already + len(wanted)
    assert wanted <= set(ids)


def test_beacons_from_a_page_navigating_away_are_all_stored(
        browser: BrowserContext, stack: tuple[Settings, str], page_origin: str) -> None:
    settings, api_url = stack
    page = _open_beacon_page(browser, page_origin, api_url, "navigate")

    page.goto(f"{page_origin}/next.html")  # fires pagehide on the beacon page

    _assert_all_stored(settings, "navigate", already=0)


def test_beacons_from_a_closing_tab_are_all_stored(
        browser: BrowserContext, stack: tuple[Settings, str], page_origin: str) -> None:
    settings, api_url = stack
    page = _open_beacon_page(browser, page_origin, api_url, "close")

    page.close(run_before_unload=True)  # the tab closes as a user's would: pagehide runs

    _assert_all_stored(settings, "close", already=len(expected_event_ids("navigate")))
