"""The work-order state machine: states and transitions as data, one pure function.

    created ─dispatch─▶ dispatched ─accept─▶ accepted ─arrive─▶ on_site ─complete─▶ completed
                          ▲   │ reassign        │ reassign                             │ verify / reject
                          └───┴─────────────────┘                 accepted ◀─reject────┤
                                                                                       ▼
                               closed ◀─close─ return_visit_done ◀─return_visit─ verified

    cancel: from created, dispatched, accepted or on_site → cancelled

Every (state, action) pair missing from ``TRANSITIONS`` is refused with
:class:`~workorders.errors.IllegalTransition`. No clock and no I/O here: the
time of each action is an argument, and `workorders.store` persists the result.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from types import MappingProxyType

import msgspec

from workorders.errors import IllegalTransition, InvalidInput


class OrderState(enum.StrEnum):
    CREATED = "created"  # 接单: raised by a detector, a resident's call or staff
    DISPATCHED = "dispatched"  # 派单: given to a team and a person
    ACCEPTED = "accepted"  # the person took it (the SLA "acknowledge" milestone)
    ON_SITE = "on_site"  # the person arrived (the SLA "respond" milestone)
    COMPLETED = "completed"  # the person reports it done
    VERIFIED = "verified"  # 验收: checked as done (by staff, or by the detector's clear)
    RETURN_VISIT_DONE = "return_visit_done"  # 回访: the resident was called back and rated 1-5
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Action(enum.StrEnum):
    DISPATCH = "dispatch"
    REASSIGN = "reassign"
    ACCEPT = "accept"
    ARRIVE = "arrive"
    COMPLETE = "complete"
    REJECT = "reject"  # verification failed: back to the same person for rework
    VERIFY = "verify"
    RETURN_VISIT = "return_visit"
    CLOSE = "close"
    CANCEL = "cancel"


S, A = OrderState, Action
TRANSITIONS: Mapping[tuple[OrderState, Action], OrderState] = MappingProxyType(
    {
        (S.CREATED, A.DISPATCH): S.DISPATCHED,
        (S.DISPATCHED, A.REASSIGN): S.DISPATCHED,
        (S.ACCEPTED, A.REASSIGN): S.DISPATCHED,
        (S.DISPATCHED, A.ACCEPT): S.ACCEPTED,
        (S.ACCEPTED, A.ARRIVE): S.ON_SITE,
        (S.ON_SITE, A.COMPLETE): S.COMPLETED,
        (S.COMPLETED, A.VERIFY): S.VERIFIED,
        (S.COMPLETED, A.REJECT): S.ACCEPTED,
        (S.VERIFIED, A.RETURN_VISIT): S.RETURN_VISIT_DONE,
        (S.RETURN_VISIT_DONE, A.CLOSE): S.CLOSED,
        (S.CREATED, A.CANCEL): S.CANCELLED,
        (S.DISPATCHED, A.CANCEL): S.CANCELLED,
        (S.ACCEPTED, A.CANCEL): S.CANCELLED,
        (S.ON_SITE, A.CANCEL): S.CANCELLED,
    }
)
del S, A

TERMINAL_STATES: frozenset[OrderState] = frozenset({OrderState.CLOSED, OrderState.CANCELLED})
# States in which an order occupies its assignee (dispatch balances on these).
LOAD_STATES: frozenset[OrderState] = frozenset({OrderState.DISPATCHED, OrderState.ACCEPTED, OrderState.ON_SITE})


def allowed_actions(state: OrderState) -> list[Action]:
    return [action for (s, action) in TRANSITIONS if s is state]


class OrderSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What the machine needs of an order. Milestone times keep their first value
    (``accepted_at``, ``on_site_at``) so that a reassignment or rework does not
    hide a late first response; ``completed_at`` is the last completion."""

    state: OrderState
    updated_at: dt.datetime
    assignee: str | None = None
    team_id: str | None = None
    dispatched_at: dt.datetime | None = None
    accepted_at: dt.datetime | None = None
    on_site_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    verified_at: dt.datetime | None = None
    return_visit_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    rework_count: int = 0
    rating: int | None = None


def transition(
    order: OrderSnapshot,
    action: Action | str,
    at: dt.datetime,
    actor: str,
    *,
    assignee: str | None = None,
    team_id: str | None = None,
    rating: int | None = None,
    reason: str | None = None,
) -> OrderSnapshot:
    """Apply ``action`` at time ``at`` by ``actor``; return the new snapshot.

    Raises IllegalTransition when the action is not allowed from the current
    state, InvalidInput when an argument is missing or wrong (naming it).
    """
    try:
        action = Action(action)
    except ValueError:
        raise InvalidInput("action", f"unknown action {action!r}; known: {', '.join(a.value for a in Action)}") from None
    if at.tzinfo is None:
        raise InvalidInput("at", "must carry a time zone")
    if not actor or not actor.strip():
        raise InvalidInput("actor", "must name who acts")
    target = TRANSITIONS.get((order.state, action))
    if target is None:
        allowed = ", ".join(a.value for a in allowed_actions(order.state)) or "none (the order is finished)"
        raise IllegalTransition(
            f"cannot {action.value} a work order that is {order.state.value}; allowed now: {allowed}",
            state=order.state.value,
            action=action.value,
        )
    if at < order.updated_at:
        raise InvalidInput("at", f"{at.isoformat()} is before the order's last change {order.updated_at.isoformat()}")

    changes: dict[str, object] = {"state": target, "updated_at": at}
    if action in (Action.DISPATCH, Action.REASSIGN):
        if not assignee:
            raise InvalidInput("assignee", f"{action.value} needs the staff member to give the order to")
        if action is Action.REASSIGN and assignee == order.assignee:
            raise InvalidInput("assignee", f"the order is already with {assignee}")
        changes.update(assignee=assignee, dispatched_at=at)
        if team_id is not None:
            changes["team_id"] = team_id
    elif action is Action.ACCEPT:
        changes["accepted_at"] = order.accepted_at or at
    elif action is Action.ARRIVE:
        changes["on_site_at"] = order.on_site_at or at
    elif action is Action.COMPLETE:
        changes["completed_at"] = at
    elif action is Action.REJECT:
        if not reason:
            raise InvalidInput("reason", "say why the work is not accepted as done")
        changes.update(completed_at=None, rework_count=order.rework_count + 1)
    elif action is Action.VERIFY:
        changes["verified_at"] = at
    elif action is Action.RETURN_VISIT:
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise InvalidInput("rating", f"must be a whole number from 1 to 5, got {rating!r}")
        changes.update(rating=rating, return_visit_at=at)
    elif action is Action.CLOSE:
        changes["closed_at"] = at
    elif action is Action.CANCEL:
        if not reason:
            raise InvalidInput("reason", "say why the order is cancelled")
        changes["cancelled_at"] = at
    return msgspec.structs.replace(order, **changes)
