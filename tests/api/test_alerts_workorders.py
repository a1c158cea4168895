"""Alerts and work orders through the API: actions, audit, errors, scoping, masking."""

from __future__ import annotations

import datetime as dt

import psycopg
from fastapi.testclient import TestClient

from tests.api.conftest import API_NOW, OTHER, OWN, World


def open_incident(dsn: str, community: str, device_id: str, *, tier: int = 2) -> int:
    with psycopg.connect(dsn) as conn:
        at = API_NOW - dt.timedelta(minutes=1)
        row = conn.execute(
            "INSERT INTO incidents (dedup_key, community_id, scope, scope_id, building_id, condition, tier, title, "
            "device_ids, opened_at, updated_at) VALUES (%s, %s, 'device', %s, 'b1', 'inactivity', %s, "
            "'No activity since 07:30', %s, %s, %s) RETURNING id",
            (f"{device_id}:inactivity", community, device_id, tier, [device_id], at, at),
        ).fetchone()
        assert row is not None
        conn.execute("INSERT INTO incident_timeline (incident_id, at, kind, actor, tier) "
                     "VALUES (%s, %s, 'opened', 'detector', %s)", (row[0], at, tier))
        return int(row[0])


def test_alert_list_detail_acknowledge_and_audit(world: World, client: TestClient) -> None:
    own = open_incident(world.dsn, OWN, world.devices[OWN])
    other = open_incident(world.dsn, OTHER, world.devices[OTHER])
    operator = world.headers(f"operator-{OWN}")
    with psycopg.connect(world.dsn) as conn:
        conn.execute("UPDATE devices SET name = '王奶奶家呼叫器' WHERE device_id = %s", (world.devices[OWN],))
    listed = client.get("/alerts", headers=operator).json()
    assert [a["id"] for a in listed["data"]] == [own]
    # What a person reads: the device's name and its unit (a resident's alert is somebody's home), not only ids.
    named = [{"device_id": world.devices[OWN], "name": "王奶奶家呼叫器", "device_type": "elderly", "unit_id": "u101"}]
    assert listed["data"][0]["devices"] == named
    detail = client.get(f"/alerts/{own}", headers=operator).json()
    assert detail["alert"]["devices"] == named
    assert detail["timeline"][0]["kind"] == "opened"
    assert detail["residents"][0]["full_name"] == "Wang Xiuying" and detail["residents"][0]["masked"] is False
    technician = client.get(f"/alerts/{own}", headers=world.headers(f"technician-{OWN}")).json()
    assert technician["residents"][0]["full_name"] == "W**" and technician["residents"][0]["care_notes"] == ""
    assert technician["residents"][0]["phone"].endswith("8000") and "138001" not in technician["residents"][0]["phone"]

    assert client.get(f"/alerts/{other}", headers=operator).status_code == 404
    assert client.post(f"/alerts/{other}/acknowledge", headers=operator).status_code == 404

    r = client.post(f"/alerts/{own}/acknowledge", headers=operator)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["devices"] == named
    assert r.json()["acknowledged_by"] == f"operator-{OWN}"
    again = client.post(f"/alerts/{own}/acknowledge", headers=operator)
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"
    r = client.post(f"/alerts/{own}/comments", headers=operator, json={"body": "called the daughter"})
    assert r.status_code == 201
    r = client.post(f"/alerts/{own}/escalate", headers=operator, json={"tier": 1, "reason": "no answer"})
    assert r.status_code == 200 and r.json()["tier"] == 1
    r = client.post(f"/alerts/{own}/assign", headers=operator, json={"assignee": "nobody"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.assignee"

    audit = client.get("/audit", headers=world.headers(f"supervisor-{OWN}")).json()["data"]
    assert [e["action"] for e in audit] == ["alert.escalate", "alert.comment", "alert.acknowledge"]
    assert client.get("/audit", headers=world.headers(f"supervisor-{OTHER}")).json()["data"] == []


def test_alert_filters_and_keyset_pages(world: World, client: TestClient) -> None:
    ids = [open_incident(world.dsn, OWN, f"dev{i}", tier=1 + i % 3) for i in range(7)]
    headers = world.headers(f"manager-{OWN}")
    seen, cursor = [], None
    while True:
        page = client.get("/alerts", headers=headers, params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200
        seen += [a["id"] for a in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    tier1 = client.get("/alerts", headers=headers, params={"tier": 1}).json()["data"]
    assert {a["tier"] for a in tier1} == {1}
    bad = client.get("/alerts", headers=headers, params={"sort": "loudest"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "query.sort"
    bad = client.get("/alerts", headers=headers, params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "query.cursor"


def test_work_order_create_and_transition_in_own_community_only(world: World, client: TestClient) -> None:
    operator = world.headers(f"operator-{OWN}")
    r = client.post("/work-orders", headers=operator,
                    json={"community_id": OWN, "title": "Dripping tap in u101", "source": "resident_call",
                          "tier": 3, "auto_dispatch": False})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["state"] == "created"
    assert client.get(f"/work-orders/{order['id']}", headers=world.headers(f"operator-{OTHER}")).status_code == 404
    r = client.post("/work-orders", headers=operator, json={"community_id": OTHER, "title": "x"})
    assert r.status_code == 404 and r.json()["error"]["field"] == "body.community_id"
    r = client.post(f"/work-orders/{order['id']}/actions", headers=world.headers(f"technician-{OWN}"),
                    json={"action": "cancel"})
    assert r.status_code == 403
    r = client.post(f"/work-orders/{order['id']}/actions", headers=operator,
                    json={"action": "cancel", "reason": "the resident fixed it"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    detail = client.get(f"/work-orders/{order['id']}", headers=operator).json()
    assert [e["to_state"] for e in detail["timeline"] if e["to_state"]][-1] == "cancelled"
    kpis = client.get("/kpis", headers=world.headers(f"manager-{OWN}"), params={"community": OWN})
    assert kpis.status_code == 200 and "completion_24h_rate" in kpis.json()["kpis"]
    assert client.get("/kpis", headers=world.headers(f"manager-{OWN}"),
                      params={"community": OTHER}).status_code == 404


def page(dsn: str, incident_id: int, *, step: int, staff: dict[str, str], at: dt.datetime) -> None:
    """What on-call's scheduler and delivery write when a step fires: the timer and one outbox row per person."""
    with psycopg.connect(dsn) as conn:
        pending = conn.execute(
            "INSERT INTO oncall_pending (incident_id, round, kind, step, repeat, due_at, status, created_at, fired_at)"
            " VALUES (%s, 1, 'step', %s, 0, %s, 'fired', %s, %s) RETURNING pending_id",
            (incident_id, step, at, at, at)).fetchone()
        assert pending is not None
        for staff_id, status in staff.items():
            conn.execute(
                "INSERT INTO oncall_outbox (pending_id, incident_id, staff_id, channel, address, locale, message,"
                " reason, status, attempts, next_attempt_at, created_at, sent_at) VALUES (%s, %s, %s, 'webhook',"
                " '13800000000', 'zh-CN', '{}', 'on call', %s, 1, %s, %s, %s)",
                (pending[0], incident_id, staff_id, status, at, at, at if status == "sent" else None))


def test_an_alert_says_whom_on_call_paged(world: World, client: TestClient) -> None:
    """The control room sees who was paged about an alert, at which step, by which channel, and whether it
    arrived (the escalation ran, but the console showed none of it); the address is not shown."""
    alert = open_incident(world.dsn, OWN, world.devices[OWN], tier=1)
    first = API_NOW - dt.timedelta(seconds=50)
    page(world.dsn, alert, step=0, staff={"s-wang": "sent", "s-chen": "failed"}, at=first)
    page(world.dsn, alert, step=1, staff={"s-zhao": "pending"}, at=first + dt.timedelta(minutes=5))
    r = client.get(f"/alerts/{alert}", headers=world.headers(f"operator-{OWN}"))
    assert r.status_code == 200, r.text
    pages = r.json()["pages"]
    assert [(p["step"], p["staff_id"], p["channel"], p["status"], p["kind"]) for p in pages] == [
        (1, "s-wang", "webhook", "sent", "step"), (1, "s-chen", "webhook", "failed", "step"),
        (2, "s-zhao", "webhook", "pending", "step")]
    assert pages[0]["sent_at"] is not None and pages[1]["sent_at"] is None
    assert "13800000000" not in r.text
    assert client.get(f"/alerts/{alert}", headers=world.headers(f"operator-{OTHER}")).status_code == 404
    other = open_incident(world.dsn, OWN, world.meters[OWN], tier=3)
    assert client.get(f"/alerts/{other}", headers=world.headers(f"operator-{OWN}")).json()["pages"] == []
