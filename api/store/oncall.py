"""On-call data the API needs and `oncall.store` / `oncall.config` do not already offer.

Small keyword-only functions, no HTTP. Writing schedules, policies, overrides
and windows goes through `oncall.config`; reading schedules and policies
through `oncall.store` — only the look-ups by id, the existence checks and the
window listing live here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

import psycopg

from oncall.links import LinkClaims


def schedule_community(conn: psycopg.Connection, *, schedule_id: str) -> str | None:
    row = conn.execute("SELECT community_id FROM oncall_schedules WHERE schedule_id = %s", (schedule_id,)).fetchone()
    return row[0] if row else None


def schedule_ids(conn: psycopg.Connection, *, communities: Collection[str]) -> list[tuple[str, str]]:
    """(schedule_id, community_id) of the communities' schedules, by id."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT schedule_id, community_id FROM oncall_schedules WHERE community_id = ANY(%s) ORDER BY schedule_id",
        (list(communities),),
    )]  # fmt: skip


def policy_community(conn: psycopg.Connection, *, policy_id: str) -> str | None:
    row = conn.execute("SELECT community_id FROM oncall_policies WHERE policy_id = %s", (policy_id,)).fetchone()
    return row[0] if row else None


def policy_ids(conn: psycopg.Connection, *, communities: Collection[str]) -> list[str]:
    """The communities' policies, by community then tier (any-tier last)."""
    return [r[0] for r in conn.execute(
        "SELECT policy_id FROM oncall_policies WHERE community_id = ANY(%s)"
        " ORDER BY community_id, tier NULLS LAST, policy_id",
        (list(communities),),
    )]  # fmt: skip


def policy_for_tier(conn: psycopg.Connection, *, community_id: str, tier: int | None) -> str | None:
    """The policy holding the (community, tier) slot; there is at most one (unique index)."""
    row = conn.execute(
        "SELECT policy_id FROM oncall_policies WHERE community_id = %s AND coalesce(tier, 0) = coalesce(%s, 0)",
        (community_id, tier),
    ).fetchone()
    return row[0] if row else None


def existing(conn: psycopg.Connection, *, kind: Literal["staff", "schedule", "team"], community_id: str,
             ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are active staff / schedules / active teams of ``community_id``."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    sql = {
        "staff": "SELECT staff_id FROM staff WHERE community_id = %s AND active AND staff_id = ANY(%s)",
        "schedule": "SELECT schedule_id FROM oncall_schedules WHERE community_id = %s AND schedule_id = ANY(%s)",
        "team": "SELECT team_id FROM teams WHERE community_id = %s AND active AND team_id = ANY(%s)",
    }[kind]
    return {r[0] for r in conn.execute(sql, (community_id, wanted))}


def delete_override(conn: psycopg.Connection, *, schedule_id: str, override_id: int) -> bool:
    row = conn.execute("DELETE FROM oncall_overrides WHERE schedule_id = %s AND override_id = %s RETURNING 1",
                       (schedule_id, override_id)).fetchone()
    return row is not None


def policies_targeting(conn: psycopg.Connection, *, community_id: str, target: str) -> list[str]:
    """Policies of the community with a step paging ``target`` ('schedule:ID'), by id."""
    kind, _, ident = target.partition(":")
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT p.policy_id FROM oncall_policies p JOIN oncall_policy_steps s USING (policy_id)"
        " WHERE p.community_id = %s AND s.targets @> %s::jsonb ORDER BY 1",
        (community_id, json.dumps([{"kind": kind, "id": ident}])),
    )]  # fmt: skip


def delete_schedule(conn: psycopg.Connection, *, schedule_id: str) -> None:
    conn.execute("DELETE FROM oncall_overrides WHERE schedule_id = %s", (schedule_id,))
    conn.execute("DELETE FROM oncall_rotations WHERE schedule_id = %s", (schedule_id,))
    conn.execute("DELETE FROM oncall_schedules WHERE schedule_id = %s", (schedule_id,))


