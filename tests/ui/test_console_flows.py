"""The console's flows in a real browser, as an operator (a Chinese browser), a supervisor and a technician, each
saving screenshots to build/screenshots/: triage order, filters, search, bulk acknowledge, a Level 1 that needs a
finding and a reason (the API's error in Chinese), the Level 1 sound and notification with the shift mute, the
roster import, assign and escalate with the staff picker, history, the device tree and its chart, the demo phone's
signed link, the wall screen, and /docs without any other origin.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from api.app import create_app
from api.settings import ApiSettings
from domain.incidents import Tier
from oncall.channels.webhook import signature
from tests.api.conftest import OTHER, OWN, PASSWORD, LiveServer, World
from tests.ui.conftest import detector_opens, open_room, shot

SINK = "demo-phone-secret-for-the-browser-test"
ROSTER = """
[[teams]]
id = "n-eng"
community_id = "north"
kind = "engineering"
name = "工程部"
skills = ["water", "elderly"]

[[staff]]
id = "s-wang"
community_id = "north"
name = "王建国"
team = "n-eng"
phone = "13800000101"

[[staff]]
id = "s-li"
community_id = "north"
name = "李明"
team = "n-eng"

[[contacts]]
staff_id = "s-wang"
channel = "webhook"

[[schedules]]
id = "n-duty"
community_id = "north"
name = "工程部值班"
[[schedules.rotations]]
handoff_at = 2026-01-05T08:00:00+08:00
shift_hours = 8760
participants = ["s-wang"]
"""


@pytest.fixture
def server(world: World) -> Iterator[LiveServer]:
    app = create_app(database_url=world.dsn, demo_phone_secret=SINK, oncall_link_secret="link-secret-0123456789abcdef",
                     settings=ApiSettings(stream_poll_seconds=0.2, stream_keepalive_seconds=1.0))
    with LiveServer(app) as live:
        yield live


def names(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO places (place_id, community_id, kind, name) VALUES (%s, %s, 'community', '星河湾'),"
                     " ('b1', %s, 'building', '1号楼'), ('u101', %s, 'unit', '0101')", (OWN, OWN, OWN, OWN))


def test_operator_in_a_chinese_browser(browser: Browser, server: LiveServer, world: World) -> None:
    names(world.dsn)
    with psycopg.connect(world.dsn) as conn:  # somebody to dispatch to, covering building 1, who knows lifts
        conn.execute("INSERT INTO teams (team_id, community_id, kind, name) VALUES ('n-eng', %s, 'engineering', '工程部')",
                     (OWN,))
        conn.execute("INSERT INTO staff (staff_id, community_id, team_id, name, skills, buildings)"
                     " VALUES ('s-wang', %s, 'n-eng', '王建国', '{elevator}', '{b1}')", (OWN,))
        conn.execute("UPDATE devices SET name = '0101 户水表' WHERE device_id = %s", (world.meters[OWN],))
    routine = detector_opens(world.dsn, OWN, world.meters[OWN], "battery_low", Tier.ROUTINE, "Meter battery low")
    page = open_room(browser, server.url, f"operator-{OWN}", locale="zh-CN")
    # Chinese by default because the browser prefers it; names of places, not ids.
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#alerts-heading")).to_contain_text("告警")
    card = page.locator(f'[data-alert-id="{routine}"]')
    expect(card).to_contain_text("电量低")
    expect(card).to_contain_text("星河湾 · 1号楼 · 0101")  # down to the unit, by name
    expect(card).to_contain_text("设备: 0101 户水表")
    # A new Level 1 over the stream: red, above the Level 3, with the sound/notification hook fired.
    # Record what the page notifies (headless chromium shows no notification itself).
    page.evaluate("() => { window.__notes = []; window.Notification = class { constructor(t) { window.__notes.push(t); } "
                  "static get permission() { return 'granted'; } static requestPermission() { return Promise.resolve('granted'); } }; }")
    sos = detector_opens(world.dsn, OWN, world.devices[OWN], "sos", Tier.LIFE_SAFETY, "SOS button pressed")
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_contain_text("一键呼叫 SOS")
    expect(page.locator("body")).to_have_attribute("data-last-level1", str(sos))
    assert page.evaluate("window.__notes") == ["新的一级告警: 一键呼叫 SOS"]
    assert [int(x) for x in page.locator("#alert-list > li").evaluate_all("e => e.map(x => x.dataset.alertId)")] \
        == [sos, routine]
    # Mute for the shift: the next Level 1 is shown but neither rings nor notifies.
    page.locator("#sound").click()
    expect(page.locator("#sound")).to_have_attribute("aria-pressed", "true")
    second = detector_opens(world.dsn, OWN, "north-hub-2", "fall", Tier.LIFE_SAFETY, "Fall detected")
    expect(page.locator(f'[data-alert-id="{second}"]')).to_contain_text("跌倒报警")
    assert page.evaluate("window.__notes").count("新的一级告警: 跌倒报警") == 0
    shot(page, "operator-zh-board")

    # Filters and search go to the API: Level 3 only, then a search by building name.
    page.locator("#filters select[name=tier]").select_option("3")
    expect(page.locator("#alert-list > li")).to_have_count(1)
    page.locator("#filters select[name=tier]").select_option("")
    page.locator("#filters input[name=q]").fill("跌倒不存在")
    page.locator("#filters button[type=submit]").click()
    expect(page.locator("#alerts-empty")).to_be_visible()
    page.locator("#filters input[name=q]").fill("1号楼 hub-2")  # every word must match: building name and device
    page.locator("#filters button[type=submit]").click()
    expect(page.locator("#alert-list > li")).to_have_count(1)
    expect(page.locator(f'[data-alert-id="{second}"]')).to_be_visible()
    page.locator("#filters input[name=q]").fill("")
    page.locator("#filters button[type=submit]").click()
    expect(page.locator("#alert-list > li")).to_have_count(3)

    # Bulk acknowledge the two Level 1s; acknowledged ones drop below every unacknowledged one.
    page.locator(f'[data-alert-id="{sos}"] input.pick').check()
    page.locator(f'[data-alert-id="{second}"] input.pick').check()
    page.locator("#bulk button").click()
    expect(page.locator("#message")).to_contain_text("已确认 2 条")
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_have_attribute("data-status", "acknowledged")
    expect(page.locator(f'[data-alert-id="{second}"]')).to_have_attribute("data-status", "acknowledged")
    expect(page.locator("#alert-list > li").first).to_have_attribute("data-alert-id", str(routine))
    order = [int(x) for x in page.locator("#alert-list > li").evaluate_all("e => e.map(x => x.dataset.alertId)")]
    assert order[0] == routine

    # Resolving a Level 1 needs a finding and a reason: the API's refusal is shown in Chinese.
    page.locator(f'[data-alert-id="{sos}"]').get_by_role("button", name="详情").click()
    resolve = page.locator("#detail form.resolve")
    resolve.locator("select[name=resolution]").select_option("false_alarm")
    resolve.locator("input[name=reason]").evaluate("e => e.required = false")  # let the API refuse it
    resolve.get_by_role("button", name="解决").click()
    expect(page.locator("#message")).to_contain_text("一级告警必须填写处理原因")
    resolve.locator("input[name=reason]").fill("老人误按")
    resolve.get_by_role("button", name="解决").click()
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_have_count(0)
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT resolution, resolution_reason FROM incidents WHERE id = %s", (sos,)).fetchone() \
            == ("false_alarm", "老人误按")
    expect(page.locator('[data-kpi="false_alarm_rate"]')).to_contain_text("误报率")
    expect(page.locator('[data-kpi="false_alarm_rate"] .kpi-threshold')).to_contain_text("≤ 10 %")
    # Units on every KPI, and the trend says whether the change is for the worse (more alerts than last period).
    per_1000 = page.locator('[data-kpi="alerts_per_1000_devices"]')
    expect(per_1000.locator(".kpi-value")).to_contain_text("条/千台")
    expect(per_1000).to_have_attribute("title", re.compile("^本期新发生的告警数"))  # what it counts, in Chinese
    expect(per_1000.locator(".trend.worse")).to_have_attribute("title", "较上期上升 (变差)")
    page.locator('[data-view="history"]').click()
    expect(page.locator("#view-history")).to_contain_text("老人误按")
    # History has its own filters: Level 3 has nothing resolved; a search by building name finds the SOS.
    history = page.locator("#view-history form.history-filters")
    history.locator("select[name=tier]").select_option("3")
    expect(page.locator("#view-history")).to_contain_text("没有符合条件的告警")
    history = page.locator("#view-history form.history-filters")
    history.locator("select[name=tier]").select_option("")
    history = page.locator("#view-history form.history-filters")
    history.locator("input[name=q]").fill("1号楼")
    history.get_by_role("button", name="应用").click()
    expect(page.locator("#view-history")).to_contain_text("老人误按")
    shot(page, "operator-zh-history")

    # Why the order went to whom, in Chinese with names: the reason is codes the page reads in its language.
    token = page.evaluate("sessionStorage.getItem('steward.token')")
    import httpx

    created = httpx.post(f"{server.url}/work-orders", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                         json={"community_id": OWN, "title": "1号楼电梯异响", "tier": 3, "source": "staff",
                               "building_id": "b1", "condition": "door_wear"})
    assert created.status_code == 201 and created.json()["assignee"] == "s-wang", created.text
    page.locator('[data-view="board"]').click()
    page.locator(f'[data-order-id="{created.json()["id"]}"]').get_by_role("button", name="详情").click()
    timeline = page.locator("#detail .order-timeline")
    expect(timeline).to_contain_text("派单 · 系统 · → 王建国 · 原因: 自动派单；王建国：尚有余量，负责1号楼，没有匹配的技能，手上 0 张未完成工单")
    expect(timeline).to_contain_text("创建 · operator-north · 原因: 没有对应规则：默认由工程处理")
    expect(timeline).not_to_contain_text("auto-dispatch")
    shot(page, "operator-zh-order-why")
    # The same history from the History view: an order's number opens it.
    page.locator('[data-view="history"]').click()
    page.locator(f'#view-history button[data-order-id="{created.json()["id"]}"]').click()
    expect(page.locator("#view-board")).to_be_visible()
    expect(page.locator("#detail .order-timeline")).to_contain_text("派单 · 系统 · → 王建国")
    # The server out of reach: the page says so in Chinese too (the browser's own message is English).
    page.route("**/alerts/*", lambda route: route.abort())
    page.locator(f'[data-alert-id="{routine}"]').get_by_role("button", name="详情").click()
    expect(page.locator("#message")).to_contain_text("无法连接服务器")
    page.context.close()


# Headless chromium has no speaker and shows no notification: the page's AudioContext and Notification are
# replaced by recorders before it loads; permission is "default" until the page asks (at the login click).
ALARM_RECORDERS = """
window.__tones = 0; window.__notes = []; window.__asked = 0;
window.AudioContext = class {
  constructor() { this.state = "suspended"; this.currentTime = 0; this.destination = {}; }
  resume() { this.state = "running"; return Promise.resolve(); }
  createOscillator() { return { frequency: { setValueAtTime() {} }, connect: (g) => g, start() { window.__tones++; }, stop() {} }; }
  createGain() { return { gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} }, connect: (d) => d }; }
};
let permission = "default";
window.Notification = class {
  constructor(title) { window.__notes.push(title); }
  static get permission() { return permission; }
  static requestPermission() { window.__asked++; permission = "granted"; return Promise.resolve(permission); }
};
"""


def test_level1_rings_until_somebody_owns_it(browser: Browser, server: LiveServer, world: World) -> None:
    def prepare(page: Page) -> None:
        page.add_init_script(ALARM_RECORDERS)
        page.clock.install()  # the page's timers, so 30 s of waiting take no 30 s

    page = open_room(browser, server.url, f"operator-{OWN}", locale="zh-CN", before=prepare)
    # Asked once, at the login click (a gesture, as browsers require); granted, so no button asks again.
    assert page.evaluate("window.__asked") == 1
    expect(page.locator("#notify")).to_be_hidden()
    sos = detector_opens(world.dsn, OWN, world.devices[OWN], "sos", Tier.LIFE_SAFETY, "SOS button pressed")
    expect(page.locator("body")).to_have_attribute("data-rings", "1")
    assert page.evaluate("window.__notes") == ["新的一级告警: 一键呼叫 SOS"]
    # Nobody has acknowledged it: it rings again (no second notification), even with the board filtered to Level 3.
    page.locator("#filters select[name=tier]").select_option("3")
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_have_count(0)
    page.clock.fast_forward(31_000)
    expect(page.locator("body")).to_have_attribute("data-rings", "2")
    assert page.evaluate("window.__tones") == 6 and len(page.evaluate("window.__notes")) == 1
    hidden = page.locator("#hidden-level1")
    expect(hidden).to_have_text("有 1 条未确认的一级告警被筛选隐藏：点此显示全部")
    hidden.click()  # one click shows everything again
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_be_visible()
    expect(hidden).to_be_hidden()
    page.locator(f'[data-alert-id="{sos}"]').get_by_role("button", name="确认").click()
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_have_attribute("data-status", "acknowledged")
    page.clock.fast_forward(61_000)
    expect(page.locator("body")).to_have_attribute("data-level1-waiting", "false")
    expect(page.locator("body")).to_have_attribute("data-rings", "2")
    # A Level 2 raised to Level 1 is a new Level 1 for the room: announced like one.
    leak = detector_opens(world.dsn, OWN, world.meters[OWN], "burst", Tier.URGENT, "Pipe burst")
    expect(page.locator(f'[data-alert-id="{leak}"]')).to_be_visible()
    token = page.evaluate("sessionStorage.getItem('steward.token')")
    import httpx

    raised = httpx.post(f"{server.url}/alerts/{leak}/escalate", headers={"Authorization": f"Bearer {token}"},
                        json={"tier": 1, "reason": "water into the switch room"}, timeout=10)
    assert raised.status_code == 200, raised.text
    expect(page.locator("body")).to_have_attribute("data-rings", "3")
    assert page.evaluate("window.__notes")[-1] == "新的一级告警: 爆管"
    page.context.close()


def test_supervisor_runs_the_roster_and_the_board(browser: Browser, server: LiveServer, world: World) -> None:
    names(world.dsn)
    leak = detector_opens(world.dsn, OWN, world.meters[OWN], "continuous_flow", Tier.ROUTINE, "Flow never stops")
    page = open_room(browser, server.url, f"supervisor-{OWN}")
    page.locator('[data-view="people"]').click()
    page.locator("#view-people textarea").fill(ROSTER)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#message")).to_contain_text("Imported")
    expect(page.locator('#view-people tr[data-staff-id="s-wang"]')).to_contain_text("● 工程部值班")
    expect(page.locator('#view-people tr[data-schedule-id="n-duty"]')).to_contain_text("● 王建国")
    # A roster error names the line and the field.
    broken = ROSTER.replace('team = "n-eng"\nphone', 'team = "n-guards"\nphone')
    line = broken.splitlines().index('team = "n-guards"') + 1
    page.locator("#view-people textarea").fill(broken)
    page.get_by_role("button", name="Check only").click()
    expect(page.locator("#message")).to_contain_text(f"line {line}: $.staff[0].team: no team 'n-guards'")
    shot(page, "supervisor-people")

    page.locator('[data-view="board"]').click()
    page.locator(f'[data-alert-id="{leak}"]').get_by_role("button", name="Details").click()
    picker = page.locator('#detail form[aria-label="Assign"] select')
    expect(picker.locator("option", has_text="王建国")).to_contain_text("on duty")
    picker.select_option("s-wang")
    page.locator('#detail form[aria-label="Assign"] button').click()
    expect(page.locator(f'[data-alert-id="{leak}"]')).to_contain_text("assignee 王建国")
    page.locator('#detail form[aria-label="Escalate"] select').select_option("2")
    page.locator('#detail form[aria-label="Escalate"] input').fill("water on the floor")
    page.locator('#detail form[aria-label="Escalate"] button').click()
    expect(page.locator(f'[data-alert-id="{leak}"]')).to_have_attribute("data-tier", "2")
    expect(page.locator("#detail .timeline")).to_contain_text("assigned · supervisor-north · → 王建国")
    shot(page, "supervisor-board")

    # From the alert to its device: the tree opens on it, with its state and telemetry chart.
    page.locator(f'#detail .devices button[data-device-id="{world.meters[OWN]}"]').click()
    expect(page.locator("#view-devices .tree")).to_contain_text("星河湾")
    expect(page.locator(f'#view-devices button.device.selected[data-device-id="{world.meters[OWN]}"]')).to_be_visible()
    expect(page.locator("#view-devices .device-panel")).to_contain_text(world.meters[OWN])
    shot(page, "supervisor-devices")
    with psycopg.connect(world.dsn) as conn:
        conn.execute("UPDATE devices SET name = '0101 户水表' WHERE device_id = %s", (world.meters[OWN],))
    page.locator('[data-view="dead"]').click()
    expect(page.locator("#view-dead")).to_contain_text("invalid content")  # the gateway's reason, in words
    letter = page.locator("#view-dead td.device-name").first
    expect(letter).to_have_text("0101 户水表")  # the device by name; a click opens it in the tree
    letter.get_by_role("button").click()
    expect(page.locator(f'#view-devices button.device.selected[data-device-id="{world.meters[OWN]}"]')).to_be_visible()
    page.locator('[data-view="dead"]').click()

    # The same views in Chinese: codes read as words, units too; a person who leaves is deactivated here.
    page.locator("#lang").click()
    # still on the view the user was on: the reason's Chinese name and what it means, the gateway's English below
    dead = page.locator(f'#view-dead tr:has(td.device-name:has-text("0101 户水表"))')
    expect(dead.locator("td.reason strong")).to_have_text("无效载荷")
    expect(dead.locator("td.reason small")).to_have_text("invalid_payload")
    expect(dead.locator("td.detail")).to_contain_text("载荷字段缺失、类型不对或超出范围")
    expect(dead.locator("td.detail small")).to_have_text("网关原文：flow_lpm: expected a number")
    expect(dead.locator('td.detail small span[lang="en"]')).to_have_text("flow_lpm: expected a number")
    shot(page, "supervisor-zh-dead-letters")
    expect(page.locator("#live")).to_have_text("● 实时")
    expect(page.locator("#user")).to_have_text("supervisor-north · 主管")
    page.locator('[data-view="people"]').click()
    people = page.locator("#view-people")
    expect(people).to_contain_text("供水、独居老人")
    expect(people.locator('tr[data-staff-id="s-wang"]')).to_contain_text("短信/IM 网关")
    expect(people.locator('tr[data-schedule-id="n-duty"]')).to_contain_text("王建国 · 8760 小时")
    people.locator('tr[data-staff-id="s-li"]').get_by_role("button", name="停用").click()
    expect(people.locator('tr[data-staff-id="s-li"]')).to_have_attribute("data-active", "false")
    expect(people.locator('tr[data-staff-id="s-li"]')).to_contain_text("李明 (已停用)")
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT active FROM staff WHERE staff_id = 's-li'").fetchone() == (False,)
    # How on-call reaches 王建国: the app too, in English.
    wang = people.locator('tr[data-staff-id="s-wang"]')
    wang.get_by_role("button", name="修改").click()
    wang.get_by_label("App 推送").check()
    wang.locator("select[name=locale]").select_option("en")
    wang.get_by_role("button", name="保存").click()
    expect(people.locator('tr[data-staff-id="s-wang"] td.contacts')).to_contain_text("App 推送、短信/IM 网关")
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT channel, locale FROM oncall_contacts WHERE staff_id = 's-wang' ORDER BY channel"
                            ).fetchall() == [("push", "en"), ("webhook", "en")]
    shot(page, "supervisor-people-zh")
    page.context.close()


def test_technician_acknowledges_from_the_phone_link(browser: Browser, server: LiveServer, world: World) -> None:
    from oncall.links import make_token  # the same signing as the on-call delivery

    with psycopg.connect(world.dsn) as conn:
        conn.execute("INSERT INTO staff (staff_id, community_id, name) VALUES ('s-zhou', %s, '周强')", (OWN,))
        conn.execute("UPDATE api_users SET staff_id = 's-zhou' WHERE username = %s", (f"technician-{OWN}",))
    sos = detector_opens(world.dsn, OWN, world.devices[OWN], "sos", Tier.LIFE_SAFETY, "SOS button pressed")
    nonce = "n-" + str(sos)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with psycopg.connect(world.dsn) as conn:
        conn.execute("INSERT INTO oncall_links (nonce, incident_id, action, staff_id, expires_at, issued_at)"
                     " VALUES (%s, %s, 'ack', 's-zhou', %s, now())", (nonce, sos, expires))
    token = make_token("link-secret-0123456789abcdef", incident_id=sos, action="ack", staff_id="s-zhou",
                       expires_at=expires, nonce=nonce)
    message = {"staff_id": "s-zhou", "community_id": OWN, "incident_id": sos, "subject": "【一级（红色）告警】SOS",
               "text": "小区：星河湾", "ack_url": f"{server.url}/oncall/links/{token}"}
    body = json.dumps(message, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    import httpx

    delivered = httpx.post(f"{server.url}/demo/phone/inbox", content=body, timeout=10,
                           headers={"X-Steward-Timestamp": ts, "X-Steward-Signature": signature(SINK, ts, body)})
    assert delivered.status_code == 204

    page = open_room(browser, server.url, f"technician-{OWN}", shown_as="周强")
    expect(page.locator("#view-people")).to_be_hidden()
    page.locator('[data-view="phone"]').click()
    sms = page.locator("#view-phone li.sms").first
    expect(sms).to_contain_text("周强")
    with page.context.expect_page() as opened:
        sms.get_by_role("link", name="Acknowledge (link)").click()
    confirm = opened.value
    shot(page, "technician-phone")
    confirm.get_by_role("button").click()
    expect(confirm.locator("body")).to_contain_text("cknowledged")
    page.locator('[data-view="board"]').click()
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_have_attribute("data-status", "acknowledged")
    expect(page.locator(f'[data-alert-id="{sos}"]')).to_contain_text("acknowledged by 周强")
    # The technician's own work order: a progress note (跟进) from the page lands on its history.
    token = httpx.post(f"{server.url}/auth/token", data={"username": f"supervisor-{OWN}", "password": PASSWORD},
                       timeout=10).json()["access_token"]
    order = httpx.post(f"{server.url}/work-orders", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                       json={"community_id": OWN, "title": "Lobby door closer loose", "tier": 3, "source": "staff",
                             "auto_dispatch": False})
    assert order.status_code == 201, order.text
    page.locator(f'[data-order-id="{order.json()["id"]}"]').get_by_role("button", name="Details").click()
    page.locator('#detail form[aria-label^="progress note"] textarea').fill("closer arm loose, tightened")
    page.locator('#detail form[aria-label^="progress note"] button').click()
    expect(page.locator("#detail .order-timeline")).to_contain_text("note · 周强 · closer arm loose, tightened")
    # Accept is offered on the technician's own orders only (the API refuses it on somebody else's).
    with psycopg.connect(world.dsn) as conn:
        conn.execute("INSERT INTO staff (staff_id, community_id, name) VALUES ('s-chen', %s, '陈刚')", (OWN,))
    for assignee in ("s-chen", "s-zhou"):
        r = httpx.post(f"{server.url}/work-orders", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                       json={"community_id": OWN, "title": f"Gate for {assignee}", "tier": 3, "auto_dispatch": False})
        assert r.status_code == 201, r.text
        dispatched = httpx.post(f"{server.url}/work-orders/{r.json()['id']}/actions", timeout=10,
                                headers={"Authorization": f"Bearer {token}"},
                                json={"action": "dispatch", "assignee": assignee})
        assert dispatched.status_code == 200, dispatched.text
        card = page.locator(f'[data-order-id="{r.json()["id"]}"]')
        expect(card).to_have_attribute("data-state", "dispatched")
        expect(card.get_by_role("button", name="Accept")).to_have_count(1 if assignee == "s-zhou" else 0)
    # A login linked to nobody takes no field step, not even on 周强's order (the API says not_linked).
    with psycopg.connect(world.dsn) as conn:
        conn.execute("UPDATE api_users SET staff_id = NULL WHERE username = %s", (f"technician-{OWN}",))
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(card).to_have_attribute("data-state", "dispatched")
    expect(card.get_by_role("button", name="Accept")).to_have_count(0)
    with psycopg.connect(world.dsn) as conn:
        conn.execute("UPDATE api_users SET staff_id = 's-zhou' WHERE username = %s", (f"technician-{OWN}",))
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    # People may be read but not changed by a technician: no import, no staff form.
    page.locator('[data-view="people"]').click()
    expect(page.locator("#view-people")).to_contain_text("周强")
    expect(page.locator("#view-people textarea")).to_have_count(0)
    page.context.close()


def test_wall_screen_and_offline_docs(browser: Browser, server: LiveServer, world: World) -> None:
    detector_opens(world.dsn, OWN, world.devices[OWN], "sos", Tier.LIFE_SAFETY, "SOS button pressed")
    page = open_room(browser, server.url, f"operator-{OWN}", path="/?kiosk=1")
    expect(page.locator("body")).to_have_class("kiosk")
    expect(page.locator("#nav")).to_be_hidden()
    expect(page.locator("#alert-list .actions").first).to_be_hidden()
    shot(page, "kiosk")
    page.context.close()

    context = browser.new_context()
    elsewhere: list[str] = []

    def guard(route: Route) -> None:  # the control room has no internet: anything else fails
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    docs = context.new_page()
    docs.goto(server.url + "/docs")
    # Swagger UI renders the whole document first: seconds on a loaded machine.
    expect(docs.locator(".swagger-ui")).to_contain_text("Steward control-room API", timeout=30_000)
    # The operations rendered, not just the title.
    expect(docs.locator(".swagger-ui")).to_contain_text("/auth/token", timeout=30_000)
    redoc = context.new_page()
    redoc.goto(server.url + "/redoc")
    expect(redoc.locator("h1").first).to_contain_text("Steward control-room API", timeout=30_000)
    # Everything the pages run on came from this server; the only outside request is ReDoc's decorative
    # "API docs by Redocly" logo in its menu, which fails harmlessly (the page rendered above without it).
    assert [u for u in elsewhere if not u.startswith("https://cdn.redoc.ly/redoc/logo-mini.svg")] == []
    context.close()
    assert OTHER  # (the other community is exercised by test_control_room)


def _readings(dsn: str, device: str, event_type: str, stream: str, values: list[float], field: str) -> None:
    """Readings in the last hour by the server's clock (this process's, as the page asks the server's period)."""
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(dsn) as conn:
        for i, value in enumerate(values):
            at = now - dt.timedelta(minutes=50 - 10 * i)
            conn.execute(
                "INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type, msg_id,"
                " value, fields) VALUES (%s, %s, %s, %s, 'water', %s, %s, %s, %s, %s)",
                (at, at, OWN, device, stream, event_type, f"{event_type}-{i}", value, json.dumps({field: value})))


