"""Role × endpoint × own / other community.

A role with the permission gets a success in its own community and 404 in the
other (the other community's data does not exist for it); a role without the
permission gets 403 in both. Every successful state change adds an audit entry.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.security import ROLE_PERMISSIONS, Permission, Role
from tests.api.conftest import OTHER, OWN, World, add_user
from tests.api.test_alerts_workorders import open_incident

_counter = itertools.count()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[World, str], str]  # (world, community) -> path; may create a fresh target
    permission: Permission
    body: Callable[[World, str], dict[str, Any] | None] = lambda w, c: None
    changes_state: bool = False


def fresh_incident(w: World, c: str) -> int:
    return open_incident(w.dsn, c, f"{c}-dev-{next(_counter)}")


def fresh_device(w: World, c: str) -> str:
    device_id = f"{c}-meter-x{next(_counter)}"
    with psycopg.connect(w.dsn) as conn:
        conn.execute("INSERT INTO devices (device_id, community_id, device_type, kind) VALUES (%s, %s, 'water', 'meter')",
                     (device_id, c))
    return device_id


def fresh_staff(w: World, c: str) -> str:
    staff_id = f"{c}-s{next(_counter)}"
    with psycopg.connect(w.dsn) as conn:
        conn.execute("INSERT INTO teams (team_id, community_id, kind, name) VALUES (%s, %s, 'engineering', 'Eng')"
                     " ON CONFLICT DO NOTHING", (f"{c}-eng", c))
        conn.execute("INSERT INTO staff (staff_id, community_id, team_id, name) VALUES (%s, %s, %s, 'Wang Wei')",
                     (staff_id, c, f"{c}-eng"))
    return staff_id


def fresh_team(w: World, c: str) -> str:
    team_id = f"{c}-t{next(_counter)}"
    with psycopg.connect(w.dsn) as conn:
        conn.execute("INSERT INTO teams (team_id, community_id, kind, name) VALUES (%s, %s, 'security', 'Guards')",
                     (team_id, c))
    return team_id


def fresh_user(w: World, c: str) -> int:
    with psycopg.connect(w.dsn) as conn:
        return add_user(conn, f"user-{c}-{next(_counter)}", Role.TECHNICIAN, [c])


ROSTER = """
[[staff]]
id = "{id}"
community_id = "{c}"
name = "Li Na"
"""

CASES = [
    Case("list devices", "GET", lambda w, c: f"/devices?community={c}", Permission.READ),
    Case("get device", "GET", lambda w, c: f"/devices/{w.meters[c]}", Permission.READ),
    Case("device health", "GET", lambda w, c: f"/devices/{w.meters[c]}/health", Permission.READ),
    Case("device series", "GET", lambda w, c: f"/devices/{w.meters[c]}/series?bucket=1h", Permission.READ),
    Case("device rollups", "GET", lambda w, c: f"/devices/{w.meters[c]}/rollups", Permission.READ),
    Case("list events", "GET", lambda w, c: f"/events?community={c}", Permission.READ),
    Case("dead letters", "GET", lambda w, c: f"/dead-letters?community={c}", Permission.DEAD_LETTERS),
    Case("get resident", "GET", lambda w, c: f"/residents/{w.residents[c]}", Permission.READ),
    Case("list alerts", "GET", lambda w, c: f"/alerts?community={c}", Permission.READ),
    Case("get alert", "GET", lambda w, c: f"/alerts/{fresh_incident(w, c)}", Permission.READ),
    Case("list work orders", "GET", lambda w, c: f"/work-orders?community={c}", Permission.READ),
    Case("kpis", "GET", lambda w, c: f"/kpis?community={c}", Permission.READ),
    Case("audit", "GET", lambda w, c: f"/audit?community={c}", Permission.AUDIT_READ),
    Case("acknowledge alert", "POST", lambda w, c: f"/alerts/{fresh_incident(w, c)}/acknowledge",
         Permission.ALERT_ACT, changes_state=True),
    Case("resolve alert", "POST", lambda w, c: f"/alerts/{fresh_incident(w, c)}/resolve", Permission.ALERT_ACT,
         body=lambda w, c: {"note": "false alarm"}, changes_state=True),
    Case("comment alert", "POST", lambda w, c: f"/alerts/{fresh_incident(w, c)}/comments", Permission.ALERT_ACT,
         body=lambda w, c: {"body": "on my way"}, changes_state=True),
    Case("escalate alert", "POST", lambda w, c: f"/alerts/{fresh_incident(w, c)}/escalate", Permission.ALERT_ACT,
         body=lambda w, c: {"tier": 1}, changes_state=True),
    Case("create work order", "POST", lambda w, c: "/work-orders", Permission.WORKORDER_MANAGE,
         body=lambda w, c: {"community_id": c, "title": "Check meter", "tier": 3, "auto_dispatch": False},
         changes_state=True),
    Case("create device", "POST", lambda w, c: "/devices", Permission.DEVICE_MANAGE,
         body=lambda w, c: {"device_id": f"{c}-new-{next(_counter)}", "community_id": c, "device_type": "access",
                            "kind": "entrance", "issue_credentials": False}, changes_state=True),
    Case("update device", "PATCH", lambda w, c: f"/devices/{w.meters[c]}", Permission.DEVICE_MANAGE,
         body=lambda w, c: {"name": "Meter, riser 2"}, changes_state=True),
    Case("retire device", "POST", lambda w, c: f"/devices/{fresh_device(w, c)}/retire", Permission.DEVICE_MANAGE,
         changes_state=True),
    Case("rotate credentials", "POST", lambda w, c: f"/devices/{fresh_device(w, c)}/credentials",
         Permission.DEVICE_MANAGE, changes_state=True),
    Case("create resident", "POST", lambda w, c: "/residents", Permission.RESIDENT_MANAGE,
         body=lambda w, c: {"community_id": c, "full_name": "Li Lei", "phone": "13900000000"}, changes_state=True),
    Case("list teams", "GET", lambda w, c: f"/teams?community={c}", Permission.READ),
    Case("list staff", "GET", lambda w, c: f"/staff?community={c}", Permission.READ),
    Case("get staff", "GET", lambda w, c: f"/staff/{fresh_staff(w, c)}", Permission.READ),
    Case("device tree", "GET", lambda w, c: f"/tree?community={c}", Permission.READ),
    Case("list places", "GET", lambda w, c: f"/places?community={c}", Permission.READ),
    Case("create team", "POST", lambda w, c: "/teams", Permission.ONCALL_MANAGE,
         body=lambda w, c: {"id": f"{c}-team-{next(_counter)}", "community_id": c, "kind": "security",
                            "name": "秩序维护部"}, changes_state=True),
    Case("update team", "PUT", lambda w, c: f"/teams/{fresh_team(w, c)}", Permission.ONCALL_MANAGE,
         body=lambda w, c: {"kind": "security", "name": "Night guards", "skills": ["access"]}, changes_state=True),
    Case("create staff", "POST", lambda w, c: "/staff", Permission.ONCALL_MANAGE,
         body=lambda w, c: {"id": f"{c}-new-s{next(_counter)}", "community_id": c, "name": "Zhao Min",
                            "contacts": [{"channel": "push"}]}, changes_state=True),
    Case("update staff", "PUT", lambda w, c: f"/staff/{fresh_staff(w, c)}", Permission.ONCALL_MANAGE,
         body=lambda w, c: {"name": "Wang Wei", "role": "team_lead"}, changes_state=True),
    Case("staff contacts", "PUT", lambda w, c: f"/staff/{fresh_staff(w, c)}/contacts", Permission.ONCALL_MANAGE,
         body=lambda w, c: [{"channel": "email", "address": "w@example.com"}], changes_state=True),
    Case("roster import", "POST", lambda w, c: "/roster/import", Permission.ONCALL_MANAGE,
         body=lambda w, c: {"toml": ROSTER.format(id=f"{c}-imp-{next(_counter)}", c=c)}, changes_state=True),
    Case("name places", "PUT", lambda w, c: "/places", Permission.DEVICE_MANAGE,
         body=lambda w, c: [{"id": f"{c}-b{next(_counter)}", "community_id": c, "kind": "building",
                             "name": "2号楼"}], changes_state=True),
    Case("link user to staff", "PUT", lambda w, c: f"/users/{fresh_user(w, c)}/staff", Permission.USER_MANAGE,
         body=lambda w, c: {"staff_id": fresh_staff(w, c)}, changes_state=True),
    Case("update resident", "PATCH", lambda w, c: f"/residents/{w.residents[c]}", Permission.RESIDENT_MANAGE,
         body=lambda w, c: {"care_notes": "uses a walker"}, changes_state=True),
]


def audit_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("role", list(Role))
def test_authorization_matrix(role: Role, world: World, client: TestClient) -> None:
    headers = world.headers(f"{role.value}-{OWN}")
    allowed = ROLE_PERMISSIONS[role]
    failures = []
    for case in CASES:
        for community in (OWN, OTHER):
            before = audit_count(world.dsn) if case.changes_state else 0
            r = client.request(case.method, case.path(world, community), headers=headers,
                               json=case.body(world, community))
            if case.permission not in allowed:
                expected = "403"
                ok = r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            elif community == OWN:
                expected = "2xx"
                ok = 200 <= r.status_code < 300
            else:
                expected = "404"
                ok = r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            if ok and case.changes_state:
                grew = audit_count(world.dsn) - before
                if grew != (1 if expected == "2xx" else 0):
                    ok, expected = False, f"{expected} with {1 if expected == '2xx' else 0} audit entries, got {grew}"
            if not ok:
                failures.append(f"{case.name} [{community}]: expected {expected}, got {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)


def test_permissions_table_is_what_the_matrix_assumes() -> None:
    """Who may see residents' personal data is a decision; pin it."""
    pii = {role for role in Role if Permission.RESIDENT_PII in ROLE_PERMISSIONS[role]}
    assert pii == {Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN}
    assert ROLE_PERMISSIONS[Role.MANAGER] == {Permission.READ, Permission.AUDIT_READ}
