"""The work-order state machine as a table: every legal move, and every illegal one refused."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from workorders.errors import IllegalTransition, InvalidInput
from workorders.machine import TRANSITIONS, Action, OrderSnapshot, OrderState, transition

S, A = OrderState, Action
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.timezone.utc)

# The whole machine, written out by hand (not derived from TRANSITIONS).
LEGAL = [
    (S.CREATED, A.DISPATCH, S.DISPATCHED),
    (S.CREATED, A.CANCEL, S.CANCELLED),
    (S.DISPATCHED, A.ACCEPT, S.ACCEPTED),
    (S.DISPATCHED, A.REASSIGN, S.DISPATCHED),
    (S.DISPATCHED, A.CANCEL, S.CANCELLED),
    (S.ACCEPTED, A.ARRIVE, S.ON_SITE),
    (S.ACCEPTED, A.REASSIGN, S.DISPATCHED),
    (S.ACCEPTED, A.CANCEL, S.CANCELLED),
    (S.ON_SITE, A.COMPLETE, S.COMPLETED),
    (S.ON_SITE, A.CANCEL, S.CANCELLED),
    (S.COMPLETED, A.VERIFY, S.VERIFIED),
    (S.COMPLETED, A.REJECT, S.ACCEPTED),
    (S.VERIFIED, A.RETURN_VISIT, S.RETURN_VISIT_DONE),
    (S.RETURN_VISIT_DONE, A.CLOSE, S.CLOSED),
]
LEGAL_PAIRS = {(s, a) for s, a, _ in LEGAL}
ILLEGAL = [(s, a) for s, a in itertools.product(OrderState, Action) if (s, a) not in LEGAL_PAIRS]

ARGS = {A.DISPATCH: {"assignee": "wang"}, A.REASSIGN: {"assignee": "li"}, A.RETURN_VISIT: {"rating": 5},
        A.CANCEL: {"reason": "duplicate"}, A.REJECT: {"reason": "still leaking"}}


def snapshot(state: OrderState) -> OrderSnapshot:
    return OrderSnapshot(state=state, updated_at=T0, assignee="wang")


def test_table_matches_the_machine() -> None:
    assert dict(TRANSITIONS) == {(s, a): t for s, a, t in LEGAL}
    assert len(ILLEGAL) == len(OrderState) * len(Action) - len(LEGAL) == 76


@pytest.mark.parametrize(("state", "action", "target"), LEGAL, ids=[f"{s}-{a}" for s, a, _ in LEGAL])
def test_legal_transition(state: OrderState, action: Action, target: OrderState) -> None:
    at = T0 + dt.timedelta(minutes=3)
    after = transition(snapshot(state), action, at, "operator", **ARGS.get(action, {}))
    assert after.state is target
    assert after.updated_at == at


@pytest.mark.parametrize(("state", "action"), ILLEGAL, ids=[f"{s}-{a}" for s, a in ILLEGAL])
def test_illegal_transition_is_refused_with_a_clear_error(state: OrderState, action: Action) -> None:
    with pytest.raises(IllegalTransition) as error:
        transition(snapshot(state), action, T0 + dt.timedelta(minutes=3), "operator", **ARGS.get(action, {}))
    assert f"cannot {action.value} a work order that is {state.value}" in str(error.value)
    assert error.value.state == state.value and error.value.action == action.value


def test_milestones_keep_their_first_time_and_rework_counts() -> None:
    t = [T0 + dt.timedelta(minutes=m) for m in range(10)]
    o = transition(snapshot(S.CREATED), A.DISPATCH, t[1], "system", assignee="wang", team_id="eng")
    o = transition(o, A.ACCEPT, t[2], "wang")
    o = transition(o, A.ARRIVE, t[3], "wang")
    o = transition(o, A.COMPLETE, t[4], "wang")
    o = transition(o, A.REJECT, t[5], "supervisor", reason="still leaking")
    assert (o.state, o.completed_at, o.rework_count) == (S.ACCEPTED, None, 1)
    o = transition(o, A.ARRIVE, t[6], "wang")
    o = transition(o, A.COMPLETE, t[7], "wang")
    o = transition(o, A.VERIFY, t[8], "supervisor")
    o = transition(o, A.RETURN_VISIT, t[9], "operator", rating=4)
    assert (o.accepted_at, o.on_site_at, o.completed_at, o.rating, o.team_id) == (t[2], t[3], t[7], 4, "eng")


@pytest.mark.parametrize(
    ("state", "action", "kwargs", "field"),
    [
        (S.CREATED, A.DISPATCH, {}, "assignee"),
        (S.DISPATCHED, A.REASSIGN, {"assignee": "wang"}, "assignee"),  # already with wang
        (S.VERIFIED, A.RETURN_VISIT, {"rating": 6}, "rating"),
        (S.VERIFIED, A.RETURN_VISIT, {"rating": 0}, "rating"),
        (S.VERIFIED, A.RETURN_VISIT, {}, "rating"),
        (S.VERIFIED, A.RETURN_VISIT, {"rating": True}, "rating"),
        (S.CREATED, A.CANCEL, {}, "reason"),
        (S.COMPLETED, A.REJECT, {}, "reason"),
        (S.CREATED, "teleport", {}, "action"),
    ],
)
def test_bad_arguments_name_the_field(state: OrderState, action: str, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        transition(snapshot(state), action, T0 + dt.timedelta(minutes=1), "operator", **kwargs)
    assert error.value.field == field


def test_time_must_not_go_backwards_or_lack_a_zone() -> None:
    with pytest.raises(InvalidInput, match="before the order's last change"):
        transition(snapshot(S.DISPATCHED), A.ACCEPT, T0 - dt.timedelta(seconds=1), "wang")
    with pytest.raises(InvalidInput, match="time zone"):
        transition(snapshot(S.DISPATCHED), A.ACCEPT, dt.datetime(2026, 11, 2, 9), "wang")
    with pytest.raises(InvalidInput, match="actor"):
        transition(snapshot(S.DISPATCHED), A.ACCEPT, T0, " ")
