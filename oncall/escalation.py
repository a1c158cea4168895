"""The escalation decision: a pure function of (stored state, now) returning actions and reasons.

One pending step is due; ``decide`` says whom to notify, what is due next, or
why the chain stops. The store applies the decision in one transaction.

The chain of a round:

* ``step`` k (repeat r): notify the step's targets; next is step k+1 after this
  step's delay, or step 0 of repeat r+1 once the last step is done while
  repeats remain, then ``reminder`` 0.
* ``reminder`` n: an alert nobody owns keeps reminding the last step's targets
  every ``reminder_every`` (DOMAIN: "keep reminding until somebody owns it").
* acknowledged: the chain stops; ``ack_renotify`` n re-notifies whoever
  acknowledged every ``ack_renotify_after`` while the incident stays unresolved.
* resolved: everything stops.

Next times are counted from the step's due time, not from when it fired, so a
restart after downtime catches up on the original timetable. Repeating
reminders (``reminder``, ``ack_renotify``) do not replay a timetable missed
during downtime: the ones due by then collapse into one, the latest, and the
next stays on the original grid after now (reminders 8, 9 and 10 one second
apart tell nobody anything new).
"""

from __future__ import annotations

import datetime as dt

from oncall.model import (
    Decision,
    Directory,
    IncidentState,
    MaintenanceWindow,
    NextPending,
    Notify,
    PendingStep,
    Policy,
)
from oncall.schedule import resolve_targets, silencing_window
from oncall.why import Reason