def delete_policy(conn: psycopg.Connection, *, policy_id: str) -> None:
    conn.execute("DELETE FROM oncall_policy_steps WHERE policy_id = %s", (policy_id,))
    conn.execute("DELETE FROM oncall_policies WHERE policy_id = %s", (policy_id,))


def device_in_community(conn: psycopg.Connection, *, community_id: str, device_id: str) -> bool:
    return conn.execute("SELECT 1 FROM devices WHERE community_id = %s AND device_id = %s",
                        (community_id, device_id)).fetchone() is not None


def building_in_community(conn: psycopg.Connection, *, community_id: str, building_id: str) -> bool:
    """A building is known through the devices registered in it (there is no buildings table)."""
    return conn.execute("SELECT 1 FROM devices WHERE community_id = %s AND building_id = %s LIMIT 1",
                        (community_id, building_id)).fetchone() is not None


@dataclass(frozen=True)
class WindowRecord:
    id: int
    community_id: str
    scope: str
    scope_id: str
    device_type: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str
    created_by: str
    created_at: dt.datetime


_WINDOW_COLUMNS = "id, community_id, scope, scope_id, device_type, starts_at, ends_at, reason, created_by, created_at"


def list_windows(conn: psycopg.Connection, *, communities: Collection[str], ending_after: dt.datetime,
                 limit: int) -> list[WindowRecord]:
    """Windows of the communities that have not ended by ``ending_after`` (current and upcoming), soonest first."""
    return [WindowRecord(*r) for r in conn.execute(
        f"SELECT {_WINDOW_COLUMNS} FROM maintenance_windows WHERE community_id = ANY(%s) AND ends_at > %s"
        " ORDER BY starts_at, id LIMIT %s",
        (list(communities), ending_after, limit),
    )]  # fmt: skip


def get_window(conn: psycopg.Connection, *, window_id: int, communities: Collection[str]) -> WindowRecord | None:
    row = conn.execute(f"SELECT {_WINDOW_COLUMNS} FROM maintenance_windows WHERE id = %s AND community_id = ANY(%s)",
                       (window_id, list(communities))).fetchone()
    return WindowRecord(*row) if row else None


def end_window(conn: psycopg.Connection, *, window_id: int, now: dt.datetime) -> Literal["deleted", "ended"]:
    """An upcoming window is removed; a running one ends ``now`` (kept: it explains the silence so far)."""
    row = conn.execute("DELETE FROM maintenance_windows WHERE id = %s AND starts_at >= %s RETURNING 1",
                       (window_id, now)).fetchone()
    if row is not None:
        return "deleted"
    conn.execute("UPDATE maintenance_windows SET ends_at = %s WHERE id = %s AND ends_at > %s", (now, window_id, now))
    return "ended"


def link_record(conn: psycopg.Connection, *, claims: LinkClaims) -> tuple[bool, dt.datetime | None, bool]:
    """(issued, used_at, revoked) of the link these claims name; read only (a preview must not consume).

    Revoked: the link died with its staff member (deactivated, or gone)."""
    row = conn.execute(
        "SELECT l.used_at, l.revoked_at IS NOT NULL OR NOT coalesce(s.active, false) FROM oncall_links l"
        " LEFT JOIN staff s ON s.staff_id = l.staff_id"
        " WHERE l.nonce = %s AND l.incident_id = %s AND l.action = %s AND l.staff_id = %s",
        (claims.n, claims.i, claims.a, claims.s),
    ).fetchone()
    return (row is not None, row[0] if row else None, bool(row and row[1]))


def incident_brief(conn: psycopg.Connection, *, incident_id: int) -> tuple[str, str, int, str] | None:
    """(community_id, title, tier, status) of an incident."""
    row = conn.execute("SELECT community_id, title, tier, status FROM incidents WHERE id = %s",
                       (incident_id,)).fetchone()
    return (row[0], row[1], int(row[2]), row[3]) if row else None
