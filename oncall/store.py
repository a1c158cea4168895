"""Database edge of on-call: load the state a decision needs, apply a decision, start a round.

Every function runs in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import psycopg
from psycopg.rows import dict_row

from oncall.links import issue_link
from oncall.model import (
    Decision,
    Directory,
    IncidentState,
    MaintenanceWindow,
    Override,
    PendingStep,
    Policy,
    Rotation,
    Schedule,
    Step,
    Target,
)

log = logging.getLogger(__name__)

PENDING_CHANNEL = "oncall_pending"  # NOTIFY channel: a step became due now
OUTBOX_CHANNEL = "oncall_outbox"  # NOTIFY channel: something to send


def load_incident(conn: psycopg.Connection, incident_id: int) -> tuple[IncidentState, dict[str, Any]] | None:
    """The incident's state and its whole row as JSON (read with to_jsonb so extra columns never break us)."""
    row = conn.execute(
        "SELECT to_jsonb(i), e.acknowledged_by, e.acknowledged_at,"
        " ARRAY(SELECT DISTINCT d.device_type FROM devices d WHERE d.device_id = ANY(i.device_ids))"
        " FROM incidents i LEFT JOIN oncall_escalations e ON e.incident_id = i.id WHERE i.id = %s",
        (incident_id,),
    ).fetchone()
    if row is None:
        return None
    data, our_ack_by, our_ack_at, device_types = row
    ack_at = data.get("acknowledged_at")
    state = IncidentState(
        incident_id=int(data["id"]),
        community_id=data["community_id"],
        tier=int(data["tier"]),
        status=data["status"],
        title=data.get("title") or "",
        condition=data.get("condition") or "",
        building_id=data.get("building_id"),
        device_ids=tuple(data.get("device_ids") or ()),
        device_types=tuple(device_types or ()),
        acknowledged_by=data.get("acknowledged_by") or our_ack_by,
        acknowledged_at=dt.datetime.fromisoformat(ack_at) if ack_at else our_ack_at,
    )
    return state, data


def place_names(conn: psycopg.Connection, community_id: str | None, building_id: str | None) -> dict[str, str]:
    """``community_name`` / ``building_name`` for the message, where the places table names them."""
    ids = [i for i in (community_id, building_id) if i]
    found = dict(conn.execute("SELECT place_id, name FROM places WHERE place_id = ANY(%s)", (ids,)).fetchall()) \
        if ids else {}
    out = {}
    if community_id in found:
        out["community_name"] = found[community_id]
    if building_id in found:
        out["building_name"] = found[building_id]
    return out


# Reminders repeat what an earlier message said: a newer one supersedes one not yet delivered.
REPEATING = ("reminder", "ack_renotify")


def device_names(conn: psycopg.Connection, community_id: str | None, device_ids: list[str]) -> dict[str, Any]:
    """``device_names`` and the first device's ``unit_name`` for the message: a resident's alert is a home."""
    if not community_id or not device_ids:
        return {}
    rows = conn.execute(
        "SELECT d.device_id, d.name, p.name FROM devices d LEFT JOIN places p ON p.place_id = d.unit_id"
        " AND p.community_id = d.community_id WHERE d.community_id = %s AND d.device_id = ANY(%s)",
        (community_id, list(device_ids)),
    ).fetchall()
    found = {r[0]: (r[1], r[2]) for r in rows}
    out: dict[str, Any] = {"device_names": [found.get(d, (None, None))[0] or d for d in device_ids]}
    unit = next((found[d][1] for d in device_ids if d in found and found[d][1]), None)
    if unit:
        out["unit_name"] = unit
    return out


def choose_policy(conn: psycopg.Connection, community_id: str, tier: int) -> str | None:
    """The policy for (community, tier): exact match first, then any-tier, then community '*'."""
    row = conn.execute(
        "SELECT policy_id FROM oncall_policies WHERE community_id IN (%s, '*') AND (tier = %s OR tier IS NULL)"
        " ORDER BY (community_id = %s) DESC, (tier IS NULL) ASC LIMIT 1",
        (community_id, tier, community_id),
    ).fetchone()
    return row[0] if row else None


