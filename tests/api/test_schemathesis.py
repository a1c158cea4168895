"""Schemathesis, as an attacker would run it, against the API under uvicorn on a real socket (issue 17).

The schemathesis command line runs with **all checks** (`--checks all`), positive
and negative data (`--mode all`), the coverage and fuzzing phases, once as an
admin and once as a read-only role (manager). It must find nothing: no server
error, no response outside the schema, no undocumented status code, no schema-
invalid request accepted, the right 405 and Allow for undeclared methods, no
authentication ignored.

One relaxation, in `schemathesis.toml` next to this file: `positive_data_acceptance`
also accepts 400 and 422 for schema-valid data, because the API checks what
OpenAPI cannot say — cross-field rules (from before to, a device kind of its
type), references to other rows, the grammar of a cursor, a TOML roster or a
signed link, text PostgreSQL cannot store. Every such refusal is a documented
422 naming the field.

Every run also draws path, query and body values half of the time from rows that
exist in the caller's community (`Rows`: an open alert, a work order, staff, a
schedule with an override, a policy, a maintenance window, residents, users and
an API key; schemathesis "dictionaries"), so hostile data reaches the code
behind the lookups (resolve a real alert, act on a real order) and not only
their 404. Each role runs against its own database: an admin's run may retire,
delete and demote.

CI runs the short variant (a few hundred cases a role). The long variant, behind the
``long`` marker, runs at least 20,000 cases (10,000 a role)::

    .venv/bin/pytest -m long tests/api/test_schemathesis.py

The same run by hand against a running server::

    schemathesis --config-file tests/api/schemathesis.toml run http://127.0.0.1:8000/openapi.json \\
        --checks all --mode all --phases coverage,fuzzing -n 100 -H "Authorization: Bearer $TOKEN" \\
        --exclude-path /stream --exclude-path /auth/logout
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from api.app import create_app
from api.settings import ApiSettings
from api.users import issue_token
from ingest.migrate import migrate
from steward.databases import create_database, drop_database
from api.security import Role
from tests.api.conftest import API_NOW, OWN, LiveServer, SetClock, World, seed
from tests.api.test_alerts_workorders import open_incident

HERE = Path(__file__).resolve().parent
SECRET = "schemathesis-secret-0123456789"
ROLES = ("admin", "manager")  # everything, and read-only


@dataclass
class Target:
    url: str
    world: World
    rows: dict[str, list[str | int]]

    def token(self, role: str) -> str:
        """A token that outlives the longest run (a run of an hour must not go on as an expired login)."""
        with psycopg.connect(self.world.dsn) as conn:
            token, _ = issue_token(conn, user_id=self.world.users[f"{role}-{OWN}"], ttl=dt.timedelta(hours=12))
        return f"Bearer {token}"


@pytest.fixture
def target(admin_dsn: str) -> Iterator[Target]:
    dsn = create_database(admin_dsn)
    try:
        migrate(dsn)
        world = seed(dsn)
        app = create_app(database_url=dsn, oncall_link_secret=SECRET, demo_phone_secret=SECRET,
                         settings=ApiSettings(stream_keepalive_seconds=1.0), clock=SetClock(API_NOW))
        with LiveServer(app) as server:
            yield Target(server.url, world, make_rows(server.url, world))
    finally:
        drop_database(admin_dsn, dsn)


def make_rows(url: str, world: World) -> dict[str, list[str | int]]:
    """Rows of every kind in the callers' community, made through the API; the values the fuzzer draws from."""
    admin = world.headers(f"admin-{OWN}")

    def made(method: str, path: str, body: object) -> dict:
        r = httpx.request(method, f"{url}{path}", headers=admin, json=body, timeout=30)
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json()

    made("POST", "/teams", {"id": f"{OWN}-eng", "community_id": OWN, "kind": "engineering", "name": "Eng"})
    staff = [made("POST", "/staff", {"id": f"{OWN}-staff-{i}", "community_id": OWN, "name": name,
                                     "team_id": f"{OWN}-eng"})["id"] for i, name in enumerate(("Wang Wei", "Li Na"))]
    handoff = (API_NOW - dt.timedelta(days=3)).isoformat()
    made("POST", "/oncall/schedules", {"id": f"{OWN}-rota", "community_id": OWN, "name": "Engineering", "rotations": [
        {"layer": 0, "handoff_at": handoff, "shift_hours": 24, "participants": staff}]})
    override = made("POST", f"/oncall/schedules/{OWN}-rota/overrides", {
        "staff_id": staff[1], "starts_at": (API_NOW + dt.timedelta(hours=1)).isoformat(),
        "ends_at": (API_NOW + dt.timedelta(hours=5)).isoformat()})["id"]
    made("POST", "/oncall/policies", {"id": f"{OWN}-policy", "community_id": OWN, "tier": None,
                                      "steps": [{"targets": [f"staff:{staff[0]}"], "delay_minutes": 10}]})
    window = made("POST", "/oncall/maintenance-windows", {
        "community_id": OWN, "scope": "building", "scope_id": "b1", "device_type": "water",
        "starts_at": (API_NOW + dt.timedelta(hours=1)).isoformat(),
        "ends_at": (API_NOW + dt.timedelta(hours=3)).isoformat()})["id"]
    order = made("POST", "/work-orders", {"community_id": OWN, "title": "Check the meter", "tier": 3,
                                          "auto_dispatch": False})["id"]
    alerts = [open_incident(world.dsn, OWN, device) for device in (world.devices[OWN], world.meters[OWN])]
    users = [world.users[f"{role.value}-{OWN}"] for role in Role]
    key = made("POST", f"/users/{world.users[f'technician-{OWN}']}/api-keys", {"name": "integration"})["id"]
    return {"community": [OWN], "device": [world.devices[OWN], world.meters[OWN]],
            "resident": [world.residents[OWN]], "user": users, "key": [key], "team": [f"{OWN}-eng"],
            "staff": staff, "schedule": [f"{OWN}-rota"], "override": [override], "policy": [f"{OWN}-policy"],
            "window": [window], "order": [order], "alert": alerts}


