"""On-call through the API: signed action links and the on-call configuration.

The real app over a fresh migrated database (tests/api/conftest.py); links are
issued the way the escalation scheduler issues them (`oncall.links.issue_link`
records the nonce, `make_token` signs at send time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import ROLE_PERMISSIONS, Permission, Role
from oncall.config import apply_config, validate
from oncall.links import issue_link as record_link
from oncall.links import make_token
from oncall.model import IncidentState
from oncall.schedule import silencing_window
from oncall.store import load_windows, start_round
from tests.api.conftest import API_NOW, OTHER, OWN, SetClock, World
from tests.api.test_alerts_workorders import open_incident

SECRET = "api-test-link-secret-0123456789abcdef"
HTML = {"Accept": "text/html"}
UTC = dt.UTC
CST = dt.timezone(dt.timedelta(hours=8))  # Beijing time: hand-offs are at 08:00 local


@pytest.fixture
def oncall_client(world: World, clock: SetClock) -> Iterator[TestClient]:
    seed_staff(world.dsn)
    with TestClient(create_app(database_url=world.dsn, oncall_link_secret=SECRET, clock=clock),
                    raise_server_exceptions=False) as c:
        yield c


def seed_staff(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for community, prefix in ((OWN, "n"), (OTHER, "s")):
            conn.execute("INSERT INTO teams (team_id, community_id, kind, name) VALUES (%s, %s, 'engineering', 'Eng')",
                         (f"{prefix}-eng", community))
            for name in ("wang", "li", "zhou", "zhao"):
                conn.execute("INSERT INTO staff (staff_id, community_id, team_id, name) VALUES (%s, %s, %s, %s)",
                             (f"{prefix}-{name}", community, f"{prefix}-eng", name.title()))


def issue(dsn: str, incident_id: int, action: str = "ack", staff_id: str = "n-wang", *,
          now: dt.datetime | None = None, ttl: dt.timedelta = dt.timedelta(hours=1), secret: str = SECRET) -> str:
    now = now or API_NOW
    with psycopg.connect(dsn) as conn:
        nonce, expires_at = record_link(conn, incident_id=incident_id, action=action, staff_id=staff_id,  # type: ignore[arg-type]
                                        now=now, ttl=ttl)
    return make_token(secret, incident_id=incident_id, action=action, staff_id=staff_id,  # type: ignore[arg-type]
                      expires_at=expires_at, nonce=nonce)


def one(dsn: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def audit_rows(dsn: str) -> list[tuple[str, str, str | None, str]]:
    with psycopg.connect(dsn) as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "SELECT action, username, community_id, target_id FROM audit_log WHERE action LIKE 'oncall.%' ORDER BY id")]


def escalating_incident(dsn: str) -> int:
    """A Level 1 incident in OWN with a started escalation round (step 0 pending, nobody running the scheduler)."""
    incident_id = open_incident(dsn, OWN, f"{OWN}-hub-1", tier=1)
    config = validate({"policies": [{"id": "n-l1", "community_id": OWN, "tier": 1,
                                     "steps": [{"targets": ["staff:n-wang"], "delay_minutes": 5}]}]})
    with psycopg.connect(dsn) as conn:
        apply_config(conn, config)
        start_round(conn, incident_id=incident_id, community_id=OWN, tier=1, due_at=API_NOW,
                    why="opened")
    return incident_id


# ------------------------------------------------------------------------------------------------ links


def test_link_preview_consumes_nothing_and_post_acknowledges_once(world: World, oncall_client: TestClient) -> None:
    incident_id = escalating_incident(world.dsn)
    token = issue(world.dsn, incident_id)
    url = f"/oncall/links/{token}"

    for _ in range(2):  # a chat app's preview, then the person's tap
        page = oncall_client.get(url, headers=HTML)
        assert page.status_code == 200, page.text
        assert "text/html" in page.headers["content-type"]
        assert "长时间无活动（独居老人） / No activity (elderly resident)" in page.text  # the phone reads both
        assert "一级（红色） / Level 1 · 待确认 / open" in page.text and "Wang · 有效期至" in page.text
        assert '<form method="post">' in page.text
        assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    as_json = oncall_client.get(url).json()
    assert (as_json["incident_id"], as_json["action"], as_json["staff_id"], as_json["status"]) == (
        incident_id, "ack", "n-wang", "open")
    assert one(world.dsn, "SELECT count(*) FROM oncall_links WHERE used_at IS NOT NULL") == 0
    assert one(world.dsn, "SELECT status FROM incidents WHERE id = %s", incident_id) == "open"
    assert audit_rows(world.dsn) == []  # a preview is not a use

    done = oncall_client.post(url)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "acknowledged" and done.json()["staff_id"] == "n-wang"
    alert = oncall_client.get(f"/alerts/{incident_id}", headers=world.headers(f"operator-{OWN}")).json()
    assert alert["alert"]["acknowledged_by"] == "n-wang"
    assert [t["kind"] for t in alert["timeline"]].count("acknowledged") == 1
    # The chain stopped at once: step 0 was cancelled with the link as the reason.
    assert one(world.dsn, "SELECT status || ': ' || reason FROM oncall_pending WHERE incident_id = %s AND kind = 'step'",
               incident_id) == "cancelled: acknowledged by n-wang via link; chain stopped"

    replay = oncall_client.post(url)
    assert replay.status_code == 403
    assert replay.json()["error"] == {"code": "link_replayed", "message": "This link was already used.",
                                      "field": "path.token"}
    assert oncall_client.get(url, headers=HTML).status_code == 403
    assert [t["kind"] for t in oncall_client.get(f"/alerts/{incident_id}", headers=world.headers(f"operator-{OWN}"))
            .json()["timeline"]].count("acknowledged") == 1
    assert audit_rows(world.dsn) == [("oncall.link.ack", "n-wang", OWN, str(incident_id)),
                                     ("oncall.link.refused.replayed", "n-wang", OWN, str(incident_id))]


def test_forged_expired_malformed_and_unknown_links_are_refused(world: World, oncall_client: TestClient) -> None:
    seed = escalating_incident(world.dsn)
    forged = issue(world.dsn, seed, secret="somebody-elses-secret-0123456789")
    _, signature = issue(world.dsn, seed).split(".")
    altered = make_token(SECRET, incident_id=seed, action="resolve", staff_id="n-wang",
                         expires_at=API_NOW + dt.timedelta(hours=1), nonce="x").split(".")[0]
    tampered = f"{altered}.{signature}"  # a valid signature over other claims
    expired = issue(world.dsn, seed, now=API_NOW - dt.timedelta(hours=2), ttl=dt.timedelta(hours=1))
    never_issued = make_token(SECRET, incident_id=seed, action="ack", staff_id="n-wang",
                              expires_at=API_NOW + dt.timedelta(hours=1), nonce="never-recorded")
    cases = [(forged, 403, "link_forged"), (tampered, 403, "link_forged"), (expired, 403, "link_expired"),
             ("not-a-token", 400, "link_malformed"), ("a.b.c", 400, "link_malformed"), ("%%%.***", 400, "link_malformed"),
             (never_issued, 404, "link_unknown")]
    for token, status, code in cases:
        for method in ("GET", "POST"):
            r = oncall_client.request(method, f"/oncall/links/{token}")
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (method, token, r.text)
        page = oncall_client.post(f"/oncall/links/{token}", headers=HTML)
        assert page.status_code == status and "text/html" in page.headers["content-type"]
        if code == "link_expired":  # the phone's page in Chinese and English
            assert "链接已过期" in page.text and "This link has expired" in page.text
    assert one(world.dsn, "SELECT status FROM incidents WHERE id = %s", seed) == "open"
    assert one(world.dsn, "SELECT count(*) FROM oncall_links WHERE used_at IS NOT NULL") == 0
    # Only signed refusals can be attributed to a person; forged and malformed ones are not audited.
    assert {a for a, *_ in audit_rows(world.dsn)} == {"oncall.link.refused.expired", "oncall.link.refused.unknown"}


def test_link_after_control_room_acknowledged_is_409_and_stays_unused(world: World,
                                                                       oncall_client: TestClient) -> None:
    incident_id = escalating_incident(world.dsn)
    ack, resolve = issue(world.dsn, incident_id), issue(world.dsn, incident_id, "resolve")
    r = oncall_client.post(f"/alerts/{incident_id}/acknowledge", headers=world.headers(f"operator-{OWN}"))
    assert r.status_code == 200
    # The control room's acknowledgement stops the on-call chain in the same transaction too.
    assert one(world.dsn, "SELECT reason FROM oncall_pending WHERE incident_id = %s AND kind = 'step'",
               incident_id) == f"acknowledged by operator-{OWN} via control room; chain stopped"
    assert oncall_client.get(f"/oncall/links/{ack}").status_code == 409
    late_page = oncall_client.get(f"/oncall/links/{ack}", headers=HTML).text
    assert f"告警 {incident_id} 当前为“已确认”" in late_page and f"Alert {incident_id} is already acknowledged." in late_page
    late = oncall_client.post(f"/oncall/links/{ack}")
    assert late.status_code == 409 and late.json()["error"]["code"] == "illegal_transition"
    assert one(world.dsn, "SELECT count(*) FROM oncall_links WHERE used_at IS NOT NULL") == 0
    done = oncall_client.post(f"/oncall/links/{resolve}", headers=HTML,
                              data={"resolution": "confirmed", "reason": "resident fine, hub reset"})
    assert done.status_code == 200 and "Resolved" in done.text
    assert one(world.dsn, "SELECT resolved_by FROM incidents WHERE id = %s", incident_id) == "n-wang"
    assert one(world.dsn, "SELECT count(*) FROM oncall_pending WHERE incident_id = %s AND status = 'pending'",
               incident_id) == 0
    assert [a for a, *_ in audit_rows(world.dsn)] == ["oncall.link.refused.illegal_transition", "oncall.link.resolve"]


def test_a_level1_resolve_link_needs_a_finding_and_a_reason_like_every_path(world: World,
                                                                              oncall_client: TestClient) -> None:
    incident_id = escalating_incident(world.dsn)  # Level 1
    token = issue(world.dsn, incident_id, "resolve")
    url = f"/oncall/links/{token}"
    preview = oncall_client.get(url, headers=HTML)
    assert '<select name="resolution" required>' in preview.text and 'name="reason"' in preview.text
    assert oncall_client.get(url).json()["needs_reason"] is True

    # One tap, nothing said: refused with the field named, in the phone's language(s); the link stays usable.
    bare = oncall_client.post(url)
    assert bare.status_code == 422
    assert bare.json()["error"]["field"] == "body.resolution"
    zh = oncall_client.post(url, json={"resolution": "false_alarm"}, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 422 and zh.json()["error"] == {
        "code": "invalid", "field": "body.reason", "message": "输入有误：一级告警必须填写处理原因"}
    en = oncall_client.post(url, json={"resolution": "false_alarm", "reason": "   "})
    assert en.json()["error"]["message"] == "reason: a Level 1 alert needs the reason for its resolution"
    page = oncall_client.post(url, headers=HTML, data={"resolution": "false_alarm", "reason": ""})
    assert page.status_code == 422 and 'data-field="body.reason"' in page.text
    assert "一级告警必须填写处理原因" in page.text and "needs the reason for its resolution" in page.text
    assert '<option value="false_alarm" selected>' in page.text  # what was chosen is kept
    odd = oncall_client.post(url, json={"resolution": "maybe", "reason": "x"})
    assert (odd.status_code, odd.json()["error"]["field"]) == (422, "body.resolution")
    assert one(world.dsn, "SELECT status FROM incidents WHERE id = %s", incident_id) == "open"
    assert one(world.dsn, "SELECT count(*) FROM oncall_links WHERE used_at IS NOT NULL") == 0

    done = oncall_client.post(url, headers=HTML, data={"resolution": "false_alarm", "reason": "pressed by mistake"})
    assert done.status_code == 200, done.text
    with psycopg.connect(world.dsn) as conn:
        row = conn.execute("SELECT status, resolution, resolution_reason, false_alarm, resolved_by FROM incidents"
                           " WHERE id = %s", (incident_id,)).fetchone()
    assert row == ("resolved", "false_alarm", "pressed by mistake", True, "n-wang")


def test_a_level2_resolve_link_still_resolves_in_one_tap(world: World, oncall_client: TestClient) -> None:
    incident_id = open_incident(world.dsn, OWN, f"{OWN}-hub-2", tier=2)
    token = issue(world.dsn, incident_id, "resolve")
    assert oncall_client.get(f"/oncall/links/{token}").json()["needs_reason"] is False
    assert oncall_client.post(f"/oncall/links/{token}").status_code == 200
    assert one(world.dsn, "SELECT status FROM incidents WHERE id = %s", incident_id) == "resolved"


def test_links_answer_404_when_no_secret_is_configured(world: World, client: TestClient) -> None:
    incident_id = open_incident(world.dsn, OWN, f"{OWN}-hub-1", tier=1)
    seed_staff(world.dsn)
    r = client.post(f"/oncall/links/{issue(world.dsn, incident_id)}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    with pytest.raises(ValueError, match="16 characters"):
        create_app(database_url=world.dsn, oncall_link_secret="short")


# ---------------------------------------------------------------------------------------- configuration


def schedule_body(schedule_id: str, community: str, prefix: str) -> dict[str, Any]:
    return {"id": schedule_id, "community_id": community, "name": "Engineering",
            "rotations": [{"layer": 0, "handoff_at": "2026-03-02T08:00:00+08:00", "shift_hours": 24,
                           "participants": [f"{prefix}-wang", f"{prefix}-li"]}]}


def policy_body(policy_id: str, community: str, prefix: str, tier: int | None = 2) -> dict[str, Any]:
    return {"id": policy_id, "community_id": community, "tier": tier,
            "steps": [{"targets": [f"schedule:{prefix}-eng-rota"], "delay_minutes": 15},
                      {"targets": [f"staff:{prefix}-zhao", f"team:{prefix}-eng"], "delay_minutes": 10}]}


def window_body(community: str) -> dict[str, Any]:
    start = API_NOW + dt.timedelta(hours=1)
    return {"community_id": community, "scope": "building", "scope_id": "b1", "device_type": "water",
            "starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=4)).isoformat()}


def test_configuration_by_role_and_community(world: World, oncall_client: TestClient) -> None:
    """Reads need `read`, changes `oncall.manage`; another community's configuration is 404 for everybody."""
    admin = {c: world.headers(f"admin-{c}") for c in (OWN, OTHER)}
    for community, prefix in ((OWN, "n"), (OTHER, "s")):
        assert oncall_client.post("/oncall/schedules", headers=admin[community],
                                  json=schedule_body(f"{prefix}-eng-rota", community, prefix)).status_code == 201
    counter = iter(range(1000))

    def cases(c: str, p: str) -> list[tuple[str, str, dict[str, Any] | None, Permission]]:
        n = next(counter)
        return [
            ("GET", f"/oncall/schedules?community={c}", None, Permission.READ),
            ("GET", f"/oncall/schedules/{p}-eng-rota", None, Permission.READ),
            ("GET", f"/oncall/schedules/{p}-eng-rota/on-call", None, Permission.READ),
            ("GET", f"/oncall/on-call?community={c}", None, Permission.READ),
            ("GET", f"/oncall/policies?community={c}", None, Permission.READ),
            ("GET", f"/oncall/maintenance-windows?community={c}", None, Permission.READ),
            ("POST", "/oncall/schedules", schedule_body(f"{p}-x{n}", c, p), Permission.ONCALL_MANAGE),
            ("PUT", f"/oncall/schedules/{p}-eng-rota", {"name": "Eng", "rotations": schedule_body("", c, p)["rotations"]},
             Permission.ONCALL_MANAGE),
            ("POST", f"/oncall/schedules/{p}-eng-rota/overrides",
             {"staff_id": f"{p}-zhou", "starts_at": "2026-12-01T08:00:00+08:00", "ends_at": "2026-12-01T12:00:00+08:00"},
             Permission.ONCALL_MANAGE),
            ("POST", "/oncall/policies", policy_body(f"{p}-pol{n}", c, p, tier=None if n % 2 else 3) | (
                {"tier": None} if n % 2 else {}), Permission.ONCALL_MANAGE),
            ("POST", "/oncall/maintenance-windows", window_body(c), Permission.ONCALL_MANAGE),
        ]

    failures = []
    for role in Role:
        headers = world.headers(f"{role.value}-{OWN}")
        for community, prefix in ((OWN, "n"), (OTHER, "s")):
            for method, path, body, permission in cases(community, prefix):
                before = len(audit_rows(world.dsn))
                r = oncall_client.request(method, path, headers=headers, json=body)
                if permission not in ROLE_PERMISSIONS[role]:
                    ok, want = r.status_code == 403, 403
                elif community == OWN:
                    ok, want = 200 <= r.status_code < 300, "2xx"
                else:
                    ok, want = r.status_code == 404 and r.json()["error"]["code"] == "not_found", 404
                grew = len(audit_rows(world.dsn)) - before
                if ok and method != "GET" and grew != (1 if want == "2xx" else 0):
                    ok = False
                if not ok:
                    failures.append(f"{role.value} {method} {path} [{community}]: want {want}, got {r.status_code}"
                                    f" {r.text[:160]} (audit +{grew})")
                if ok and method == "POST" and path == "/oncall/policies" and want == "2xx":
                    # Free the (community, tier) slot for the next role's attempt.
                    with psycopg.connect(world.dsn) as conn:
                        conn.execute("DELETE FROM oncall_policies WHERE policy_id = %s", (body["id"],))  # type: ignore[index]
    assert not failures, "\n".join(failures)
    listed = oncall_client.get("/oncall/schedules", headers=world.headers(f"operator-{OWN}")).json()["data"]
    assert {s["community_id"] for s in listed} == {OWN}
    # A schedule id is global: taking another community's id is a conflict.
    taken = oncall_client.post("/oncall/schedules", headers=admin[OWN], json=schedule_body("s-eng-rota", OWN, "n"))
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "body.id"


