"""The control-room page in a real browser (Debian's chromium driven by Playwright) against the real API
under uvicorn: an operator logs in through the page, a detector's Level 1 incident appears live in red,
Acknowledge records the operator in the database, and another community's operator never sees it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.app import create_app
from api.settings import ApiSettings
from detectors.store import record_changes
from domain.incidents import IncidentChange, Tier
from tests.api.conftest import OTHER, OWN, PASSWORD, LiveServer, World
from tests.ui.conftest import RED, detector_opens, open_room

def alert_ids(page: Page) -> list[int]:
    return [int(v) for v in page.locator("#alert-list > li").evaluate_all("els => els.map(e => e.dataset.alertId)")]


def test_operator_sees_a_level1_alert_live_and_acknowledges_it(browser: Browser, server: LiveServer, world: World,
                                                               tmp_path: Path) -> None:
    # The page shows the API's error shape: a wrong password is refused with its code.
    other = browser.new_page(viewport={"width": 1280, "height": 800})
    other.goto(server.url + "/")
    other.get_by_label("Username").fill(f"operator-{OTHER}")
    other.get_by_label("Password").fill("not-the-password")
    other.get_by_role("button", name="Log in").click()
    expect(other.locator("#message")).to_contain_text("invalid_credentials")
    other.close()

    page = open_room(browser, server.url, f"operator-{OWN}")
    other = open_room(browser, server.url, f"operator-{OTHER}")
    expect(page.locator("#alerts-empty")).to_be_visible()

    routine = detector_opens(world.dsn, OWN, world.meters[OWN], "battery_low", Tier.ROUTINE, "Meter battery low")
    expect(page.locator(f'[data-alert-id="{routine}"]')).to_be_visible()
    sos = detector_opens(world.dsn, OWN, world.devices[OWN], "sos", Tier.LIFE_SAFETY, "SOS button pressed")
    theirs = detector_opens(world.dsn, OTHER, world.devices[OTHER], "sos", Tier.LIFE_SAFETY, "SOS in the south")

    card = page.locator(f'[data-alert-id="{sos}"]')
    expect(card).to_be_visible()
    expect(card).to_have_class(re.compile(r"\btier-1\b"))
    expect(card.locator(".tier-badge")).to_have_css("background-color", RED)
    expect(card).to_contain_text("SOS button pressed")
    expect(card).to_contain_text(world.devices[OWN])
    expect(card).to_contain_text("SOS one-key call")  # the condition's name, not its id
    expect(card.locator(".sla")).to_contain_text("ack due in")
    assert alert_ids(page) == [sos, routine]  # Level 1 above Level 3 although it came later
    # The other community's operator got their own alert live, and never this one.
    expect(other.locator(f'[data-alert-id="{theirs}"]')).to_be_visible()
    assert alert_ids(other) == [theirs]
    assert theirs not in alert_ids(page)

    # The linked resident as the API returns it to an operator (resident.pii): unmasked.
    card.get_by_role("button", name="Details").click()
    expect(page.locator("#detail .residents")).to_contain_text("Wang Xiuying")
    page.screenshot(path=str(tmp_path / "control-room.png"))

    card.get_by_role("button", name="Acknowledge").click()
    expect(card).to_have_attribute("data-status", "acknowledged")
    expect(card).to_contain_text(f"acknowledged by operator-{OWN}")
    expect(card.get_by_role("button", name="Acknowledge")).to_have_count(0)
    with psycopg.connect(world.dsn) as conn:
        row = conn.execute("SELECT status, acknowledged_by FROM incidents WHERE id = %s", (sos,)).fetchone()
        actors = conn.execute("SELECT actor FROM incident_timeline WHERE incident_id = %s AND kind LIKE 'ack%%'",
                              (sos,)).fetchall()
    assert row == ("acknowledged", f"operator-{OWN}")
    assert actors == [(f"operator-{OWN}",)]

    # The other community's page still lists only its own alert, after all these changes were streamed.
    marker = detector_opens(world.dsn, OTHER, world.meters[OTHER], "battery_low", Tier.ROUTINE, "South battery")
    expect(other.locator(f'[data-alert-id="{marker}"]')).to_be_visible()
    assert sorted(alert_ids(other)) == sorted([theirs, marker])
    expect(other.get_by_text("SOS button pressed")).to_have_count(0)
    other.close()
    page.close()


def test_residents_stay_masked_and_work_orders_move(browser: Browser, server: LiveServer, world: World) -> None:
    sos = detector_opens(world.dsn, OWN, world.devices[OWN], "sos", Tier.LIFE_SAFETY, "SOS button pressed")
    tech = open_room(browser, server.url, f"technician-{OWN}")
    card = tech.locator(f'[data-alert-id="{sos}"]')
    card.get_by_role("button", name="Details").click()
    residents = tech.locator("#detail .residents")
    expect(residents).to_contain_text("masked for your role")
    expect(residents).to_contain_text("W**")
    expect(tech.locator("body")).not_to_contain_text("Wang Xiuying")
    expect(tech.locator("body")).not_to_contain_text("13800138000")
    tech.close()

    page = open_room(browser, server.url, f"operator-{OWN}")
    token = httpx.post(f"{server.url}/auth/token", data={"username": f"supervisor-{OWN}", "password": PASSWORD},
                       timeout=10).json()["access_token"]
    created = httpx.post(f"{server.url}/work-orders", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                         json={"community_id": OWN, "title": "Lobby door closer loose", "tier": 3,
                               "source": "staff", "auto_dispatch": False})
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    order = page.locator(f'[data-order-id="{order_id}"]')
    expect(order).to_have_attribute("data-state", "created")  # arrived over the stream
    # Only the transitions the machine allows from "created" for an operator (workorder.manage).
    expect(order.get_by_role("button")).to_have_text(["Dispatch", "Cancel", "Details"])
    order.get_by_role("button", name="Details").click()  # the order's history, step by step
    expect(page.locator("#detail .order-timeline")).to_contain_text(f"created · supervisor-{OWN}")
    order.get_by_role("button", name="Cancel").click()
    order.get_by_placeholder("reason").fill("duplicate of a resident call")
    order.get_by_role("button", name="Cancel").click()
    expect(order).to_have_count(0)  # cancelled orders leave the open list
    with psycopg.connect(world.dsn) as conn:
        state = conn.execute("SELECT state FROM work_orders WHERE id = %s", (order_id,)).fetchone()
    assert state == ("cancelled",)

    page.locator("#lang").click()  # labels in Chinese; the data stays as it is
    expect(page.locator("#alerts-heading")).to_contain_text("告警")
    expect(page.locator(f'[data-alert-id="{sos}"]').get_by_role("button", name="确认")).to_be_visible()

    # Logging out revokes the token at the server, not only in the page.
    token = page.evaluate("sessionStorage.getItem('steward.token')")
    assert token and token.startswith("stw_t_")
    page.locator("#logout").click()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#room")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('steward.token')") is None
    me = httpx.get(f"{server.url}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 401 and me.json()["error"]["code"] == "invalid_token"
    page.close()