# Where each kind of row is named: path parameters, query parameters, body fields.
BINDINGS = {
    "community": ("query.community", "body.community_id", "body.[*].community_id"),
    "device": ("path.device_id", "query.device_id", "body.device_id"),
    "resident": ("path.resident_id",),
    "user": ("path.user_id",),
    "key": ("path.key_id",),
    "team": ("path.team_id", "body.team_id"),
    "staff": ("path.staff_id", "body.staff_id", "body.assignee"),
    "schedule": ("path.schedule_id",),
    "override": ("path.override_id",),
    "policy": ("path.policy_id",),
    "window": ("path.window_id",),
    "order": ("path.order_id",),
    "alert": ("path.alert_id", "body.ids.[*]"),
}


def config_with_rows(target: Target, folder: Path) -> Path:
    """schemathesis.toml, plus: each bound value drawn from the rows half of the time."""
    lines = [(HERE / "schemathesis.toml").read_text(), ""]
    for kind, values in target.rows.items():
        lines += [f"[dictionaries.{kind}]", f"values = {json.dumps(values)}", ""]
    for kind, keys in BINDINGS.items():
        for key in keys:
            lines += [f'[parameters."{key}"]', f'dictionary = "{kind}"', "probability = 0.5", ""]
    path = folder / "schemathesis-rows.toml"
    path.write_text("\n".join(lines))
    return path


def run_schemathesis(target: Target, role: str, tmp_path: Path, *, phases: str, examples: int,
                     seed: int) -> dict:
    report = tmp_path / f"schemathesis-{role}.json"
    token = target.token(role)
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config_with_rows(target, tmp_path)),
        "run", f"{target.url}/openapi.json", "--checks", "all", "--mode", "all", "--phases", phases,
        "-n", str(examples), "--seed", str(seed), "-H", f"Authorization: {token}",
        # The stream never ends by itself; logout would revoke the token the run uses.
        "--exclude-path", "/stream", "--exclude-path", "/auth/logout",
        "--generation-database", "none", "--workers", "1", "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=tmp_path)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["complete"] and not result["errors"], done.stdout[-5000:]
    assert result["failures"] == [] and result["test_cases"]["with_failures"] == 0, done.stdout[-8000:]
    assert result["operations"]["tested"] >= 60, result["operations"]
    # Still the same caller at the end (not expired, not deactivated or demoted by a generated PATCH /users):
    # every case ran as this role, not as a refused token, which the checks above would let pass.
    me = httpx.get(f"{target.url}/auth/me", headers={"Authorization": token}, timeout=30)
    assert me.status_code == 200 and me.json()["role"] == role, me.text
    return result


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_nothing(target: Target, role: str, tmp_path: Path) -> None:
    result = run_schemathesis(target, role, tmp_path, phases="fuzzing", examples=4, seed=17)
    assert result["test_cases"]["generated"] >= 250, result["test_cases"]


@pytest.mark.long
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_nothing_in_10000_cases(target: Target, role: str, tmp_path: Path) -> None:
    result = run_schemathesis(target, role, tmp_path, phases="coverage,fuzzing", examples=100, seed=1717)
    assert result["test_cases"]["generated"] >= 10_000, result["test_cases"]