def test_an_alert_shows_its_pages_and_its_device_charts_its_telemetry(browser: Browser, server: LiveServer,
                                                             world: World) -> None:
    # A water meter reports its flow (telemetry) and its battery (heartbeat) under one `value`: the chart
    # asked for `value` without a type, the API answered 422 (two quantities) and the page said "no data".
    names(world.dsn)
    meter = world.meters[OWN]
    _readings(world.dsn, meter, "flow", "telemetry", [2.0, 4.0, 6.0, 8.0, 3.0], "flow_lpm")
    _readings(world.dsn, meter, "heartbeat", "status", [81.0, 80.0, 79.0], "battery")
    leak = detector_opens(world.dsn, OWN, meter, "continuous_flow", Tier.ROUTINE, "Flow never stops")
    with psycopg.connect(world.dsn) as conn:
        conn.execute("INSERT INTO staff (staff_id, community_id, name) VALUES ('s-wang', %s, '王建国'),"
                     " ('s-chen', %s, '陈刚')", (OWN, OWN))
    from tests.api.test_alerts_workorders import page as paged  # what on-call writes when a step fires

    paged(world.dsn, leak, step=0, staff={"s-wang": "sent", "s-chen": "failed"}, at=dt.datetime.now(dt.UTC))
    page = open_room(browser, server.url, f"operator-{OWN}", locale="zh-CN")
    page.locator(f'[data-alert-id="{leak}"]').get_by_role("button", name="详情").click()
    # Whom on-call paged, by name, and whether it arrived.
    pages = page.locator("#detail .pages li")
    expect(pages).to_have_count(2)
    expect(pages.first).to_contain_text("第 1 步 · 王建国 · 短信/IM 网关 · 已送达")
    expect(pages.nth(1)).to_contain_text("第 1 步 · 陈刚 · 短信/IM 网关 · 发送失败")
    page.locator(f'#detail .devices button[data-device-id="{meter}"]').click()
    panel = page.locator("#view-devices .device-panel")
    # The flow first, named with its unit, drawn from the readings (its axis spans 2..8 L/min).
    expect(panel.locator(".chart-label")).to_have_text("流量 (L/min)")
    expect(panel.locator("svg.chart polyline.line")).to_have_count(1)
    expect(panel.locator("svg.chart text.axis").first).to_have_text("2")
    expect(panel.locator("svg.chart")).to_contain_text("8")
    expect(panel).not_to_contain_text("此时段没有数据")
    shot(page, "operator-zh-device-flow")
    # The battery is the other quantity the meter reports; the choice is the operator's.
    expect(panel.locator("button[data-quantity]")).to_have_count(2)
    panel.locator('button[data-quantity="heartbeat"]').click()
    expect(panel.locator(".chart-label")).to_have_text("电量 (%)")
    expect(panel.locator('button[data-quantity="heartbeat"]')).to_have_attribute("aria-pressed", "true")
    expect(panel.locator("svg.chart text.axis").first).to_have_text("79")
    panel.get_by_role("button", name="最近 7 天").click()  # hourly buckets over the week, said so
    expect(panel.locator("h3").first).to_have_text("遥测曲线（每小时）")
    expect(panel.locator(".chart-label")).to_have_text("电量 (%)")
    page.locator("#lang").click()
    expect(panel.locator(".chart-label")).to_have_text("battery (%)")
    # KPI counts read as English: "1 order", not "1 orders" (issue 18's "1 orders").
    said = page.evaluate("""() => import("/ui/app.js").then((m) => [0, 1, 2].map((value) =>
        m.kpiValue("overdue_count", { value, unit: "orders" })))""")
    assert said == ["0 orders", "1 order", "2 orders"]
    page.context.close()


