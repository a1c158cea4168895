"""Browser-test fixtures: ONE Debian chromium per test session (Playwright's Python package, never a Playwright
browser download), the API under a real uvicorn, and helpers to log in and to write incidents as detectors do.
Screenshots go to build/screenshots/ (STEWARD_SCREENSHOTS overrides)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.app import create_app
from api.settings import ApiSettings
from detectors.store import record_changes
from domain.incidents import IncidentChange, Tier
from tests.api.conftest import PASSWORD, LiveServer, World, seed

SCREENSHOTS = Path(os.environ.get("STEWARD_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LIVE_S = 15_000  # ms: the page's stream wakes on NOTIFY; this only bounds a broken run
expect.set_options(timeout=LIVE_S)  # a loaded machine takes seconds for a login\'s argon2 check
RED = "rgb(198, 40, 40)"  # --tier1 in app.css


def chromium_path() -> str | None:
    """Debian's chromium; installed with apt when we are root and it is missing (as scripts/test-prerequisites.sh
    does in CI). Never a Playwright browser download."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                                       "chromium"]):
            if subprocess.run(command, check=False, env=env, capture_output=True, timeout=600).returncode != 0:
                return None
        return shutil.which("chromium")
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed and cannot be installed here (apt-get install chromium)")
    with sync_playwright() as p:
        # The browser keeps the machine's real clock even when the suite runs under
        # libfaketime (scripts/test-future.sh): chromium does not start with it preloaded.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}
        instance = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True, env=env)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def world(database_url: str) -> World:
    return seed(database_url)


@pytest.fixture
def server(world: World) -> Iterator[LiveServer]:
    app = create_app(database_url=world.dsn, settings=ApiSettings(stream_poll_seconds=0.2,
                                                                 stream_keepalive_seconds=1.0))
    with LiveServer(app) as live:
        yield live


def open_room(browser: Browser, url: str, username: str, *, locale: str = "en-US", shown_as: str | None = None,
              path: str = "/", before: Callable[[Page], None] | None = None) -> Page:
    """Log in through the page's form (in a browser context of ``locale``) and wait for the live stream.
    ``before`` prepares the page before it loads (init scripts, Playwright's clock)."""
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 820})
    page = context.new_page()
    page.set_default_timeout(LIVE_S)
    if before is not None:
        before(page)
    page.goto(url + path)
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.locator("#user")).to_contain_text(shown_as or username)
    return page


def detector_opens(dsn: str, community: str, device: str, condition: str, tier: Tier, title: str) -> int:
    """An incident written the way the detectors write one (their store, their change type)."""
    change = IncidentChange(kind="opened", dedup_key=f"{device}:{condition}", community_id=community, scope="device",
                            scope_id=device, condition=condition, tier=tier, ts=dt.datetime.now(dt.UTC),
                            title=title, device_ids=(device,), severity=1, detail={"building_id": "b1"})
    with psycopg.connect(dsn) as conn:
        stored = record_changes(conn, [change])
    return stored[0].incident_id




def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
