"""Staff, teams, contact channels, user links and place names: reads and writes, no HTTP.

Every read filters by the caller's communities in SQL. "On duty" is who a
schedule of the community puts on call now (`oncall.schedule.on_call`);
"load" is the person's open work orders, counted as dispatch counts them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from oncall.schedule import on_call
from oncall.store import load_directory
from workorders.store import LOAD_STATES

_TEAM_COLUMNS = "team_id, community_id, kind, name, skills, buildings, lead_staff_id, active"
_STAFF_COLUMNS = ("s.staff_id, s.community_id, s.team_id, s.name, s.role, s.skills, s.buildings, s.phone, s.email,"
                  " s.max_open_orders, s.active, t.name AS team_name, t.kind AS team_kind")


@dataclass
class TeamRecord:
    team_id: str
    community_id: str
    kind: str
    name: str
    skills: list[str]
    buildings: list[str]
    lead_staff_id: str | None
    active: bool
    members: int = 0


@dataclass
class StaffRecord:
    staff_id: str
    community_id: str
    team_id: str | None
    name: str
    role: str
    skills: list[str]
    buildings: list[str]
    phone: str | None
    email: str | None
    max_open_orders: int
    active: bool
    team_name: str | None
    team_kind: str | None
    open_orders: int = 0
    on_duty: list[str] = field(default_factory=list)  # names of the schedules that have them on call now
    contacts: list[dict[str, Any]] = field(default_factory=list)
    username: str | None = None


def list_teams(conn: psycopg.Connection, *, communities: Collection[str]) -> list[TeamRecord]:
    rows = conn.execute(
        f"SELECT {_TEAM_COLUMNS}, (SELECT count(*) FROM staff s WHERE s.team_id = t.team_id AND s.active)"
        " FROM teams t WHERE community_id = ANY(%s) ORDER BY community_id, kind, team_id",
        (list(communities),),
    ).fetchall()
    return [TeamRecord(*r[:8], members=int(r[8])) for r in rows]


def get_team(conn: psycopg.Connection, *, team_id: str, communities: Collection[str]) -> TeamRecord | None:
    teams = [t for t in list_teams(conn, communities=communities) if t.team_id == team_id]
    return teams[0] if teams else None


def team_exists(conn: psycopg.Connection, *, team_id: str) -> bool:
    return conn.execute("SELECT 1 FROM teams WHERE team_id = %s", (team_id,)).fetchone() is not None


def staff_exists(conn: psycopg.Connection, *, staff_id: str) -> bool:
    return conn.execute("SELECT 1 FROM staff WHERE staff_id = %s", (staff_id,)).fetchone() is not None


def staff_community(conn: psycopg.Connection, *, staff_id: str) -> str | None:
    row = conn.execute("SELECT community_id FROM staff WHERE staff_id = %s", (staff_id,)).fetchone()
    return row[0] if row else None


def team_community(conn: psycopg.Connection, *, team_id: str) -> str | None:
    row = conn.execute("SELECT community_id FROM teams WHERE team_id = %s", (team_id,)).fetchone()
    return row[0] if row else None


def upsert_team(conn: psycopg.Connection, *, team_id: str, community_id: str, kind: str, name: str,
                skills: Sequence[str], buildings: Sequence[str], lead_staff_id: str | None, active: bool) -> None:
    conn.execute(
        "INSERT INTO teams (team_id, community_id, kind, name, skills, buildings, lead_staff_id, active)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (team_id) DO UPDATE SET kind = EXCLUDED.kind,"
        " name = EXCLUDED.name, skills = EXCLUDED.skills, buildings = EXCLUDED.buildings,"
        " lead_staff_id = EXCLUDED.lead_staff_id, active = EXCLUDED.active",
        (team_id, community_id, kind, name, list(skills), list(buildings), lead_staff_id, active),
    )


def upsert_staff(conn: psycopg.Connection, *, staff_id: str, community_id: str, team_id: str | None, name: str,
                 role: str, skills: Sequence[str], buildings: Sequence[str], phone: str | None, email: str | None,
                 max_open_orders: int, active: bool) -> None:
    conn.execute(
        "INSERT INTO staff (staff_id, community_id, team_id, name, role, skills, buildings, phone, email,"
        " max_open_orders, active) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (staff_id) DO UPDATE SET team_id = EXCLUDED.team_id, name = EXCLUDED.name,"
        " role = EXCLUDED.role, skills = EXCLUDED.skills, buildings = EXCLUDED.buildings, phone = EXCLUDED.phone,"
        " email = EXCLUDED.email, max_open_orders = EXCLUDED.max_open_orders, active = EXCLUDED.active",
        (staff_id, community_id, team_id, name, role, list(skills), list(buildings), phone, email, max_open_orders,
         active),
    )


def set_contacts(conn: psycopg.Connection, *, staff_id: str, contacts: Sequence[dict[str, Any]]) -> None:
    """Replace a person's contact channels (one per channel)."""
    conn.execute("DELETE FROM oncall_contacts WHERE staff_id = %s", (staff_id,))
    for c in contacts:
        conn.execute(
            "INSERT INTO oncall_contacts (staff_id, channel, address, locale, enabled) VALUES (%s, %s, %s, %s, %s)",
            (staff_id, c["channel"], c.get("address", ""), c.get("locale", "zh-CN"), c.get("enabled", True)),
        )


