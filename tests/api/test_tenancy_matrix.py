"""The tenancy matrix, generated from the app's route table: every route × role × caller × target.

For every route of the app there is one entry below (a route without one fails
`test_every_route_has_an_entry`, and so does an entry for a route that is
gone). An entry says which permission the route needs and how to build a
request against a *target* of given communities:

- targets of one community: ``north`` (the caller's own), ``south`` (another),
  ``east`` (own for the caller of two communities);
- targets of several (users, their keys): ``north+south`` (shared with another)
  and ``north+east``;
- callers, for every role: one of ``north``; one of ``north`` and ``east``;
  and an installation-wide administrator.

Expected, by `api.tenancy`'s one rule: a role without the permission gets 403
whatever the target; otherwise 2xx when every community of the target is the
caller's and 404 (``not_found``) when it is not. A 2xx state change writes at
least one audit entry, a refusal none. A 2xx answer to a caller who does not see
a community never contains that community's name (every id built here carries
its community's name). Every route but the public ones answers 401 without
credentials.

Adding a route: add an entry to ENTRIES (or to PUBLIC with the reason it needs no
login); the builder gets a `Maker` (fresh rows of any community, made through
the API by an installation-wide admin) and the target's communities.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import _routers, create_app
from api.security import ROLE_PERMISSIONS, Permission, Role
from api.users import create_user, issue_token
from ingest.migrate import migrate
from steward.databases import create_database, drop_database
from tests.api.conftest import API_NOW, PASSWORD, SetClock, World, add_user, seed
from tests.api.test_alerts_workorders import open_incident

N, S, E = "north", "south", "east"
COMMUNITIES = (N, S, E)
SINGLE_TARGETS = (frozenset({N}), frozenset({S}), frozenset({E}))
USER_TARGETS = (frozenset({N}), frozenset({S}), frozenset({N, S}), frozenset({N, E}))
CALLERS = {"one community": frozenset({N}), "two communities": frozenset({N, E})}
SECRET = "matrix-link-secret-0123456789"
P = Permission


@dataclass
class Req:
    method: str
    path: str
    json: Any = None
    # For answers that are 200 either way (a bulk action, an unfiltered list): 'seen' or 'unseen' from the body.
    judge: Callable[[Any], str] | None = None


Builder = Callable[["Maker", frozenset[str]], Req]


@dataclass(frozen=True)
class Entry:
    needs: tuple[Permission, ...]  # any one of them
    build: Builder
    several: bool = False  # targets may span communities (users, their keys)
    changes: bool = False  # a success writes an audit entry
    unfiltered: bool = True  # a list that also answers without its ?community= filter
    fresh: bool = False  # a read whose target other builders remove: made anew for every check


def entry(needs: Permission | tuple[Permission, ...], build: Builder, **kw: Any) -> Entry:
    return Entry(needs if isinstance(needs, tuple) else (needs,), build, **kw)


def one(cs: frozenset[str]) -> str:
    (c,) = cs
    return c


class Maker:
    """Fresh rows of any community, made through the API by an installation-wide admin (or SQL where none)."""

    def __init__(self, client: TestClient, dsn: str, root: dict[str, str], conn: psycopg.Connection) -> None:
        self.client, self.dsn, self.root, self.conn = client, dsn, root, conn
        self.n = itertools.count()
        self._cache: dict[tuple[str, str], Any] = {}

    def _ok(self, method: str, path: str, json: Any = None) -> Any:
        r = self.client.request(method, path, headers=self.root, json=json)
        assert 200 <= r.status_code < 300, f"set-up {method} {path}: {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None

    def id(self, c: str, kind: str) -> str:
        return f"{c}-{kind}-x{next(self.n)}"

    def once(self, key: tuple[str, str], make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def device(self, c: str, device_type: str = "water", kind: str = "meter") -> str:
        device_id = self.id(c, kind)
        self._ok("POST", "/devices", {"device_id": device_id, "community_id": c, "device_type": device_type,
                                      "kind": kind, "building_id": "b1", "unit_id": "u101",
                                      "issue_credentials": False})
        return device_id

    def meter(self, c: str) -> str:
        return self.once((c, "meter"), lambda: self.device(c))

    def incident(self, c: str) -> int:
        return open_incident(self.dsn, c, self.id(c, "hub"))

    def resident(self, c: str) -> int:
        return self._ok("POST", "/residents", {"community_id": c, "full_name": "Wang Xiuying", "phone": "13800138000",
                                               "unit_id": "u101"})["id"]

    def team(self, c: str) -> str:
        team_id = self.id(c, "team")
        self._ok("POST", "/teams", {"id": team_id, "community_id": c, "kind": "engineering", "name": "Eng"})
        return team_id

    def staff(self, c: str) -> str:
        staff_id = self.id(c, "staff")
        self._ok("POST", "/staff", {"id": staff_id, "community_id": c, "name": "Wang Wei",
                                    "team_id": self.once((c, "team"), lambda: self.team(c))})
        return staff_id

    def order(self, c: str) -> int:
        return self._ok("POST", "/work-orders", {"community_id": c, "title": "Check the meter", "tier": 3,
                                                 "auto_dispatch": False})["id"]

    def user(self, cs: frozenset[str]) -> int:
        # SQL: argon2 through the API would cost 0.1 s a user
        return add_user(self.conn, self.id("-".join(sorted(cs)), "user"), Role.TECHNICIAN, sorted(cs))

    def api_key(self, user_id: int) -> int:
        return self._ok("POST", f"/users/{user_id}/api-keys", {"name": "integration"})["id"]

    def schedule(self, c: str) -> str:
        schedule_id = self.id(c, "rota")
        self._ok("POST", "/oncall/schedules", {"id": schedule_id, "community_id": c, "name": "Engineering",
                                               "rotations": self.rotations(c)})
        return schedule_id

    def rotations(self, c: str) -> list[dict[str, Any]]:
        people = self.once((c, "people"), lambda: [self.staff(c), self.staff(c)])
        return [{"layer": 0, "handoff_at": "2026-03-02T08:00:00+08:00", "shift_hours": 24, "participants": people}]

    def override(self, c: str) -> tuple[str, int]:
        schedule_id = self.schedule(c)
        made = self._ok("POST", f"/oncall/schedules/{schedule_id}/overrides",
                        {"staff_id": self.rotations(c)[0]["participants"][0],
                         "starts_at": "2026-12-01T08:00:00+08:00", "ends_at": "2026-12-01T12:00:00+08:00"})
        return schedule_id, made["id"]

    def policy_body(self, c: str, policy_id: str) -> dict[str, Any]:
        return {"id": policy_id, "community_id": c, "tier": None,
                "steps": [{"targets": [f"staff:{self.rotations(c)[0]['participants'][0]}"], "delay_minutes": 10}]}

    def free_policy_slot(self, c: str) -> None:
        with psycopg.connect(self.dsn) as conn:
            conn.execute("DELETE FROM oncall_policies WHERE community_id = %s", (c,))

    def policy(self, c: str) -> str:
        self.free_policy_slot(c)
        policy_id = self.id(c, "policy")
        self._ok("POST", "/oncall/policies", self.policy_body(c, policy_id))
        return policy_id

    def window_body(self, c: str) -> dict[str, Any]:
        self.meter(c)  # building b1 exists in c
        start = API_NOW + dt.timedelta(hours=1)
        return {"community_id": c, "scope": "building", "scope_id": "b1", "device_type": "water",
                "starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=4)).isoformat()}

    def window(self, c: str) -> int:
        return self._ok("POST", "/oncall/maintenance-windows", self.window_body(c))["id"]


def seen_if(marker: Callable[[Any], bool]) -> Callable[[Any], str]:
    return lambda body: "seen" if marker(body) else "unseen"


def bulk_outcome(body: Any) -> str:
    result = body["results"][0]
    return "seen" if result["ok"] else ("unseen" if result["error"] == "not_found" else f"error {result}")


def _users_list(m: Maker, cs: frozenset[str]) -> Req:
    user_id = m.user(cs)
    return Req("GET", "/users", judge=seen_if(lambda body: user_id in [u["id"] for u in body]))


def _roster(m: Maker, cs: frozenset[str]) -> Req:
    c = one(cs)
    return Req("POST", "/roster/import", {"toml": f'[[staff]]\nid = "{m.id(c, "imported")}"\n'
                                                  f'community_id = "{c}"\nname = "Li Na"\n'})


def _policy_create(m: Maker, cs: frozenset[str]) -> Req:
    c = one(cs)
    m.free_policy_slot(c)
    return Req("POST", "/oncall/policies", m.policy_body(c, m.id(c, "policy")))


def _window_delete(m: Maker, cs: frozenset[str]) -> Req:
    return Req("DELETE", f"/oncall/maintenance-windows/{m.window(one(cs))}")


def _override_delete(m: Maker, cs: frozenset[str]) -> Req:
    schedule_id, override_id = m.override(one(cs))
    return Req("DELETE", f"/oncall/schedules/{schedule_id}/overrides/{override_id}")


def _key_revoke(m: Maker, cs: frozenset[str]) -> Req:
    user_id = m.user(cs)
    return Req("DELETE", f"/users/{user_id}/api-keys/{m.api_key(user_id)}")


def _staff_link(m: Maker, cs: frozenset[str]) -> Req:
    return Req("PUT", f"/users/{m.user(cs)}/staff", {"staff_id": m.staff(min(cs))})


def _assign(m: Maker, cs: frozenset[str]) -> Req:
    c = one(cs)
    return Req("POST", f"/alerts/{m.incident(c)}/assign", {"assignee": m.staff(c)})


def _phone(m: Maker, cs: frozenset[str]) -> Req:
    c = one(cs)
    with psycopg.connect(m.dsn) as conn:
        conn.execute("INSERT INTO demo_phone_messages (received_at, community_id, staff_id, subject, body, links) "
                     "VALUES (%s, %s, %s, 'page', 'text', '{}')", (API_NOW, c, f"{c}-staff-x"))
    return Req("GET", f"/demo/phone?community={c}")


ENTRIES: dict[tuple[str, str], Entry] = {
    # --- devices and their data
    ("GET", "/devices"): entry(P.READ, lambda m, cs: Req("GET", f"/devices?community={one(cs)}")),
    ("POST", "/devices"): entry(P.DEVICE_MANAGE, lambda m, cs: Req("POST", "/devices", {
        "device_id": m.id(one(cs), "lock"), "community_id": one(cs), "device_type": "access", "kind": "entrance",
        "issue_credentials": False}), changes=True),
    ("GET", "/devices/{device_id}"): entry(P.READ, lambda m, cs: Req("GET", f"/devices/{m.meter(one(cs))}")),
    ("PATCH", "/devices/{device_id}"): entry(P.DEVICE_MANAGE, lambda m, cs: Req(
        "PATCH", f"/devices/{m.meter(one(cs))}", {"name": "Meter, riser 2"}), changes=True),
    ("POST", "/devices/{device_id}/retire"): entry(P.DEVICE_MANAGE, lambda m, cs: Req(
        "POST", f"/devices/{m.device(one(cs))}/retire"), changes=True),
    ("POST", "/devices/{device_id}/credentials"): entry(P.DEVICE_MANAGE, lambda m, cs: Req(
        "POST", f"/devices/{m.device(one(cs))}/credentials"), changes=True),
    ("GET", "/devices/{device_id}/health"): entry(P.READ, lambda m, cs: Req(
        "GET", f"/devices/{m.meter(one(cs))}/health")),
    ("GET", "/devices/{device_id}/series"): entry(P.READ, lambda m, cs: Req(
        "GET", f"/devices/{m.meter(one(cs))}/series?bucket=1h")),
    ("GET", "/devices/{device_id}/rollups"): entry(P.READ, lambda m, cs: Req(
        "GET", f"/devices/{m.meter(one(cs))}/rollups")),
    ("GET", "/events"): entry(P.READ, lambda m, cs: Req("GET", f"/events?community={one(cs)}")),
    ("GET", "/dead-letters"): entry(P.DEAD_LETTERS, lambda m, cs: Req("GET", f"/dead-letters?community={one(cs)}")),
    ("GET", "/places"): entry(P.READ, lambda m, cs: Req("GET", f"/places?community={one(cs)}")),
    ("PUT", "/places"): entry(P.DEVICE_MANAGE, lambda m, cs: Req("PUT", "/places", [
        {"id": m.id(one(cs), "bldg"), "community_id": one(cs), "kind": "building", "name": "2号楼"}]), changes=True),
    # --- residents
    ("GET", "/residents"): entry(P.READ, lambda m, cs: Req("GET", f"/residents?community={one(cs)}")),
    ("GET", "/residents/{resident_id}"): entry(P.READ, lambda m, cs: Req("GET", f"/residents/{m.resident(one(cs))}")),
    ("POST", "/residents"): entry(P.RESIDENT_MANAGE, lambda m, cs: Req("POST", "/residents", {
        "community_id": one(cs), "full_name": "Li Lei", "phone": "13900000000"}), changes=True),
    ("PATCH", "/residents/{resident_id}"): entry(P.RESIDENT_MANAGE, lambda m, cs: Req(
        "PATCH", f"/residents/{m.resident(one(cs))}", {"care_notes": "uses a walker"}), changes=True),
    # --- users and their keys: a user belongs to all of their communities
    ("GET", "/users"): entry(P.USER_MANAGE, _users_list, several=True),
    ("POST", "/users"): entry(P.USER_MANAGE, lambda m, cs: Req("POST", "/users", {
        "username": m.id("-".join(sorted(cs)), "new"), "password": "long-enough-password", "role": "operator",
        "communities": sorted(cs)}), several=True, changes=True),
    ("GET", "/users/{user_id}"): entry(P.USER_MANAGE, lambda m, cs: Req("GET", f"/users/{m.user(cs)}"),
                                       several=True),
    ("PATCH", "/users/{user_id}"): entry(P.USER_MANAGE, lambda m, cs: Req(
        "PATCH", f"/users/{m.user(cs)}", {"password": "another-long-password", "role": "operator"}),
        several=True, changes=True),
    ("PUT", "/users/{user_id}/staff"): entry(P.USER_MANAGE, _staff_link, several=True, changes=True),
    ("GET", "/users/{user_id}/api-keys"): entry(P.USER_MANAGE, lambda m, cs: Req(
        "GET", f"/users/{m.user(cs)}/api-keys"), several=True),
    ("POST", "/users/{user_id}/api-keys"): entry(P.USER_MANAGE, lambda m, cs: Req(
        "POST", f"/users/{m.user(cs)}/api-keys", {"name": "takeover"}), several=True, changes=True),
    ("DELETE", "/users/{user_id}/api-keys/{key_id}"): entry(P.USER_MANAGE, _key_revoke, several=True, changes=True),
    ("GET", "/audit"): entry(P.AUDIT_READ, lambda m, cs: Req("GET", f"/audit?community={one(cs)}")),
    # --- alerts
    ("GET", "/alerts"): entry(P.READ, lambda m, cs: Req("GET", f"/alerts?community={one(cs)}")),
    ("GET", "/alerts/{alert_id}"): entry(P.READ, lambda m, cs: Req("GET", f"/alerts/{m.incident(one(cs))}")),
    ("POST", "/alerts/acknowledge"): entry(P.ALERT_ACT, lambda m, cs: Req(
        "POST", "/alerts/acknowledge", {"ids": [m.incident(one(cs))]}, judge=bulk_outcome), changes=True),
    ("POST", "/alerts/{alert_id}/acknowledge"): entry(P.ALERT_ACT, lambda m, cs: Req(
        "POST", f"/alerts/{m.incident(one(cs))}/acknowledge"), changes=True),
    ("POST", "/alerts/{alert_id}/resolve"): entry(P.ALERT_ACT, lambda m, cs: Req(
        "POST", f"/alerts/{m.incident(one(cs))}/resolve", {"note": "false alarm", "resolution": "false_alarm",
                                                             "reason": "test press"}), changes=True),
    ("POST", "/alerts/{alert_id}/comments"): entry(P.ALERT_ACT, lambda m, cs: Req(
        "POST", f"/alerts/{m.incident(one(cs))}/comments", {"body": "on my way"}), changes=True),
    ("POST", "/alerts/{alert_id}/assign"): entry(P.ALERT_ACT, _assign, changes=True),
    ("POST", "/alerts/{alert_id}/escalate"): entry(P.ALERT_ACT, lambda m, cs: Req(
        "POST", f"/alerts/{m.incident(one(cs))}/escalate", {"tier": 1}), changes=True),
    # --- work orders and KPIs
    ("GET", "/work-orders"): entry(P.READ, lambda m, cs: Req("GET", f"/work-orders?community={one(cs)}")),
    ("POST", "/work-orders"): entry(P.WORKORDER_MANAGE, lambda m, cs: Req("POST", "/work-orders", {
        "community_id": one(cs), "title": "Check meter", "tier": 3, "auto_dispatch": False}), changes=True),
    ("GET", "/work-orders/{order_id}"): entry(P.READ, lambda m, cs: Req("GET", f"/work-orders/{m.order(one(cs))}")),
    ("POST", "/work-orders/{order_id}/actions"): entry(P.WORKORDER_MANAGE, lambda m, cs: Req(
        "POST", f"/work-orders/{m.order(one(cs))}/actions", {"action": "cancel", "reason": "duplicate"}),
        changes=True),
    ("POST", "/work-orders/{order_id}/notes"): entry(P.WORKORDER_WORK, lambda m, cs: Req(
        "POST", f"/work-orders/{m.order(one(cs))}/notes", {"text": "parts ordered"}), changes=True),
    ("GET", "/kpis"): entry(P.READ, lambda m, cs: Req("GET", f"/kpis?community={one(cs)}"), unfiltered=False),
    # --- people
    ("GET", "/teams"): entry(P.READ, lambda m, cs: Req("GET", f"/teams?community={one(cs)}")),
    ("POST", "/teams"): entry(P.ONCALL_MANAGE, lambda m, cs: Req("POST", "/teams", {
        "id": m.id(one(cs), "team"), "community_id": one(cs), "kind": "security", "name": "秩序维护部"}),
        changes=True),
    ("PUT", "/teams/{team_id}"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "PUT", f"/teams/{m.team(one(cs))}", {"kind": "security", "name": "Night guards"}), changes=True),
    ("GET", "/staff"): entry(P.READ, lambda m, cs: Req("GET", f"/staff?community={one(cs)}")),
    ("GET", "/staff/{staff_id}"): entry(P.READ, lambda m, cs: Req("GET", f"/staff/{m.staff(one(cs))}")),
    ("POST", "/staff"): entry(P.ONCALL_MANAGE, lambda m, cs: Req("POST", "/staff", {
        "id": m.id(one(cs), "staff"), "community_id": one(cs), "name": "Zhao Min"}), changes=True),
    ("PUT", "/staff/{staff_id}"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "PUT", f"/staff/{m.staff(one(cs))}", {"name": "Wang Wei", "role": "team_lead"}), changes=True),
    ("PUT", "/staff/{staff_id}/contacts"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "PUT", f"/staff/{m.staff(one(cs))}/contacts", [{"channel": "email", "address": "w@example.com"}]),
        changes=True),
    ("POST", "/roster/import"): entry(P.ONCALL_MANAGE, _roster, changes=True),
    # --- on-call configuration
    ("GET", "/oncall/schedules"): entry(P.READ, lambda m, cs: Req("GET", f"/oncall/schedules?community={one(cs)}")),
    ("POST", "/oncall/schedules"): entry(P.ONCALL_MANAGE, lambda m, cs: Req("POST", "/oncall/schedules", {
        "id": m.id(one(cs), "rota"), "community_id": one(cs), "name": "Eng", "rotations": m.rotations(one(cs))}),
        changes=True),
    ("GET", "/oncall/schedules/{schedule_id}"): entry(P.READ, lambda m, cs: Req(
        "GET", f"/oncall/schedules/{m.schedule(one(cs))}")),
    ("PUT", "/oncall/schedules/{schedule_id}"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "PUT", f"/oncall/schedules/{m.schedule(one(cs))}", {"name": "Eng", "rotations": m.rotations(one(cs))}),
        changes=True),
    ("DELETE", "/oncall/schedules/{schedule_id}"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "DELETE", f"/oncall/schedules/{m.schedule(one(cs))}"), changes=True),
    ("GET", "/oncall/schedules/{schedule_id}/on-call"): entry(P.READ, lambda m, cs: Req(
        "GET", f"/oncall/schedules/{m.schedule(one(cs))}/on-call")),
    ("POST", "/oncall/schedules/{schedule_id}/overrides"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "POST", f"/oncall/schedules/{m.schedule(one(cs))}/overrides", {
            "staff_id": m.rotations(one(cs))[0]["participants"][1], "starts_at": "2026-12-01T08:00:00+08:00",
            "ends_at": "2026-12-01T12:00:00+08:00"}), changes=True),
    ("DELETE", "/oncall/schedules/{schedule_id}/overrides/{override_id}"): entry(
        P.ONCALL_MANAGE, _override_delete, changes=True),
    ("GET", "/oncall/on-call"): entry(P.READ, lambda m, cs: Req("GET", f"/oncall/on-call?community={one(cs)}")),
    ("GET", "/oncall/policies"): entry(P.READ, lambda m, cs: Req("GET", f"/oncall/policies?community={one(cs)}")),
    ("POST", "/oncall/policies"): entry(P.ONCALL_MANAGE, _policy_create, changes=True),
    ("GET", "/oncall/policies/{policy_id}"): entry(P.READ, lambda m, cs: Req(
        "GET", f"/oncall/policies/{m.policy(one(cs))}"), fresh=True),  # one policy a community: others replace it
    ("PUT", "/oncall/policies/{policy_id}"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "PUT", f"/oncall/policies/{m.policy(one(cs))}", {"steps": m.policy_body(one(cs), "x")["steps"]}),
        changes=True),
    ("DELETE", "/oncall/policies/{policy_id}"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "DELETE", f"/oncall/policies/{m.policy(one(cs))}"), changes=True),
    ("GET", "/oncall/maintenance-windows"): entry(P.READ, lambda m, cs: Req(
        "GET", f"/oncall/maintenance-windows?community={one(cs)}")),
    ("POST", "/oncall/maintenance-windows"): entry(P.ONCALL_MANAGE, lambda m, cs: Req(
        "POST", "/oncall/maintenance-windows", m.window_body(one(cs))), changes=True),
    ("DELETE", "/oncall/maintenance-windows/{window_id}"): entry(P.ONCALL_MANAGE, _window_delete, changes=True),
    ("GET", "/tree"): entry(P.READ, lambda m, cs: Req("GET", f"/tree?community={one(cs)}")),
    # --- the demo's phone (served when steward run gives it a secret)
    ("GET", "/demo/phone"): entry(P.READ, _phone),
}

# Routes that need no login, and why; they reveal nothing of a community to an anonymous caller.
PUBLIC = {
    ("POST", "/auth/token"): "the login itself (throttled; tests/api/test_login_throttle.py)",
    ("GET", "/health"): "probe: status of the parts, no community data",
    ("GET", "/metrics"): "Prometheus counters, no community data",
    ("GET", "/"): "the control-room page (static)",
    ("GET", "/ui/config.json"): "the work-order state machine for the page (static)",
    ("GET", "/ui/{name}"): "the page's assets (static)",
    ("GET", "/oncall/links/{token}"): "the signed, expiring, single-use link is the credential (test_oncall_routes)",
    ("POST", "/oncall/links/{token}"): "the signed, expiring, single-use link is the credential (test_oncall_routes)",
    ("POST", "/demo/phone/inbox"): "the demo's webhook receiver: HMAC-signed like an SMS gateway (test_people_routes)",
}

# Routes about the caller themselves, checked on their own: every role may use them, for itself only.
SELF = {
    ("POST", "/auth/logout"): "revokes the token it is called with",
    ("GET", "/auth/me"): "the caller's own role and communities",
    ("GET", "/stream"): "the caller's communities' changes only (tests/api/test_stream.py, over a real socket)",
}


def route_table() -> set[tuple[str, str]]:
    found = set()
    for router in _routers():
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            for method in route.methods:
                found.add((method, route.path))
    return found


def test_every_route_has_an_entry() -> None:
    table = route_table()
    covered = set(ENTRIES) | set(PUBLIC) | set(SELF)
    missing = sorted(table - covered)
    assert not missing, f"routes with no tenancy entry (add them to ENTRIES or PUBLIC): {missing}"
    stale = sorted(covered - table)
    assert not stale, f"entries for routes that do not exist: {stale}"
    assert not (set(ENTRIES) & set(PUBLIC)) and not (set(ENTRIES) & set(SELF))


# --------------------------------------------------------------------------------------------- the run


@dataclass
class Run:
    world: World
    client: TestClient
    maker: Maker
    conn: psycopg.Connection
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    # Requests that change nothing, by (route, target, refused): a read, or a request this role is refused.
    unchanging: dict[tuple[tuple[str, str], frozenset[str], bool], Req] = field(default_factory=dict)

    def headers(self, user_id: int) -> dict[str, str]:
        token, _ = issue_token(self.conn, user_id=user_id, ttl=dt.timedelta(hours=2))
        return {"Authorization": f"Bearer {token}"}

    def request_for(self, key: tuple[str, str], spec: Entry, target: frozenset[str], expected: str) -> Req:
        """A fresh target for a request that may change it; a read, or a refused request, changes nothing, so
        its target is made once and asked by every caller (what each may see of it is what the check is about).
        A refusal that did change something still fails the check: no audit entry may be written."""
        if expected != "403" and (key[0] != "GET" or spec.fresh):
            return spec.build(self.maker, target)
        cached = (key, target, expected == "403")
        if cached not in self.unchanging:
            self.unchanging[cached] = spec.build(self.maker, target)
        return self.unchanging[cached]

    def audit_count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM audit_log").fetchone()
        assert row is not None
        return int(row[0])

    def check(self, who: str, caller: dict[str, str], key: tuple[str, str], spec: Entry, target: frozenset[str],
              expected: str, sees: frozenset[str] | None) -> None:
        req = self.request_for(key, spec, target, expected)
        before = self.audit_count() if spec.changes else 0
        r = self.client.request(req.method, req.path, headers=caller, json=req.json)
        got = str(r.status_code)
        self.requests += 1
        if req.judge is not None and r.status_code == 200:
            got = {"seen": "2xx", "unseen": "404"}.get(req.judge(r.json()), f"200 {req.judge(r.json())}")
        elif 200 <= r.status_code < 300:
            got = "2xx"
        elif r.status_code in (403, 404):
            code = r.json()["error"]["code"]
            if code != {403: "forbidden", 404: "not_found"}[r.status_code]:
                got = f"{r.status_code} {code}"
        problem = None
        if got != expected:
            problem = f"expected {expected}, got {got}: {r.text[:200]}"
        elif spec.changes:
            grew = self.audit_count() - before
            if (grew == 0) if expected == "2xx" else (grew != 0):
                problem = f"{expected} with {grew} audit entries"
        if problem is None and got == "2xx" and sees is not None:
            leaked = [c for c in COMMUNITIES if c not in sees and re.search(rf"\b{c}\b", r.text)]
            if leaked:
                problem = f"2xx names unseen communities {leaked}: {r.text[:200]}"
        if problem:
            label = "+".join(sorted(target))
            self.failures.append(f"{who} {key[0]} {key[1]} on {label} ({req.method} {req.path}): {problem}")


@pytest.fixture(scope="module")
def run(admin_dsn: str) -> Iterator[Run]:
    """One database and one app for the whole matrix, requests in-process. Every check that may change its
    target makes its own fresh one, so they do not interfere."""
    dsn = create_database(admin_dsn)
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            # A throwaway database: a commit need not wait for the disk (thousands of them, ~5 ms each here).
            conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                sql.Identifier(conninfo_to_dict(dsn)["dbname"])))
        migrate(dsn)
        world = seed(dsn)
        app: FastAPI = create_app(database_url=dsn, oncall_link_secret=SECRET, demo_phone_secret=SECRET,
                                  clock=SetClock(API_NOW))
        with TestClient(app, raise_server_exceptions=False) as client, psycopg.connect(dsn, autocommit=True) as conn:
            root = create_user(conn, username="matrix-root", password=PASSWORD, role=Role.ADMIN, community_ids=[],
                               all_communities=True)
            this = Run(world, client, Maker(client, dsn, {}, conn), conn)
            this.maker.root = this.headers(root.id)
            yield this
    finally:
        drop_database(admin_dsn, dsn)


@pytest.fixture
def checks(run: Run) -> Iterator[Run]:
    run.failures.clear()
    yield run


def expectation(role: Role, spec: Entry, communities: frozenset[str] | None, target: frozenset[str]) -> str:
    if not set(spec.needs) & ROLE_PERMISSIONS[role]:
        return "403"
    return "2xx" if communities is None or target <= communities else "404"


@pytest.mark.parametrize("role", list(Role))
def test_tenancy_matrix(role: Role, checks: Run) -> None:
    run = checks
    """Every route for one role: a caller of one community and a caller of two, every kind of target."""
    for label, communities in CALLERS.items():
        user_id = add_user(run.conn, f"{role.value}-{label.replace(' ', '-')}", role, sorted(communities))
        caller = run.headers(user_id)
        for key, spec in sorted(ENTRIES.items()):
            targets = USER_TARGETS if spec.several else SINGLE_TARGETS
            if not set(spec.needs) & ROLE_PERMISSIONS[role]:
                targets = targets[:1]  # refused whatever the target: once is enough
            for target in targets:
                run.check(f"{role.value} of {label}", caller, key, spec, target,
                          expectation(role, spec, communities, target), communities)
        unfiltered(run, f"{role.value} of {label}", caller, role, communities)
    assert not run.failures, f"{len(run.failures)} failures:\n" + "\n".join(run.failures)


def unfiltered(run: Run, who: str, caller: dict[str, str], role: Role, communities: frozenset[str]) -> None:
    """Every list without its ``community`` filter, after rows were made in a community the caller lacks:
    2xx, and nothing of that community in it."""
    for key, spec in sorted(ENTRIES.items()):
        if key[0] != "GET" or not spec.unfiltered or not set(spec.needs) & ROLE_PERMISSIONS[role]:
            continue
        req = spec.build(run.maker, USER_TARGETS[1] if spec.several else SINGLE_TARGETS[1])
        if "community=" not in req.path:
            continue
        path = re.sub(r"[?&]community=[^&]*", "", req.path)
        unscoped = Entry(spec.needs, lambda m, cs, path=path: Req("GET", path))
        run.check(who, caller, (key[0], f"{key[1]} (no community filter)"), unscoped, communities, "2xx",
                  communities)


def test_tenancy_matrix_installation_wide_admin(checks: Run) -> None:
    run = checks
    """An installation-wide administrator sees every target of every route."""
    caller = run.maker.root
    for key, spec in sorted(ENTRIES.items()):
        for target in USER_TARGETS if spec.several else SINGLE_TARGETS:
            run.check("installation admin", caller, key, spec, target, "2xx", None)
    assert not run.failures, f"{len(run.failures)} failures:\n" + "\n".join(run.failures)


def test_every_route_but_the_public_ones_needs_credentials(run: Run) -> None:
    failures = []
    for method, path in sorted(route_table() - set(PUBLIC)):
        concrete = path.replace("{", "").replace("}", "")  # /devices/device_id: any value will do
        r = run.client.request(method, concrete)
        if r.status_code != 401 or r.json()["error"]["code"] != "not_authenticated":
            failures.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
        r = run.client.request(method, concrete, headers={"Authorization": "Bearer stw_t_forged"})
        if r.status_code != 401 or r.json()["error"]["code"] != "invalid_token":
            failures.append(f"{method} {path} (forged token): {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_permissions_table_is_what_the_matrix_assumes() -> None:
    """Who may see residents' personal data is a decision; pin it."""
    pii = {role for role in Role if Permission.RESIDENT_PII in ROLE_PERMISSIONS[role]}
    assert pii == {Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN}
    assert ROLE_PERMISSIONS[Role.MANAGER] == {Permission.READ, Permission.AUDIT_READ}
