"""Acknowledge and resolve from on-call (API or signed link), and what that does to the chain.

The incident's status is changed by the closed loop's ``alerts.lifecycle``
(which appends the timeline and raises ``alerts.errors.IllegalTransition`` for
an alert already acknowledged or resolved). The chain stops on the stored
status anyway; these functions also cancel the pending steps at once and start
the acknowledged-but-unresolved re-notify timer, so the effect does not wait
for the next step to come due. Another acknowledge path (the control room)
should call ``note_acknowledged`` / ``note_resolved`` in its transaction for
the same immediacy; without it the next due step notices the status.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from alerts import lifecycle
from oncall.links import LinkRefused, verify_and_consume_link
from oncall.store import load_policy


def acknowledge(conn: psycopg.Connection, *, incident_id: int, staff_id: str, at: dt.datetime, via: str = "api") -> None:
    """``staff_id`` owns the incident: stop its chain, re-notify them while it stays unresolved."""
    lifecycle.acknowledge(conn, incident_id=incident_id, actor=staff_id, at=at)
    note_acknowledged(conn, incident_id=incident_id, staff_id=staff_id, at=at, via=via)


def note_acknowledged(conn: psycopg.Connection, *, incident_id: int, staff_id: str, at: dt.datetime, via: str) -> None:
    """On-call's bookkeeping of an acknowledgement (call it from any other acknowledge path too)."""
    row = conn.execute(
        "UPDATE oncall_escalations SET acknowledged_by = %s, acknowledged_at = %s WHERE incident_id = %s"
        " RETURNING round, policy_id",
        (staff_id, at, incident_id),
    ).fetchone()
    if row is None:
        return
    round_, policy_id = row
    conn.execute(
        "UPDATE oncall_pending SET status = 'cancelled', reason = %s, fired_at = %s"
        " WHERE incident_id = %s AND status = 'pending' AND kind IN ('step', 'reminder')",
        (f"acknowledged by {staff_id} via {via}; chain stopped", at, incident_id),
    )
    policy = load_policy(conn, policy_id)
    if policy is not None and policy.ack_renotify_after > dt.timedelta(0):
        due = at + policy.ack_renotify_after
        conn.execute(
            "INSERT INTO oncall_pending (incident_id, round, kind, step, repeat, due_at, reason, created_at)"
            " VALUES (%s, %s, 'ack_renotify', 0, 0, %s, %s, %s) ON CONFLICT DO NOTHING",
            (incident_id, round_, due, f"acknowledged by {staff_id}: re-notify if unresolved at {due.isoformat()}", at),
        )


def resolve(
    conn: psycopg.Connection, *, incident_id: int, staff_id: str, at: dt.datetime, note: str | None = None,
    resolution: str | None = None, reason: str | None = None, via: str = "api",
) -> None:
    """The incident is resolved: every pending step of it is cancelled. A Level 1 incident needs
    ``resolution`` and ``reason`` (``alerts.lifecycle`` refuses it otherwise, field named)."""
    lifecycle.resolve(conn, incident_id=incident_id, actor=staff_id, at=at, note=note, resolution=resolution,
                      reason=reason)
    note_resolved(conn, incident_id=incident_id, staff_id=staff_id, at=at, via=via)


def note_resolved(conn: psycopg.Connection, *, incident_id: int, staff_id: str, at: dt.datetime, via: str) -> None:
    conn.execute(
        "UPDATE oncall_pending SET status = 'cancelled', reason = %s, fired_at = %s"
        " WHERE incident_id = %s AND status = 'pending'",
        (f"resolved by {staff_id} via {via}", at, incident_id),
    )


def apply_link(
    conn: psycopg.Connection, token: str, now: dt.datetime, *, secret: str,
    resolution: str | None = None, reason: str | None = None,
) -> tuple[int, str, str]:
    """Consume a signed link and take its action in the caller's transaction.

    A resolve link carries what the person found (``resolution``, ``reason``):
    required for Level 1 as on every other path. Returns (incident_id, action,
    staff_id); raises ``LinkRefused`` (reason: malformed, forged, expired,
    unknown, replayed), the lifecycle's ``IllegalTransition`` (already
    acknowledged/resolved) or ``InvalidInput`` (a Level 1 without a reason):
    roll back then, so the link stays usable; commit on success.
    """
    incident_id, action, staff_id = verify_and_consume_link(conn, token, now, secret=secret)
    if action == "ack":
        acknowledge(conn, incident_id=incident_id, staff_id=staff_id, at=now, via="link")
    else:
        resolve(conn, incident_id=incident_id, staff_id=staff_id, at=now, resolution=resolution, reason=reason,
                via="link")
    return incident_id, action, staff_id


__all__ = ["LinkRefused", "acknowledge", "apply_link", "note_acknowledged", "note_resolved", "resolve"]