def _fmt(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decide(
    pending: PendingStep,
    incident: IncidentState | None,
    policy: Policy | None,
    directory: Directory,
    windows: tuple[MaintenanceWindow, ...],
    now: dt.datetime,
) -> Decision:
    """Decide what one due pending step does at ``now``."""
    if incident is None:
        return Decision("cancelled", f"incident {pending.incident_id} not found")
    if incident.status == "resolved":
        return Decision("cancelled", "incident resolved")
    if policy is None or not policy.steps:
        return Decision("cancelled", f"no escalation policy for community {incident.community_id} tier {incident.tier}")

    if pending.kind == "ack_renotify":
        return _ack_renotify(pending, incident, policy, directory, now)

    if incident.status == "acknowledged":
        who = incident.acknowledged_by or "someone"
        reason = f"acknowledged by {who}; chain stopped"
        nxt: tuple[NextPending, ...] = ()
        if policy.ack_renotify_after > dt.timedelta(0):
            since = incident.acknowledged_at or now
            due = since + policy.ack_renotify_after
            nxt = (NextPending("ack_renotify", 0, 0, due, f"acknowledged but unresolved re-notify at {_fmt(due)}"),)
        return Decision("cancelled", reason, next=nxt)

    window = silencing_window(incident, windows, now)
    if window is not None:
        return Decision(
            "deferred",
            f"silenced by maintenance window #{window.window_id} ({window.scope} {window.scope_id}) "
            f"until {_fmt(window.ends_at)}",
            defer_until=window.ends_at,
        )

    if pending.kind == "reminder":
        last = policy.steps[-1]
        people, notes = resolve_targets(last.targets, directory, now)
        number, due_at, missed = _latest_due(pending, policy.reminder_every, now)
        what = Reason("reminder_collapsed" if missed else "reminder",
                      {"number": number + 1, "tier": incident.tier, "missed": missed})
        label = f"reminder {number + 1}: tier {incident.tier} alert still unacknowledged"
        notify = tuple(Notify(p, f"{label}; {why}", why=(what, why)) for p, why in people)
        if missed:
            notes = [f"{_missed(missed)} missed while the scheduler was down, collapsed into this one", *notes]
        nxt = ()
        if policy.reminder_every > dt.timedelta(0):
            due = due_at + policy.reminder_every
            nxt = (NextPending("reminder", number + 1, 0, due, f"unacknowledged: remind again at {_fmt(due)}"),)
        return Decision("fired", _join(label, notes, people), notify=notify, next=nxt)

    # kind == "step"
    index = min(pending.step, len(policy.steps) - 1)
    step = policy.steps[index]
    people, notes = resolve_targets(step.targets, directory, now)
    what = Reason("step", {"policy": policy.policy_id, "policy_name": policy.name or policy.policy_id,
                           "step": index + 1, "steps": len(policy.steps), "pass": pending.repeat + 1,
                           "passes": policy.repeat + 1})
    label = str(what)
    notify = tuple(Notify(p, f"{label}; {why}", why=(what, why)) for p, why in people)
    # Nobody reachable at this step: go on to the next one now rather than wait for nothing.
    due = pending.due_at + step.delay if notify else now
    if index + 1 < len(policy.steps):
        nxt = (NextPending("step", index + 1, pending.repeat, due, f"no acknowledgement: step {index + 2} at {_fmt(due)}"),)
    elif pending.repeat < policy.repeat:
        nxt = (
            NextPending("step", 0, pending.repeat + 1, due, f"chain exhausted: pass {pending.repeat + 2} at {_fmt(due)}"),
        )
    elif policy.reminder_every > dt.timedelta(0):
        first = pending.due_at + max(step.delay, policy.reminder_every) if notify else now
        if notify and first <= now:
            # This step fired late (downtime): its people were told just now; remind them on the grid after now.
            first += policy.reminder_every * ((now - first) // policy.reminder_every + 1)
        nxt = (NextPending("reminder", 0, 0, first, f"chain and repeats exhausted: remind at {_fmt(first)}"),)
    else:
        nxt = ()
    return Decision("fired", _join(label, notes, people), notify=notify, next=nxt)


def _ack_renotify(
    pending: PendingStep, incident: IncidentState, policy: Policy, directory: Directory, now: dt.datetime
) -> Decision:
    if incident.status != "acknowledged":
        return Decision("cancelled", f"incident is {incident.status}, no longer acknowledged")
    number, due_at, missed = _latest_due(pending, policy.ack_renotify_after, now)
    who = incident.acknowledged_by or "someone"
    what = Reason("ack_renotify", {"who": who, "number": number + 1})
    label = str(what)
    if incident.acknowledged_by:
        mine = Reason("acknowledged_it")
        people: list[tuple[str, Reason]] = [(incident.acknowledged_by, mine)]
        notify: tuple[Notify, ...] = (Notify(incident.acknowledged_by, label, why=(what, mine)),)
        notes: list[str] = []
    else:
        # Acknowledged outside on-call with no actor recorded: remind the first step's people.
        people, notes = resolve_targets(policy.steps[0].targets, directory, now)
        notify = tuple(Notify(p, f"{label}; {why}", why=(what, why)) for p, why in people)
    if missed:
        notes = [f"{_missed(missed)} missed while the scheduler was down, collapsed into this one", *notes]
    due = due_at + policy.ack_renotify_after
    nxt = (NextPending("ack_renotify", number + 1, 0, due, f"still unresolved: re-notify at {_fmt(due)}"),)
    return Decision("fired", _join(label, notes, people), notify=notify, next=nxt)


def _latest_due(pending: PendingStep, every: dt.timedelta, now: dt.datetime) -> tuple[int, dt.datetime, int]:
    """(number, due time) of the latest reminder of ``pending``'s series due by ``now``, and how many earlier
    ones of the series that one stands for (0 on time). Reminders are on a grid from the pending's due time."""
    if every <= dt.timedelta(0) or now < pending.due_at + every:
        return pending.step, pending.due_at, 0
    missed = (now - pending.due_at) // every
    return pending.step + missed, pending.due_at + missed * every, missed


def _missed(n: int) -> str:
    return "1 earlier reminder" if n == 1 else f"{n} earlier reminders"


def _join(label: str, notes: list[str], people: list[tuple[str, Reason]]) -> str:
    parts = [label, "notify " + (", ".join(f"{p} ({why})" for p, why in people) or "nobody")]
    parts += notes
    return "; ".join(parts)