def test_admin_links_a_login_to_a_person(browser: Browser, server: LiveServer, world: World) -> None:
    """A user account is linked to a staff member from the People view (admins): what it acknowledges and
    accepts is then done by that person. A login linked to somebody is not offered for anybody else."""
    with psycopg.connect(world.dsn) as conn:
        conn.execute("INSERT INTO staff (staff_id, community_id, name) VALUES ('s-wang', %s, '王建国'),"
                     " ('s-li', %s, '李明')", (OWN, OWN))
        conn.execute("INSERT INTO staff (staff_id, community_id, name) VALUES ('s-far', %s, 'Far')", (OTHER,))

    def linked() -> dict[str, str]:
        with psycopg.connect(world.dsn) as conn:
            return dict(conn.execute("SELECT username, staff_id FROM api_users WHERE staff_id IS NOT NULL").fetchall())

    page = open_room(browser, server.url, f"admin-{OWN}")
    page.locator('[data-view="people"]').click()
    wang = page.locator('#view-people tr[data-staff-id="s-wang"] select[name=login]')
    li = page.locator('#view-people tr[data-staff-id="s-li"] select[name=login]')
    expect(wang.locator("option", has_text=f"technician-{OTHER}")).to_have_count(0)  # another community's login
    wang.select_option(f"technician-{OWN}")
    expect(page.locator("#message")).to_contain_text("王建国")
    assert linked() == {f"technician-{OWN}": "s-wang"}
    expect(li.locator("option", has_text=f"technician-{OWN}")).to_have_count(0)  # taken by 王建国
    shot(page, "admin-people-login-link")
    wang.select_option("")
    expect(page.locator("#message")).to_contain_text("王建国")
    expect(li.locator("option", has_text=f"technician-{OWN}")).to_have_count(1)
    assert linked() == {}
    li.select_option(f"technician-{OWN}")
    expect(page.locator("#message")).to_contain_text("李明")
    expect(wang.locator("option", has_text=f"technician-{OWN}")).to_have_count(0)  # redrawn: now 李明's
    assert linked() == {f"technician-{OWN}": "s-li"}
    page.locator('[data-view="history"]').click()  # nothing resolved yet: said, not an empty table
    expect(page.locator("#view-history")).to_contain_text("No resolved alerts yet.")
    expect(page.locator("#view-history")).to_contain_text("No work orders yet.")
    page.context.close()
    # A supervisor reads the link but cannot change it (user.manage is the admin's).
    page = open_room(browser, server.url, f"supervisor-{OWN}")
    page.locator('[data-view="people"]').click()
    expect(page.locator('#view-people tr[data-staff-id="s-li"] td.linked-login')).to_have_text(f"technician-{OWN}")
    expect(page.locator("#view-people select[name=login]")).to_have_count(0)
    page.context.close()


