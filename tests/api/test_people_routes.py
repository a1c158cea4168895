"""People, roster import, resolutions, bulk acknowledgement, triage order and the demo phone (issue 18).

The role × community matrix of these endpoints is in test_tenancy_matrix.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from oncall.channels.webhook import signature
from tests.api.conftest import OTHER, OWN, SetClock, World
from tests.api.test_alerts_workorders import open_incident

EXAMPLE = Path(__file__).resolve().parents[2] / "oncall" / "example.toml"


def own_example() -> str:
    """The worked example, moved into the test's own community."""
    return EXAMPLE.read_text(encoding="utf-8").replace('"c1"', f'"{OWN}"').replace("c1-b3", "b1")


def test_roster_import_creates_what_it_references_in_one_transaction(world: World, client: TestClient) -> None:
    supervisor = world.headers(f"supervisor-{OWN}")
    r = client.post("/roster/import", headers=supervisor, json={"toml": own_example()})
    assert r.status_code == 200, r.text
    assert r.json()["counts"] == {"teams": 3, "staff": 6, "contacts": 6, "schedules": 1, "policies": 2,
                                  "maintenance": 1}
    staff = {p["id"]: p for p in client.get("/staff", headers=world.headers(f"operator-{OWN}")).json()}
    assert staff["s-wang"]["name"] == "王建国" and staff["s-wang"]["team_name"] == "工程部"
    assert {c["channel"] for c in staff["s-wang"]["contacts"]} == {"push", "webhook"}
    teams = {t["id"]: t for t in client.get("/teams", headers=supervisor).json()}
    assert teams["c1-eng"]["lead_staff_id"] == "s-wang" and teams["c1-eng"]["members"] == 3
    # The rotation hands off daily between Wang and Li from 2026-03-02: exactly one of them is on duty now.
    on_duty = [p["id"] for p in client.get("/staff?on_duty=true", headers=supervisor).json()]
    assert len(on_duty) == 1 and on_duty[0] in ("s-wang", "s-li")


def test_roster_import_errors_name_line_and_field_and_write_nothing(world: World, client: TestClient) -> None:
    supervisor = world.headers(f"supervisor-{OWN}")
    text = own_example().replace('team = "c1-security"', 'team = "c1-guards"')
    bad_line = text.splitlines().index('team = "c1-guards"') + 1
    r = client.post("/roster/import", headers=supervisor, json={"toml": text})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_roster" and error["field"] == "body.toml"
    assert error["message"].startswith(f"line {bad_line}: $.staff[3].team: no team 'c1-guards'")
    with psycopg.connect(world.dsn) as conn:  # the teams and staff before the error were not kept
        assert conn.execute("SELECT count(*) FROM staff").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM teams").fetchone() == (0,)
    typed = own_example().replace("shift_hours = 48", 'shift_hours = "two days"')
    r = client.post("/roster/import", headers=supervisor, json={"toml": typed})
    line = typed.splitlines().index('shift_hours = "two days"') + 1
    assert r.json()["error"]["message"].startswith(f"line {line}: ")
    assert "$.schedules[0].rotations[1].shift_hours" in r.json()["error"]["message"]
    r = client.post("/roster/import", headers=supervisor, json={"toml": own_example(), "dry_run": True})
    assert r.status_code == 200 and r.json()["dry_run"] is True
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM staff").fetchone() == (0,)
    other = own_example().replace(f'community_id = "{OWN}"', f'community_id = "{OTHER}"', 1)
    r = client.post("/roster/import", headers=supervisor, json={"toml": other})
    assert r.status_code == 404 and "$.teams[0].community_id" in r.json()["error"]["message"]