def load_policy(conn: psycopg.Connection, policy_id: str | None) -> Policy | None:
    if policy_id is None:
        return None
    row = conn.execute(
        "SELECT policy_id, community_id, tier, name, repeat, ack_renotify_after, reminder_every"
        " FROM oncall_policies WHERE policy_id = %s",
        (policy_id,),
    ).fetchone()
    if row is None:
        return None
    steps = tuple(
        Step(targets=tuple(Target(kind=t["kind"], id=t["id"]) for t in targets), delay=delay)
        for targets, delay in conn.execute(
            "SELECT targets, delay FROM oncall_policy_steps WHERE policy_id = %s ORDER BY position", (policy_id,)
        )
    )
    return Policy(
        policy_id=row[0], community_id=row[1], tier=row[2], name=row[3], repeat=row[4],
        ack_renotify_after=row[5], reminder_every=row[6], steps=steps,
    )  # fmt: skip


def load_directory(conn: psycopg.Connection, community_id: str) -> Directory:
    schedules: dict[str, Schedule] = {}
    for (schedule_id, name) in conn.execute(
        "SELECT schedule_id, name FROM oncall_schedules WHERE community_id = %s", (community_id,)
    ).fetchall():
        rotations = tuple(
            Rotation(layer=r[0], handoff_at=r[1], shift=r[2], participants=tuple(r[3]), active_from=r[4], active_until=r[5])
            for r in conn.execute(
                "SELECT layer, handoff_at, shift, participants, active_from, active_until"
                " FROM oncall_rotations WHERE schedule_id = %s",
                (schedule_id,),
            )
        )
        overrides = tuple(
            Override(override_id=r[0], staff_id=r[1], starts_at=r[2], ends_at=r[3])
            for r in conn.execute(
                "SELECT override_id, staff_id, starts_at, ends_at FROM oncall_overrides WHERE schedule_id = %s",
                (schedule_id,),
            )
        )
        schedules[schedule_id] = Schedule(schedule_id=schedule_id, rotations=rotations, overrides=overrides, name=name)
    teams: dict[str, list[str]] = {}
    team_names: dict[str, str] = {}
    for team_id, team_name, staff_id in conn.execute(
        "SELECT t.team_id, t.name, s.staff_id FROM teams t JOIN staff s ON s.team_id = t.team_id"
        " WHERE t.community_id = %s AND t.active AND s.active ORDER BY s.staff_id",
        (community_id,),
    ):
        teams.setdefault(team_id, []).append(staff_id)
        team_names[team_id] = team_name
    return Directory(schedules=schedules, teams={k: tuple(v) for k, v in teams.items()}, team_names=team_names)


def load_windows(conn: psycopg.Connection, community_id: str, now: dt.datetime) -> tuple[MaintenanceWindow, ...]:
    """Live rows of the detectors' ``maintenance_windows`` (0011) for a community."""
    return tuple(
        MaintenanceWindow(window_id=r[0], community_id=r[1], scope=r[2], scope_id=r[3], starts_at=r[4], ends_at=r[5],
                          reason=r[6], device_type=r[7])
        for r in conn.execute(
            "SELECT id, community_id, scope, scope_id, starts_at, ends_at, reason, device_type FROM maintenance_windows"
            " WHERE community_id = %s AND starts_at <= %s AND ends_at > %s",
            (community_id, now, now),
        )
    )  # fmt: skip