def test_supervisor_adds_a_team_from_the_page(browser: Browser, server: LiveServer, world: World) -> None:
    """Teams (kind, skills, buildings) are managed from the People view, not only by TOML."""
    names(world.dsn)
    page = open_room(browser, server.url, f"supervisor-{OWN}", locale="zh-CN")
    page.locator('[data-view="people"]').click()
    form = page.locator('#view-people form[aria-label="新增班组"]')
    form.locator("input[name=id]").fill("n-sec")
    form.locator("input[name=name]").fill("秩序维护部")
    form.locator("select[name=kind]").select_option("security")
    form.get_by_label("门禁").check()
    form.locator("select[name=buildings]").select_option(["b1"])
    form.get_by_role("button", name="保存").click()
    expect(page.locator("#message")).to_contain_text("秩序维护部")
    expect(page.locator("#view-people")).to_contain_text("秩序维护部")
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT community_id, kind, skills, buildings FROM teams WHERE team_id = 'n-sec'"
                            ).fetchone() == (OWN, "security", ["access"], ["b1"])
    # The same id again: the API's refusal, in Chinese.
    form = page.locator('#view-people form[aria-label="新增班组"]')
    form.locator("input[name=id]").fill("n-sec")
    form.locator("input[name=name]").fill("又一个")
    form.get_by_role("button", name="保存").click()
    expect(page.locator("#message")).to_contain_text("与已有数据冲突")
    shot(page, "supervisor-zh-add-team")
    page.context.close()