def test_cli_loads_the_example_on_a_fresh_database_and_reports_lines(world: World, tmp_path: Path) -> None:
    good = tmp_path / "roster.toml"
    good.write_text(own_example(), encoding="utf-8")
    env = {"STEWARD_DATABASE_URL": world.dsn, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "steward", "oncall", "load", str(good)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 staff" in done.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(own_example().replace('"staff:s-zhao"', '"staff:s-nobody"'), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "steward", "oncall", "load", str(bad)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
    assert f"{bad}:" in done.stdout and "no staff 's-nobody'" in done.stdout


def test_level1_resolution_needs_a_reason_and_false_alarms_feed_the_kpi(world: World, client: TestClient) -> None:
    operator = world.headers(f"operator-{OWN}")
    sos = open_incident(world.dsn, OWN, world.devices[OWN], tier=1)
    r = client.post(f"/alerts/{sos}/resolve", headers=operator, json={"note": "fine"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.resolution"
    r = client.post(f"/alerts/{sos}/resolve", headers=operator, json={"resolution": "false_alarm"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.reason"
    r = client.post(f"/alerts/{sos}/resolve", headers=operator,
                    json={"resolution": "false_alarm", "reason": "resident pressed the button by mistake"})
    assert r.status_code == 200, r.text
    assert r.json()["resolution"] == "false_alarm"
    assert r.json()["resolution_reason"] == "resident pressed the button by mistake"
    leak = open_incident(world.dsn, OWN, world.meters[OWN], tier=2)
    r = client.post(f"/alerts/{leak}/resolve", headers=operator, json={"resolution": "duplicate"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.duplicate_of"
    r = client.post(f"/alerts/{leak}/resolve", headers=operator, json={"resolution": "duplicate", "duplicate_of": sos})
    assert r.status_code == 200 and r.json()["duplicate_of"] == sos
    kpis = client.get(f"/kpis?community={OWN}", headers=operator).json()["kpis"]
    assert kpis["false_alarm_rate"]["value"] == 0.5 and kpis["false_alarm_rate"]["warning"] is True
    timeline = client.get(f"/alerts/{sos}", headers=operator).json()["timeline"]
    assert timeline[-1]["detail"]["resolution"] == "false_alarm"


def test_bulk_acknowledge_reports_each_alert(world: World, client: TestClient) -> None:
    operator = world.headers(f"operator-{OWN}")
    a = open_incident(world.dsn, OWN, world.devices[OWN])
    b = open_incident(world.dsn, OWN, world.meters[OWN])
    theirs = open_incident(world.dsn, OTHER, world.devices[OTHER])
    client.post(f"/alerts/{b}/acknowledge", headers=operator)
    r = client.post("/alerts/acknowledge", headers=operator, json={"ids": [a, b, theirs]})
    assert r.status_code == 200, r.text
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[a]["ok"] and results[a]["status"] == "acknowledged"
    assert results[b]["error"] == "illegal_transition" and results[theirs]["error"] == "not_found"
    assert r.json()["acknowledged"] == 1
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT status FROM incidents WHERE id = %s", (theirs,)).fetchone() == ("open",)
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'alert.acknowledge'").fetchone() == (2,)
    r = client.post("/alerts/acknowledge", headers=world.headers(f"manager-{OWN}"), json={"ids": [a]})
    assert r.status_code == 403


def test_a_linked_login_acts_as_the_person(world: World, client: TestClient) -> None:
    supervisor, admin = world.headers(f"supervisor-{OWN}"), world.headers(f"admin-{OWN}")
    r = client.post("/staff", headers=supervisor, json={"id": "s-liu", "community_id": OWN, "name": "刘洋",
                                                        "role": "technician", "contacts": [{"channel": "push"}]})
    assert r.status_code == 201, r.text
    technician_id = world.users[f"technician-{OWN}"]
    r = client.put(f"/users/{technician_id}/staff", headers=admin, json={"staff_id": "s-liu"})
    assert r.status_code == 200, r.text
    technician = world.headers(f"technician-{OWN}")
    me = client.get("/auth/me", headers=technician).json()
    assert me["staff_id"] == "s-liu" and me["staff_name"] == "刘洋"
    alert = open_incident(world.dsn, OWN, world.devices[OWN])
    acknowledged = client.post(f"/alerts/{alert}/acknowledge", headers=technician).json()
    assert acknowledged["acknowledged_by"] == "s-liu"
    assert client.get("/staff/s-liu", headers=supervisor).json()["username"] == f"technician-{OWN}"
    # A second login cannot be the same person.
    r = client.put(f"/users/{world.users[f'operator-{OWN}']}/staff", headers=admin, json={"staff_id": "s-liu"})
    assert r.status_code == 409
    r = client.put("/staff/s-liu", headers=supervisor, json={"name": "刘洋", "team_id": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.team_id"


def test_triage_order_filters_and_search(world: World, client: TestClient) -> None:
    operator = world.headers(f"operator-{OWN}")
    old_l2 = open_incident(world.dsn, OWN, world.meters[OWN], tier=2)
    acked_l1 = open_incident(world.dsn, OWN, "other-device", tier=1)
    client.post(f"/alerts/{acked_l1}/acknowledge", headers=operator)
    new_l1 = open_incident(world.dsn, OWN, world.devices[OWN], tier=1)
    with psycopg.connect(world.dsn) as conn:  # the Level 2 waited longest
        conn.execute("UPDATE incidents SET opened_at = opened_at - interval '1 hour' WHERE id = %s", (old_l2,))
        conn.execute("INSERT INTO places (place_id, community_id, kind, name) VALUES ('b1', %s, 'building', '2号楼')",
                     (OWN,))
    r = client.get("/alerts?sort=triage&status=open&status=acknowledged&limit=2", headers=operator).json()
    page2 = client.get(f"/alerts?sort=triage&status=open&status=acknowledged&limit=2&cursor={r['next_cursor']}",
                       headers=operator).json()
    assert [a["id"] for a in r["data"] + page2["data"]] == [new_l1, old_l2, acked_l1]
    water = client.get("/alerts?family=water", headers=operator).json()["data"]
    assert [a["id"] for a in water] == [old_l2]
    found = client.get("/alerts?q=2号楼", headers=operator).json()["data"]
    assert {a["id"] for a in found} == {old_l2, acked_l1, new_l1}
    assert client.get("/alerts?q=nothing-like-this", headers=operator).json()["data"] == []
    assert client.get("/alerts?family=plumbing", headers=operator).status_code == 422


def test_demo_phone_keeps_signed_messages_only(world: World, clock: SetClock) -> None:
    secret = "demo-phone-secret-0123456789"
    app = create_app(database_url=world.dsn, demo_phone_secret=secret, clock=clock)
    message = {"to": "13800000001", "staff_id": "s-wang", "locale": "zh-CN", "subject": "【一级（红色）告警】SOS",
               "text": "…", "incident_id": 7, "community_id": OWN, "ack_url": "http://x/oncall/links/a",
               "resolve_url": "http://x/oncall/links/r"}
    body = json.dumps(message).encode()
    ts = str(int(clock().timestamp()))  # the API's clock, set by the test
    with TestClient(app, raise_server_exceptions=False) as client:
        unsigned = client.post("/demo/phone/inbox", content=body)
        assert unsigned.status_code == 403
        stale = str(int(clock().timestamp()) - 3600)
        old = client.post("/demo/phone/inbox", content=body,
                          headers={"X-Steward-Timestamp": stale, "X-Steward-Signature": signature(secret, stale, body)})
        assert old.status_code == 403 and old.json()["error"]["message"] == "stale timestamp"
        forged = client.post("/demo/phone/inbox", content=body,
                             headers={"X-Steward-Timestamp": ts, "X-Steward-Signature": signature("wrong", ts, body)})
        assert forged.status_code == 403
        r = client.post("/demo/phone/inbox", content=body,
                        headers={"X-Steward-Timestamp": ts, "X-Steward-Signature": signature(secret, ts, body)})
        assert r.status_code == 204, r.text
        listed = client.get("/demo/phone", headers=world.headers(f"technician-{OWN}")).json()
        assert listed[0]["links"] == {"ack": "http://x/oncall/links/a", "resolve": "http://x/oncall/links/r"}
        assert client.get("/demo/phone", headers=world.headers(f"technician-{OTHER}")).json() == []
    with TestClient(create_app(database_url=world.dsn), raise_server_exceptions=False) as plain:
        assert plain.get("/demo/phone", headers=world.headers(f"technician-{OWN}")).status_code == 404


def test_api_errors_follow_accept_language(world: World, client: TestClient) -> None:
    operator = world.headers(f"operator-{OWN}")
    sos = open_incident(world.dsn, OWN, world.devices[OWN], tier=1)
    body = {"resolution": "confirmed"}
    english = client.post(f"/alerts/{sos}/resolve", headers=operator, json=body).json()["error"]
    assert english["message"].endswith("a Level 1 alert needs the reason for its resolution")
    zh = client.post(f"/alerts/{sos}/resolve", headers={**operator, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
                     json=body).json()["error"]
    assert zh == {"code": "invalid", "field": "body.reason", "message": "输入有误：一级告警必须填写处理原因"}
    client.post(f"/alerts/{sos}/acknowledge", headers=operator)
    again = client.post(f"/alerts/{sos}/acknowledge", headers={**operator, "Accept-Language": "zh"}).json()["error"]
    assert again["code"] == "illegal_transition" and "已确认" in again["message"]
    assert client.get("/alerts", headers={"Accept-Language": "zh-CN"}).json()["error"]["message"].startswith("请先登录：")
    assert client.get("/alerts", headers={"Accept-Language": "en-US,zh;q=0.5"}).json()["error"]["message"] \
        .startswith("log in")


def test_tree_gives_places_by_name_and_device_state(world: World, client: TestClient) -> None:
    with psycopg.connect(world.dsn) as conn:
        conn.execute("INSERT INTO places (place_id, community_id, kind, name) VALUES (%s, %s, 'community', '星河湾'),"
                     " ('b1', %s, 'building', '1号楼')", (OWN, OWN, OWN))
        conn.execute("UPDATE devices SET last_seen_at = now(), battery = 12 WHERE device_id = %s",
                     (world.meters[OWN],))
    alert = open_incident(world.dsn, OWN, world.meters[OWN], tier=2)
    tree = client.get("/tree", headers=world.headers(f"technician-{OWN}")).json()
    assert [c["name"] for c in tree] == ["星河湾"]
    building = tree[0]["buildings"][0]
    assert building["name"] == "1号楼"
    devices = {d["device_id"]: d for u in building["units"] for d in u["devices"]}
    meter = devices[world.meters[OWN]]
    assert (meter["state"], meter["battery"], meter["open_incidents"], meter["worst_tier"]) == ("online", 12, 1, 2)
    assert devices[world.devices[OWN]]["state"] == "never_seen"
    with psycopg.connect(world.dsn) as conn:
        conn.execute("UPDATE incidents SET condition = 'offline' WHERE id = %s", (alert,))
    tree = client.get("/tree", headers=world.headers(f"technician-{OWN}")).json()
    devices = {d["device_id"]: d for u in tree[0]["buildings"][0]["units"] for d in u["devices"]}
    assert devices[world.meters[OWN]]["state"] == "offline" and tree[0]["counts"]["offline"] == 1


def test_oncall_messages_name_places_and_conditions() -> None:
    from oncall.templates import render

    message = {"kind": "step", "tier": 1, "title": "SOS: one-key call pressed", "condition": "sos",
               "community_id": "c01", "community_name": "星河湾", "building_id": "c01-b01", "building_name": "1号楼",
               "device_ids": ["c01-b01-u0104-hub"], "incident_id": 2, "reason": "on call"}
    zh = render("zh-CN", message, ack_url="http://x/a", resolve_url="http://x/r")
    assert zh.subject == "【一级（红色）告警】一键呼叫 SOS"
    assert "小区：星河湾  楼栋：1号楼" in zh.text and "类型：一键呼叫 SOS" in zh.text
    en = render("en", message, ack_url="http://x/a", resolve_url="http://x/r")
    assert en.subject == "[Level 1 (red) alert] SOS: one-key call pressed"
    assert "Community: 星河湾  Building: 1号楼" in en.text and "Condition: SOS one-key call" in en.text