def start_round(
    conn: psycopg.Connection, *, incident_id: int, community_id: str, tier: int, due_at: dt.datetime, why: str
) -> int:
    """Begin a new escalation round for an incident: supersede older pending steps, make step 0 due.

    ``due_at`` is capped at the database's current time so that a device clock
    running a little ahead never delays a page.
    """
    policy_id = choose_policy(conn, community_id, tier)
    note = why if policy_id else f"{why}; no escalation policy for community {community_id} tier {tier}"
    (round_,) = conn.execute(
        "INSERT INTO oncall_escalations (incident_id, round, policy_id, tier, started_at, note)"
        " VALUES (%s, 1, %s, %s, LEAST(%s, clock_timestamp()), %s)"
        " ON CONFLICT (incident_id) DO UPDATE SET round = oncall_escalations.round + 1,"
        " policy_id = EXCLUDED.policy_id, tier = EXCLUDED.tier, started_at = EXCLUDED.started_at,"
        " note = EXCLUDED.note, acknowledged_by = NULL, acknowledged_at = NULL"
        " RETURNING round",
        (incident_id, policy_id, tier, due_at, note),
    ).fetchone()
    conn.execute(
        "UPDATE oncall_pending SET status = 'cancelled', reason = %s WHERE incident_id = %s AND round < %s"
        " AND status = 'pending'",
        (f"superseded by round {round_}: {why}", incident_id, round_),
    )
    if policy_id is None:
        log.warning("incident %s: %s", incident_id, note)
        return round_
    conn.execute(
        "INSERT INTO oncall_pending (incident_id, round, kind, step, repeat, due_at, reason, created_at)"
        " VALUES (%s, %s, 'step', 0, 0, LEAST(%s, clock_timestamp()), %s, LEAST(%s, clock_timestamp()))"
        " ON CONFLICT DO NOTHING",
        (incident_id, round_, due_at, why, due_at),
    )
    conn.execute("SELECT pg_notify(%s, %s)", (PENDING_CHANNEL, str(incident_id)))
    return round_


