"""The demo is a working control room: `steward run`'s stack seeds people, shifts, policies and places, and its
scripted first minutes show a Level 3 work order, a Level 1 and a Level 2 alert dispatched automatically and paged
to the demo's phone, acknowledged from the link in the message.

The scripted incidents are placed a few seconds after the start instead of the demo's 15-50 s (`DemoTiming`), so the
test waits on conditions, each with a generous deadline, rather than on the wall clock.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from steward.app import Stack
from steward.brokers import free_port
from steward.demo import DemoTiming
from steward.settings import Settings
from tests.gateway.helpers import wait_for

FAST = DemoTiming(battery_low_s=2, sos_s=3, tamper_s=4, responder_delay_s=3)


@pytest.fixture
def demo(database_url: str) -> Iterator[Stack]:
    data_dir = Path(tempfile.mkdtemp(prefix="h18-demo-"))
    settings = Settings(database_url=database_url, data_dir=data_dir, api_port=free_port(), demo_broker="mosquitto")
    stack = Stack(settings, demo_timing=FAST)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def rows(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def test_demo_dispatches_pages_and_is_acknowledged_from_the_link(demo: Stack) -> None:
    dsn = demo.database_url
    assert dsn is not None
    base = f"http://127.0.0.1:{demo.settings.api_port}"
    # The roster is there: people with names, day/night shifts, a policy per urgent tier, places with names.
    assert rows(dsn, "SELECT name FROM staff WHERE staff_id = 's-zhao'") == [("赵敏",)]
    assert {r[0] for r in rows(dsn, "SELECT tier FROM oncall_policies WHERE community_id = 'c01'")} == {1, 2}
    assert rows(dsn, "SELECT name FROM places WHERE place_id = 'c01-b02'") == [("2号楼",)]
    # Devices are named as the property's staff say them, every one of them (the simulator's names are English).
    assert rows(dsn, "SELECT device_id, name FROM devices WHERE name IS NULL OR name ~ '^[ -~]*$'") == []
    assert ("1号电梯",) in rows(dsn, "SELECT name FROM devices WHERE device_type = 'elevator'")
    assert rows(dsn, "SELECT s.name FROM api_users u JOIN staff s USING (staff_id) WHERE u.username = 'operator'") \
        == [("徐丽",)]
    # Every field worker (engineering, security, elderly care) is a login, so whoever an order goes to can take it.
    assert rows(dsn, "SELECT s.staff_id FROM staff s JOIN teams t USING (team_id)"
                     " WHERE t.kind IN ('engineering', 'security', 'elderly_care') AND s.active"
                     " AND NOT EXISTS (SELECT 1 FROM api_users u WHERE u.staff_id = s.staff_id AND u.active)") == []

    def dispatched() -> bool:
        found = rows(dsn, "SELECT DISTINCT i.tier FROM work_orders w JOIN incidents i ON i.id = w.incident_id"
                          " WHERE w.state = 'dispatched' AND w.assignee IS NOT NULL")
        return {t for (t,) in found} >= {1, 2, 3}

    wait_for(dispatched, 120, "automatic dispatch of the scripted Level 1, 2 and 3 incidents")
    wait_for(lambda: rows(dsn, "SELECT 1 FROM demo_phone_messages m JOIN incidents i ON i.id = m.incident_id"
                               " WHERE i.tier = 1"), 120, "the Level 1 page to reach the demo phone")
    delivered = rows(dsn, "SELECT count(*) FROM oncall_deliveries WHERE outcome = 'delivered' AND channel = 'webhook'")
    assert delivered[0][0] >= 1

    # The phone panel lists it for a control-room login; its acknowledge link works once.
    password = (demo.data_dir / "demo-password").read_text().strip()
    with httpx.Client(base_url=base, timeout=10) as client:
        token = client.post("/auth/token", data={"username": "operator", "password": password}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        phone = client.get("/demo/phone", headers=headers).json()
        sos = next(m for m in phone if m["subject"].startswith(("【一级", "[Level 1")))
        assert sos["staff_name"] and sos["links"]["ack"].startswith(base + "/oncall/links/")
        r = client.post(sos["links"]["ack"], headers={"Accept": "application/json"})
        assert r.status_code == 200, r.text
        assert client.post(sos["links"]["ack"], headers={"Accept": "application/json"}).status_code == 403
        alert = client.get(f"/alerts/{sos['incident_id']}", headers=headers).json()["alert"]
        assert alert["status"] == "acknowledged" and alert["acknowledged_by"] == sos["staff_id"]
    # The Level 1 order's assignee (an elderly-care steward, say) logs in as themselves and accepts it.
    order_id, assignee = rows(dsn, "SELECT w.id, w.assignee FROM work_orders w JOIN incidents i ON i.id = w.incident_id"
                                   " WHERE i.tier = 1 AND w.state = 'dispatched' ORDER BY w.id LIMIT 1")[0]
    (username,) = rows(dsn, "SELECT username FROM api_users WHERE staff_id = %s", assignee)[0]
    with httpx.Client(base_url=base, timeout=10) as client:
        token = client.post("/auth/token", data={"username": username, "password": password}).json()["access_token"]
        accepted = client.post(f"/work-orders/{order_id}/actions", json={"action": "accept"},
                               headers={"Authorization": f"Bearer {token}"})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["state"] == "accepted" and accepted.json()["assignee"] == assignee
    # The demo's guard acknowledges the Level 2 page from its link by themselves.
    wait_for(lambda: rows(dsn, "SELECT 1 FROM incidents WHERE tier = 2 AND status = 'acknowledged'"
                               " AND acknowledged_by LIKE 's-%%'"), 60, "the demo responder to acknowledge Level 2")


def test_no_demo_data_is_a_clean_start(database_url: str) -> None:
    settings = Settings(database_url=database_url, data_dir=Path(tempfile.mkdtemp(prefix="h18-clean-")),
                        api_port=free_port(), demo_broker="mosquitto")
    stack = Stack(settings, api=False, demo_data=False)
    try:
        stack.start()
    finally:
        stack.stop()
    assert rows(database_url, "SELECT count(*) FROM staff") == [(0,)]
    assert rows(database_url, "SELECT count(*) FROM oncall_policies") == [(0,)]
    assert rows(database_url, "SELECT count(*) FROM api_users WHERE username = 'operator'") == [(0,)]