def on_duty_now(conn: psycopg.Connection, *, community_ids: Collection[str], now: dt.datetime) -> dict[str, list[str]]:
    """staff_id -> names of the schedules that have them on call at ``now``."""
    duty: dict[str, list[str]] = {}
    for community_id in sorted(set(community_ids)):
        directory = load_directory(conn, community_id)
        for schedule in directory.schedules.values():
            who, _ = on_call(schedule, now)
            if who is not None:
                duty.setdefault(who, []).append(schedule.name or schedule.schedule_id)
    return duty


def list_staff(conn: psycopg.Connection, *, communities: Collection[str], now: dt.datetime,
               staff_id: str | None = None, team_id: str | None = None) -> list[StaffRecord]:
    where, params = ["s.community_id = ANY(%s)"], [list(communities)]
    if staff_id is not None:
        where.append("s.staff_id = %s")
        params.append(staff_id)
    if team_id is not None:
        where.append("s.team_id = %s")
        params.append(team_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_STAFF_COLUMNS} FROM staff s LEFT JOIN teams t ON t.team_id = s.team_id"
            f" WHERE {' AND '.join(where)} ORDER BY s.community_id, t.kind NULLS LAST, s.name, s.staff_id",
            params,
        ).fetchall()
    people = [StaffRecord(**r) for r in rows]
    if not people:
        return people
    ids = [p.staff_id for p in people]
    load = dict(conn.execute(
        "SELECT assignee, count(*) FROM work_orders WHERE assignee = ANY(%s) AND state = ANY(%s) GROUP BY assignee",
        (ids, [s.value for s in LOAD_STATES]),
    ).fetchall())  # fmt: skip
    contacts: dict[str, list[dict[str, Any]]] = {}
    for sid, channel, address, locale, enabled in conn.execute(
        "SELECT staff_id, channel, address, locale, enabled FROM oncall_contacts WHERE staff_id = ANY(%s)"
        " ORDER BY staff_id, channel", (ids,),
    ):
        contacts.setdefault(sid, []).append({"channel": channel, "address": address, "locale": locale,
                                             "enabled": enabled})
    users = dict(conn.execute("SELECT staff_id, username FROM api_users WHERE staff_id = ANY(%s)", (ids,)).fetchall())
    duty = on_duty_now(conn, community_ids={p.community_id for p in people}, now=now)
    for p in people:
        p.open_orders = int(load.get(p.staff_id, 0))
        p.on_duty = duty.get(p.staff_id, [])
        p.contacts = contacts.get(p.staff_id, [])
        p.username = users.get(p.staff_id)
    return people


def staff_of_user(conn: psycopg.Connection, *, user_id: int) -> str | None:
    row = conn.execute("SELECT staff_id FROM api_users WHERE id = %s", (user_id,)).fetchone()
    return row[0] if row else None


def actor_for(conn: psycopg.Connection, *, user_id: int, username: str) -> str:
    """Who acts: the staff member linked to the login (a person), else the username."""
    return staff_of_user(conn, user_id=user_id) or username


def link_user(conn: psycopg.Connection, *, user_id: int, staff_id: str | None) -> None:
    conn.execute("UPDATE api_users SET staff_id = %s WHERE id = %s", (staff_id, user_id))


def user_of_staff(conn: psycopg.Connection, *, staff_id: str) -> int | None:
    row = conn.execute("SELECT id FROM api_users WHERE staff_id = %s", (staff_id,)).fetchone()
    return int(row[0]) if row else None


# --- places ---------------------------------------------------------------------------------------


@dataclass
class PlaceRecord:
    place_id: str
    community_id: str
    kind: str
    parent_id: str | None
    name: str


def list_places(conn: psycopg.Connection, *, communities: Collection[str]) -> list[PlaceRecord]:
    rows = conn.execute(
        "SELECT place_id, community_id, kind, parent_id, name FROM places WHERE community_id = ANY(%s)"
        " ORDER BY community_id, kind, place_id", (list(communities),),
    ).fetchall()
    return [PlaceRecord(*r) for r in rows]


def place_community(conn: psycopg.Connection, *, place_id: str) -> str | None:
    row = conn.execute("SELECT community_id FROM places WHERE place_id = %s", (place_id,)).fetchone()
    return row[0] if row else None


def upsert_places(conn: psycopg.Connection, places: Sequence[PlaceRecord]) -> None:
    for p in places:
        conn.execute(
            "INSERT INTO places (place_id, community_id, kind, parent_id, name) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (place_id) DO UPDATE SET kind = EXCLUDED.kind, parent_id = EXCLUDED.parent_id,"
            " name = EXCLUDED.name", (p.place_id, p.community_id, p.kind, p.parent_id, p.name),
        )