def claim_due(conn: psycopg.Connection, now: dt.datetime, limit: int) -> list[PendingStep]:
    """Lock due pending steps for this transaction; other schedulers skip them."""
    return [
        PendingStep(pending_id=r[0], incident_id=r[1], round=r[2], kind=r[3], step=r[4], repeat=r[5], due_at=r[6])
        for r in conn.execute(
            "SELECT pending_id, incident_id, round, kind, step, repeat, due_at FROM oncall_pending"
            " WHERE status = 'pending' AND due_at <= %s ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
    ]


def round_policy(conn: psycopg.Connection, incident_id: int, round_: int) -> str | None | bool:
    """The policy id of the incident's current round, or False when ``round_`` is not current."""
    row = conn.execute("SELECT round, policy_id FROM oncall_escalations WHERE incident_id = %s", (incident_id,)).fetchone()
    if row is None or row[0] != round_:
        return False
    return row[1]


def contacts_of(conn: psycopg.Connection, staff_id: str) -> list[dict[str, Any]]:
    """Enabled channels of a person with the address resolved (empty falls back to staff.email/phone)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT c.channel, c.locale, CASE WHEN c.address <> '' THEN c.address"
            "  WHEN c.channel = 'email' THEN coalesce(s.email, '')"
            "  WHEN c.channel = 'webhook' THEN coalesce(s.phone, '') ELSE '' END AS address"
            " FROM oncall_contacts c LEFT JOIN staff s ON s.staff_id = c.staff_id"
            " WHERE c.staff_id = %s AND c.enabled AND (s.active IS NULL OR s.active) ORDER BY c.channel",
            (staff_id,),
        ).fetchall()


def apply_decision(
    conn: psycopg.Connection,
    pending: PendingStep,
    decision: Decision,
    incident_row: dict[str, Any] | None,
    *,
    now: dt.datetime,
    enabled_channels: tuple[str, ...],
    link_ttl: dt.timedelta,
) -> int:
    """Store one decision: the pending row's outcome and reason, the next steps, the outbox rows.

    Returns how many outbox rows were queued.
    """
    notes: list[str] = []
    queued = 0
    if incident_row is not None:
        for notify in decision.notify:
            queued_for_person = 0
            contacts = contacts_of(conn, notify.staff_id)
            ack_nonce = resolve_nonce = None
            expires_at = now + link_ttl
            for contact in contacts:
                channel = contact["channel"]
                if channel not in enabled_channels:
                    notes.append(f"{notify.staff_id}: {channel} not configured")
                    continue
                if channel in ("email", "webhook") and not contact["address"]:
                    notes.append(f"{notify.staff_id}: no {channel} address")
                    continue
                if ack_nonce is None:
                    ack_nonce, expires_at = issue_link(
                        conn, incident_id=pending.incident_id, action="ack", staff_id=notify.staff_id, now=now, ttl=link_ttl
                    )
                    resolve_nonce, _ = issue_link(
                        conn, incident_id=pending.incident_id, action="resolve", staff_id=notify.staff_id, now=now, ttl=link_ttl
                    )
                message = {
                    "kind": pending.kind,
                    "incident_id": pending.incident_id,
                    "tier": incident_row.get("tier"),
                    "title": incident_row.get("title"),
                    "condition": incident_row.get("condition"),
                    "community_id": incident_row.get("community_id"),
                    "building_id": incident_row.get("building_id"),
                    **place_names(conn, incident_row.get("community_id"), incident_row.get("building_id")),
                    **device_names(conn, incident_row.get("community_id"), incident_row.get("device_ids") or []),
                    "device_ids": incident_row.get("device_ids") or [],
                    "opened_at": incident_row.get("opened_at"),
                    "reason": notify.reason,
                    "why": [w.to_json() for w in notify.why],
                    "staff_id": notify.staff_id,
                    "ack_nonce": ack_nonce,
                    "resolve_nonce": resolve_nonce,
                    "links_expire_at": expires_at.isoformat(),
                    "due_at": pending.due_at.isoformat(),
                }
                conn.execute(
                    "INSERT INTO oncall_outbox (pending_id, incident_id, staff_id, channel, address, locale, message,"
                    " reason, next_attempt_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (
                        pending.pending_id, pending.incident_id, notify.staff_id, channel, contact["address"],
                        contact["locale"], json.dumps(message), notify.reason, now, now,
                    ),
                )  # fmt: skip
                if pending.kind in REPEATING:
                    # An earlier reminder still waiting for its channel says nothing this one does not: one goes out.
                    conn.execute(
                        "UPDATE oncall_outbox SET status = 'superseded' WHERE incident_id = %s AND staff_id = %s"
                        " AND channel = %s AND status = 'pending' AND pending_id <> %s"
                        " AND message->>'kind' = ANY(%s)",
                        (pending.incident_id, notify.staff_id, channel, pending.pending_id, list(REPEATING)),
                    )
                queued_for_person += 1
            if not contacts:
                notes.append(f"{notify.staff_id}: no contact channel")
            queued += queued_for_person
    reason = decision.reason + ("; " + "; ".join(notes) if notes else "")
    if decision.outcome == "deferred":
        assert decision.defer_until is not None
        conn.execute(
            "UPDATE oncall_pending SET due_at = %s, reason = %s WHERE pending_id = %s",
            (decision.defer_until, reason, pending.pending_id),
        )
    else:
        conn.execute(
            "UPDATE oncall_pending SET status = %s, reason = %s, fired_at = %s WHERE pending_id = %s",
            (decision.outcome, reason, now, pending.pending_id),
        )
    for nxt in decision.next:
        conn.execute(
            "INSERT INTO oncall_pending (incident_id, round, kind, step, repeat, due_at, reason, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (pending.incident_id, pending.round, nxt.kind, nxt.step, nxt.repeat, nxt.due_at, nxt.reason, now),
        )
    if queued:
        conn.execute("SELECT pg_notify(%s, %s)", (OUTBOX_CHANNEL, str(pending.incident_id)))
    return queued
