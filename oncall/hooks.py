"""The detector runtime's hook: schedule escalation inside the transaction that stores incident changes.

No network I/O here: the hook only inserts pending steps (and a NOTIFY that
PostgreSQL delivers on commit to wake the scheduler). If the detector's
transaction rolls back, so does the escalation.
"""

from __future__ import annotations

import psycopg

from domain.incidents import StoredChange
from oncall.store import start_round


def on_incident_changes(conn: psycopg.Connection, stored: list[StoredChange]) -> None:
    """Start or restart escalation for incident changes that need somebody.

    * opened (first time): round 1 of the policy for (community, tier);
    * reopened: a new round (the older round's pending steps are cancelled);
    * escalated/updated to a more severe tier: a new round under that tier's policy;
    * cleared and other updates: nothing; the chain stops on the stored status.

    Proactive work orders (``work_order``) go to a team through dispatch, not to on-call.
    """
    for sc in stored:
        change = sc.change
        if change.work_order:
            continue
        current = conn.execute(
            "SELECT tier FROM oncall_escalations WHERE incident_id = %s", (sc.incident_id,)
        ).fetchone()
        why: str | None = None
        if sc.reopened:
            why = f"incident reopened ({change.condition}, tier {int(change.tier)})"
        elif change.kind == "opened" and current is None:
            why = f"incident opened ({change.condition}, tier {int(change.tier)})"
        elif change.kind in ("escalated", "updated") and current is not None and int(change.tier) < current[0]:
            why = f"tier raised from {current[0]} to {int(change.tier)} ({change.condition})"
        elif change.kind in ("escalated", "updated", "opened") and current is None:
            # A change for an incident we never saw open (e.g. hooks installed later): own it now.
            why = f"incident {change.kind} without an escalation yet ({change.condition}, tier {int(change.tier)})"
        if why is None:
            continue
        start_round(
            conn,
            incident_id=sc.incident_id,
            community_id=change.community_id,
            tier=int(change.tier),
            due_at=change.ts,
            why=why,
        )
