"""The detector runtime's hook: schedule escalation inside the transaction that stores incident changes.

No network I/O here: the hook only inserts pending steps (and a NOTIFY that
PostgreSQL delivers on commit to wake the scheduler). If the detector's
transaction rolls back, so does the escalation. Each change runs in its own
savepoint: an on-call failure is logged and never blocks the detectors'
commit; the scheduler's sweep (``EscalationScheduler.sweep``) then finds the
open incident without an escalation and starts it.
"""

from __future__ import annotations

import logging

import psycopg

from domain.incidents import StoredChange
from oncall.store import start_round

log = logging.getLogger(__name__)


def on_incident_changes(conn: psycopg.Connection, stored: list[StoredChange]) -> None:
    """Start or restart escalation for incident changes that need somebody.

    * opened (first time): round 1 of the policy for (community, tier);
    * reopened: a new round (the older round's pending steps are cancelled);
    * escalated/updated to a more severe tier: a new round under that tier's policy;
    * cleared and other updates: nothing; the chain stops on the stored status.

    Proactive work orders (``work_order``) go to a team through dispatch, not to on-call.
    A change the detectors marked ``pages=False`` (a past incident recorded from late
    data) notifies nobody; if the condition still holds once the data is current, the
    detectors send an update that pages.
    """
    for sc in stored:
        try:
            with conn.transaction():
                _one(conn, sc)
        except Exception:
            log.exception("on-call: could not schedule escalation for incident %s", sc.incident_id)


def _one(conn: psycopg.Connection, sc: StoredChange) -> None:
    change = sc.change
    if change.work_order or not change.pages:
        return
    current = conn.execute("SELECT tier FROM oncall_escalations WHERE incident_id = %s", (sc.incident_id,)).fetchone()
    tier = int(change.tier)
    why: str | None = None
    if sc.reopened:
        why = f"incident reopened ({change.condition}, tier {tier})"
    elif current is None and change.kind != "cleared":
        # Opened, or a change for an incident on-call never saw open (hooks installed later): own it now.
        why = f"incident {change.kind} ({change.condition}, tier {tier})"
    elif current is not None and change.kind in ("escalated", "updated") and tier < current[0]:
        why = f"tier raised from {current[0]} to {tier} ({change.condition})"
    if why is None:
        return
    start_round(conn, incident_id=sc.incident_id, community_id=change.community_id, tier=tier, due_at=change.ts, why=why)