def test_validation_errors_name_the_field(world: World, oncall_client: TestClient) -> None:
    h = world.headers(f"supervisor-{OWN}")
    good = schedule_body("n-eng-rota", OWN, "n")

    def rotation(**change: Any) -> dict[str, Any]:
        return good | {"rotations": [good["rotations"][0] | change]}

    def field_of(path: str, body: dict[str, Any], status: int = 422) -> str:
        r = oncall_client.post(path, headers=h, json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["message"], r.text
        return r.json()["error"]["field"]

    assert field_of("/oncall/schedules", rotation(shift_hours=0)) == "body.rotations.0.shift_hours"
    assert field_of("/oncall/schedules", rotation(handoff_at="2026-03-02T08:00:00")) == "body.rotations.0.handoff_at"
    assert field_of("/oncall/schedules", rotation(participants=["n-wang", "nobody"])) == "body.rotations.0.participants.1"
    assert field_of("/oncall/schedules", rotation(participants=["s-wang"])) == "body.rotations.0.participants.0"
    assert field_of("/oncall/schedules", rotation(active_from="2026-03-03T08:00:00+08:00",
                                                  active_until="2026-03-02T08:00:00+08:00")) == "body.rotations.0"
    assert field_of("/oncall/schedules", good | {"rotations": good["rotations"] * 2}) == "body.rotations.1.layer"
    assert field_of("/oncall/schedules", good | {"overrides": [
        {"staff_id": "n-li", "starts_at": "2026-03-04T12:00:00+08:00", "ends_at": "2026-03-04T08:00:00+08:00"}]},
    ) == "body.overrides.0.ends_at"
    assert field_of("/oncall/schedules", good | {"id": "bad id!"}) == "body.id"
    assert oncall_client.post("/oncall/schedules", headers=h, json=good).status_code == 201

    policy = policy_body("n-l2", OWN, "n")

    def step(**change: Any) -> dict[str, Any]:
        return policy | {"steps": [policy["steps"][0] | change]}

    assert field_of("/oncall/policies", step(targets=["boss"])) == "body.steps.0.targets.0"
    assert field_of("/oncall/policies", step(targets=["staff:n-wang", "staff:ghost"])) == "body.steps.0.targets.1"
    assert field_of("/oncall/policies", step(targets=["schedule:s-eng-rota"])) == "body.steps.0.targets.0"
    assert field_of("/oncall/policies", step(delay_minutes=-1)) == "body.steps.0.delay_minutes"
    assert field_of("/oncall/policies", policy | {"steps": []}) == "body.steps"
    assert field_of("/oncall/policies", policy | {"tier": 4}) == "body.tier"
    assert field_of("/oncall/policies", policy | {"repeat": 11}) == "body.repeat"
    created = oncall_client.post("/oncall/policies", headers=h, json=policy)
    assert created.status_code == 201, created.text
    assert created.json()["steps"][1] == {"targets": ["staff:n-zhao", "team:n-eng"], "delay_minutes": 10.0}
    assert field_of("/oncall/policies", policy | {"id": "n-l2-bis"}, 409) == "body.tier"
    changed = oncall_client.put("/oncall/policies/n-l2", headers=h, json={"steps": [{"targets": ["staff:n-li"],
                                                                                      "delay_minutes": 5}]})
    assert changed.status_code == 200 and changed.json()["tier"] == 2 and len(changed.json()["steps"]) == 1

    window = window_body(OWN)
    assert field_of("/oncall/maintenance-windows", window | {"ends_at": window["starts_at"]}) == "body.ends_at"
    assert field_of("/oncall/maintenance-windows", window | {"scope": "device", "scope_id": "ghost"}) == "body.scope_id"
    assert field_of("/oncall/maintenance-windows", window | {"scope": "community", "scope_id": OTHER}) == "body.scope_id"
    assert field_of("/oncall/maintenance-windows", window | {"device_type": "toaster"}) == "body.device_type"
    assert field_of("/oncall/maintenance-windows", window | {
        "ends_at": (API_NOW + dt.timedelta(days=40)).isoformat()}) == "body.ends_at"
    assert field_of("/oncall/maintenance-windows", window | {"starts_at": "2026-03-02T08:00:00"}) == "body.starts_at"


def test_maintenance_window_silences_level2_never_level1(world: World, oncall_client: TestClient) -> None:
    h = world.headers(f"supervisor-{OWN}")
    now = API_NOW
    body = {"community_id": OWN, "scope": "building", "scope_id": "b1",
            "starts_at": (now - dt.timedelta(minutes=5)).isoformat(), "ends_at": (now + dt.timedelta(hours=2)).isoformat()}
    r = oncall_client.post("/oncall/maintenance-windows", headers=h, json=body)
    assert r.status_code == 201, r.text
    window_id = r.json()["id"]
    assert r.json()["created_by"] == f"supervisor-{OWN}"
    assert [w["id"] for w in oncall_client.get("/oncall/maintenance-windows", headers=h).json()["data"]] == [window_id]
    with psycopg.connect(world.dsn) as conn:
        windows = load_windows(conn, OWN, now)  # what the escalation scheduler reads
    incident = IncidentState(incident_id=1, community_id=OWN, tier=2, status="open", building_id="b1",
                             device_ids=(f"{OWN}-meter-1",), device_types=("water",))
    assert silencing_window(incident, windows, now) is not None
    assert silencing_window(IncidentState(**{**incident.__dict__, "tier": 1}), windows, now) is None
    assert oncall_client.delete(f"/oncall/maintenance-windows/{window_id}",
                                headers=world.headers(f"supervisor-{OTHER}")).status_code == 404
    assert oncall_client.delete(f"/oncall/maintenance-windows/{window_id}", headers=h).status_code == 204
    assert oncall_client.get("/oncall/maintenance-windows", headers=h).json()["data"] == []
    assert one(world.dsn, "SELECT ends_at FROM maintenance_windows WHERE id = %s", window_id) == now  # ended now
    assert oncall_client.delete(f"/oncall/maintenance-windows/{window_id}", headers=h).status_code == 409


def test_on_call_now_matches_a_hand_computed_rotation(world: World, oncall_client: TestClient) -> None:
    h = world.headers(f"supervisor-{OWN}")
    body = {"id": "n-eng-rota", "community_id": OWN, "rotations": [
        # Weekdays: Wang and Li hand off every day at 08:00 Beijing time, Wang first (Monday 2 March 2026).
        {"layer": 0, "handoff_at": "2026-03-02T08:00:00+08:00", "shift_hours": 24, "participants": ["n-wang", "n-li"]},
        # The weekend of 7-8 March: Zhou, from Saturday 08:00 to Monday 08:00.
        {"layer": 1, "handoff_at": "2026-03-07T08:00:00+08:00", "shift_hours": 48, "participants": ["n-zhou"],
         "active_from": "2026-03-07T08:00:00+08:00", "active_until": "2026-03-09T08:00:00+08:00"}]}
    assert oncall_client.post("/oncall/schedules", headers=h, json=body).status_code == 201
    r = oncall_client.post("/oncall/schedules/n-eng-rota/overrides", headers=h, json={
        "staff_id": "n-zhao", "starts_at": "2026-03-04T09:00:00+08:00", "ends_at": "2026-03-04T12:00:00+08:00"})
    assert r.status_code == 201, r.text
    override_id = r.json()["id"]

    def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime(2026, 3, day, hour, minute, tzinfo=CST)

    # Turn n = whole days since Mon 2 March 08:00; Wang on even turns, Li on odd ones.
    expected = [
        (local(1, 12), None, "nobody on call"),  # before the first hand-off
        (local(2, 10), "n-wang", "layer 0"),  # turn 0
        (local(3, 7, 59), "n-wang", "layer 0"),  # still turn 0
        (local(3, 8), "n-li", "layer 0"),  # turn 1
        (local(4, 9, 30), "n-zhao", f"override #{override_id}"),  # turn 2 is Wang's, but Zhao covers
        (local(4, 12), "n-wang", "layer 0"),  # the override has ended
        (local(7, 7, 59), "n-wang", "layer 0"),  # turn 4, just before the weekend layer
        (local(7, 8), "n-zhou", "layer 1"),
        (local(9, 7, 59), "n-zhou", "layer 1"),
        (local(9, 8), "n-li", "layer 0"),  # the weekend layer has ended; turn 7 is odd: Li
    ]
    for at, person, why in expected:
        r = oncall_client.get("/oncall/schedules/n-eng-rota/on-call", headers=world.headers(f"operator-{OWN}"),
                              params={"at": at.isoformat()})
        assert r.status_code == 200, r.text
        assert (r.json()["staff_id"], why in r.json()["reason"]) == (person, True), (at, r.json())
    everyone = oncall_client.get("/oncall/on-call", headers=h, params={"at": local(4, 9, 30).isoformat()}).json()
    assert [(o["schedule_id"], o["staff_id"]) for o in everyone] == [("n-eng-rota", "n-zhao")]
    assert oncall_client.get("/oncall/schedules/n-eng-rota/on-call", headers=h,
                             params={"at": "2026-03-04T09:30:00"}).json()["error"]["field"] == "query.at"

    assert oncall_client.delete(f"/oncall/schedules/n-eng-rota/overrides/{override_id}", headers=h).status_code == 204
    after = oncall_client.get("/oncall/schedules/n-eng-rota/on-call", headers=h,
                              params={"at": local(4, 9, 30).isoformat()}).json()
    assert after["staff_id"] == "n-wang"
    detail = oncall_client.get("/oncall/schedules/n-eng-rota", headers=h).json()
    assert [(r["layer"], r["shift_hours"], r["participants"]) for r in detail["rotations"]] == [
        (0, 24.0, ["n-wang", "n-li"]), (1, 48.0, ["n-zhou"])]


def test_delete_a_schedule_and_a_policy(world: World, oncall_client: TestClient) -> None:
    """A schedule a policy still pages is refused (409, the policy named, in Chinese too); the policy first, then
    the schedule; both audited, and the (community, tier) slot is free again. Another community's is 404."""
    sup = world.headers(f"supervisor-{OWN}")
    made = oncall_client.post("/oncall/schedules", headers=sup, json=schedule_body("n-eng-rota", OWN, "n"))
    assert made.status_code == 201
    assert oncall_client.post("/oncall/policies", headers=sup, json=policy_body("n-l2", OWN, "n")).status_code == 201
    refused = oncall_client.delete("/oncall/schedules/n-eng-rota", headers=sup)
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "path.schedule_id"
    assert "n-l2" in refused.json()["error"]["message"]
    zh = oncall_client.delete("/oncall/schedules/n-eng-rota", headers=sup | {"Accept-Language": "zh-CN"})
    assert zh.json()["error"]["message"] == "与已有数据冲突：值班表 n-eng-rota 仍被升级策略 n-l2 使用，请先修改这些策略"
    other = world.headers(f"supervisor-{OTHER}")
    assert oncall_client.delete("/oncall/policies/n-l2", headers=other).status_code == 404
    assert oncall_client.delete("/oncall/policies/n-l2", headers=world.headers(f"operator-{OWN}")).status_code == 403
    assert oncall_client.delete("/oncall/policies/n-l2", headers=sup).status_code == 204
    assert oncall_client.get("/oncall/policies/n-l2", headers=sup).status_code == 404
    assert oncall_client.delete("/oncall/schedules/n-eng-rota", headers=other).status_code == 404
    assert oncall_client.delete("/oncall/schedules/n-eng-rota", headers=sup).status_code == 204
    assert oncall_client.get("/oncall/schedules/n-eng-rota", headers=sup).status_code == 404
    assert one(world.dsn, "SELECT count(*) FROM oncall_rotations WHERE schedule_id = 'n-eng-rota'") == 0
    assert oncall_client.delete("/oncall/schedules/n-eng-rota", headers=sup).status_code == 404
    again = policy_body("n-l2b", OWN, "n") | {"steps": [{"targets": ["staff:n-wang"], "delay_minutes": 5}]}
    assert oncall_client.post("/oncall/policies", headers=sup, json=again).status_code == 201  # tier 2 free again
    assert [r for r in audit_rows(world.dsn) if r[0].endswith(".delete")] == [
        ("oncall.policy.delete", f"supervisor-{OWN}", OWN, "n-l2"),
        ("oncall.schedule.delete", f"supervisor-{OWN}", OWN, "n-eng-rota")]