def test_supervisor_manages_on_call_from_the_page(browser: Browser, server: LiveServer, world: World) -> None:
    """On-call schedules (rotations: hand-off, shift, people in turn) and escalation policies (tier, steps: whom,
    then how long to wait) are created, edited and deleted from the People view, in Chinese; the API has them."""
    import httpx

    names(world.dsn)
    token = httpx.post(server.url + "/auth/token", data={"username": f"supervisor-{OWN}", "password": PASSWORD}
                       ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    roster = ROSTER.split("[[schedules]]")[0]  # the people and the team; the schedule is made from the page
    assert httpx.post(server.url + "/roster/import", headers=auth, json={"toml": roster}).status_code == 200
    page = open_room(browser, server.url, f"supervisor-{OWN}", locale="zh-CN")
    page.locator('[data-view="people"]').click()
    people = page.locator("#view-people")
    expect(people).to_contain_text("还没有升级策略：告警不会通知任何人。")

    form = people.locator('form[aria-label="新增值班表"]')
    form.locator("input[name=id]").fill("n-night")
    form.locator("input[name=name]").fill("夜班")
    form.locator("input[name=handoff_at]").fill("2026-03-02T20:00")
    form.locator("input[name=shift_hours]").fill("12")
    form.locator("select[name=participant]").first.select_option("s-wang")
    form.get_by_role("button", name="+ 人员").click()
    form.locator("select[name=participant]").nth(1).select_option("s-li")
    form.locator("input[name=active_until]").fill("2026-12-31T08:00")
    form.get_by_role("button", name="保存").click()
    expect(page.locator("#message")).to_contain_text("夜班")
    expect(people.locator('tr[data-schedule-id="n-night"]')).to_contain_text("王建国 → 李明 · 12 小时")

    form = people.locator('form[aria-label="新增升级策略"]')
    form.locator("input[name=id]").fill("n-l1")
    form.locator("input[name=name]").fill("一级告警")
    form.locator("select[name=tier]").select_option("1")
    form.locator("select[name=targets]").select_option(["schedule:n-night"])
    form.locator("input[name=delay_minutes]").fill("5")
    form.get_by_role("button", name="+ 步骤").click()
    form.locator("select[name=targets]").nth(1).select_option(["team:n-eng", "staff:s-wang"])
    form.locator("input[name=delay_minutes]").nth(1).fill("10")
    form.get_by_role("button", name="保存").click()
    row = people.locator('tr[data-policy-id="n-l1"]')
    expect(row).to_contain_text("L1")
    expect(row).to_contain_text("夜班")
    expect(row).to_contain_text("工程部")
    row.scroll_into_view_if_needed()
    shot(page, "supervisor-zh-oncall")
    policy = httpx.get(server.url + "/oncall/policies/n-l1", headers=auth).json()
    assert (policy["tier"], policy["name"]) == (1, "一级告警")
    assert [(s["targets"], s["delay_minutes"]) for s in policy["steps"]] == [
        (["schedule:n-night"], 5), (["team:n-eng", "staff:s-wang"], 10)]
    schedule = httpx.get(server.url + "/oncall/schedules/n-night", headers=auth).json()
    assert [(r["participants"], r["shift_hours"]) for r in schedule["rotations"]] == [(["s-wang", "s-li"], 12)]

    # Edit: the form opens with the policy; a shorter first wait is saved.
    row.get_by_role("button", name="修改").click()
    form = people.locator('form[aria-label="修改升级策略"]')
    expect(form.locator("input[name=id]")).to_have_value("n-l1")
    form.locator("input[name=delay_minutes]").first.fill("3")
    form.get_by_role("button", name="保存").click()
    expect(people.locator('tr[data-policy-id="n-l1"]')).to_contain_text("之后等待 3 分钟")
    assert httpx.get(server.url + "/oncall/policies/n-l1", headers=auth).json()["steps"][0]["delay_minutes"] == 3

    # Edit the schedule: shorter shifts; its "only until" stays as it was.
    people.locator('tr[data-schedule-id="n-night"]').get_by_role("button", name="修改").click()
    form = people.locator('form[aria-label="修改值班表"]')
    expect(form.locator("input[name=active_until]")).to_have_value("2026-12-31T08:00")
    form.locator("input[name=shift_hours]").fill("8")
    form.get_by_role("button", name="保存").click()
    expect(people.locator('tr[data-schedule-id="n-night"]')).to_contain_text("王建国 → 李明 · 8 小时")
    rotation = httpx.get(server.url + "/oncall/schedules/n-night", headers=auth).json()["rotations"][0]
    assert (rotation["shift_hours"], rotation["participants"]) == (8, ["s-wang", "s-li"])
    assert dt.datetime.fromisoformat(rotation["active_until"]) == dt.datetime.fromisoformat(
        page.evaluate("new Date('2026-12-31T08:00').toISOString()").replace("Z", "+00:00"))

    # The schedule the policy pages cannot go first: the API's refusal, in Chinese; then the policy, then it.
    people.locator('tr[data-schedule-id="n-night"]').get_by_role("button", name="删除").click()
    people.locator('tr[data-schedule-id="n-night"]').get_by_role("button", name="确定删除").click()
    expect(page.locator("#message")).to_contain_text("值班表 n-night 仍被升级策略 n-l1 使用")
    people.locator('tr[data-policy-id="n-l1"]').get_by_role("button", name="删除").click()
    people.locator('tr[data-policy-id="n-l1"]').get_by_role("button", name="确定删除").click()
    expect(people.locator('tr[data-policy-id="n-l1"]')).to_have_count(0)
    people.locator('tr[data-schedule-id="n-night"]').get_by_role("button", name="删除").click()
    people.locator('tr[data-schedule-id="n-night"]').get_by_role("button", name="确定删除").click()
    expect(people.locator('tr[data-schedule-id="n-night"]')).to_have_count(0)
    assert httpx.get(server.url + "/oncall/schedules/n-night", headers=auth).status_code == 404
    page.context.close()
