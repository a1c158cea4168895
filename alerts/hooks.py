"""The detector runtime's hook: turn stored incident changes into the closed loop.

Register ``on_incident_changes`` with the detector runtime; it is called
inside the runtime's transaction, after ``detectors.store.record_changes``:

- opened (Level 3, or ``work_order=True``): a work order, auto-dispatched;
- opened (Level 1/2 alert): a follow-up work order, auto-dispatched (paging
  the on-call people is the on-call part's job);
- opened again (reopened within the detector's window): the acknowledgement
  (and a false-alarm mark) is cleared, as the alert needs an owner again; an open order of the incident
  carries on, marked "condition returned"; otherwise a new order, which the
  repeat-failure rule links to the previous one;
- updated/escalated to a higher tier: open orders take the tier and deadlines;
- cleared: open orders are marked, and completed ones are verified (验收).

Each change is handled in its own savepoint: a failure is logged and the
detector's own writes (and the other changes) still commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from domain.incidents import StoredChange, Tier
from workorders import store as orders

log = logging.getLogger(__name__)

# Routine conditions whose fix is quick: Level 3 "simple" work, due in 2 h by default.
SIMPLE_CONDITIONS: frozenset[str] = frozenset({"battery_low"})


def on_incident_changes(conn: psycopg.Connection, stored: Sequence[StoredChange]) -> None:
    for item in stored:
        try:
            with conn.transaction():
                _handle(conn, item)
        except Exception:
            log.exception("closed loop: could not handle %s of incident %s", item.change.kind, item.incident_id)


def _handle(conn: psycopg.Connection, item: StoredChange) -> None:
    change = item.change
    if change.kind == "opened":
        if item.reopened:
            conn.execute(
                "UPDATE incidents SET acknowledged_at = NULL, acknowledged_by = NULL, false_alarm = false,"
                " resolution = NULL, resolution_reason = NULL, duplicate_of = NULL"
                " WHERE id = %s AND status = 'open'", (item.incident_id,))
            if orders.condition_returned(conn, incident_id=item.incident_id, at=change.ts):
                return
        _create_order(conn, item)
    elif change.kind in ("updated", "escalated"):
        orders.raise_tier(conn, incident_id=item.incident_id, tier=int(change.tier), at=change.ts, actor="detector")
    elif change.kind == "cleared":
        orders.condition_cleared(conn, incident_id=item.incident_id, at=change.ts)


def _create_order(conn: psycopg.Connection, item: StoredChange) -> None:
    change = item.change
    row = conn.execute("SELECT building_id FROM incidents WHERE id = %s", (item.incident_id,)).fetchone()
    building_id = row[0] if row else None
    device_id = None
    if change.scope == "device":
        device_id = change.scope_id
    elif len(change.device_ids) == 1:
        device_id = change.device_ids[0]
    if device_id is not None:
        known = conn.execute("SELECT 1 FROM devices WHERE device_id = %s AND community_id = %s",
                             (device_id, change.community_id)).fetchone()
        if known is None:  # an unregistered id must not stop the order; keep it in the description
            device_id = None
    direct = change.tier is Tier.ROUTINE or change.work_order
    order = orders.create_order(
        conn,
        community_id=change.community_id,
        title=change.title,
        source="detection" if direct else "alert_follow_up",
        at=change.ts,
        actor="detector",
        tier=int(change.tier),
        simple=change.tier is Tier.ROUTINE and change.condition in SIMPLE_CONDITIONS,
        building_id=building_id,
        device_id=device_id,
        condition=change.condition,
        incident_id=item.incident_id,
        description=f"{change.condition} on {change.scope} {change.scope_id}"
                    + (f" (devices: {', '.join(change.device_ids)})" if change.device_ids else ""),
    )
    detail = {"work_order_id": order.id, "assignee": order.assignee, "team_kind": order.team_kind}
    if order.repeat_of is not None:
        detail["repeat_of"] = order.repeat_of
    conn.execute(
        "INSERT INTO incident_timeline (incident_id, at, kind, actor, tier, severity, detail)"
        " VALUES (%s, %s, 'work_order_created', 'system', %s, %s, %s)",
        (item.incident_id, change.ts, int(change.tier), change.severity, Jsonb(detail)),
    )
