"""Stored work orders: creation by staff, auto-dispatch, refusals, repeat failures, verification."""

from __future__ import annotations

import psycopg
import pytest

from alerts import lifecycle
from domain.incidents import Tier
from tests.closedloop.conftest import HOUR, MIN, T0, change, record
from workorders import store
from workorders.errors import IllegalTransition, InvalidInput, NotFound
from workorders.machine import OrderState


def test_resident_call_is_dispatched_by_building_skill_and_load(conn: psycopg.Connection) -> None:
    first = store.create_order(conn, community_id="c1", title="Lift 2 noisy", source="resident_call", at=T0,
                               actor="op1", tier=3, device_id="lift-2", reporter={"name": "Ms Liu", "unit": "2-301"})
    # zhao covers b2 and knows lifts.
    assert (first.state, first.assignee, first.team_id, first.building_id) == (OrderState.DISPATCHED, "zhao", "c1-eng", "b2")
    assert first.complete_due_at == T0 + 24 * HOUR and first.reporter == {"name": "Ms Liu", "unit": "2-301"}
    # No building, no device: li (whole community) and others tie on coverage; lowest load wins, then id.
    second = store.create_order(conn, community_id="c1", title="Corridor light", source="staff", at=T0, actor="op1",
                                tier=3, simple=True)
    assert second.assignee == "li" and second.complete_due_at == T0 + 2 * HOUR
    events = store.timeline(conn, order_id=first.id)
    assert [(e.kind, e.actor) for e in events] == [("created", "op1"), ("dispatch", "system")]
    assert "zhao: has capacity, covers building b2, skill elevator, 0 open order(s)" in events[1].detail["reason"]


def test_complaints_are_graded_and_use_their_own_clock(conn: psycopg.Connection) -> None:
    order = store.create_order(conn, community_id="c1", title="Rude guard", source="complaint", at=T0, actor="op1",
                               complaint_grade="B", team_kind="security")
    assert (order.assignee, order.respond_due_at, order.tier) == ("sun", T0 + 8 * HOUR, None)
    with pytest.raises(InvalidInput) as error:
        store.create_order(conn, community_id="c1", title="Noise", source="complaint", at=T0, actor="op1")
    assert error.value.field == "complaint_grade"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"source": "fax"}, "source"),
        ({"tier": 4}, "tier"),
        ({"tier": None}, "tier"),
        ({"complaint_grade": "D", "tier": None}, "complaint_grade"),
        ({"complaint_grade": "A"}, "tier"),  # both
        ({"title": ""}, "title"),
        ({"device_id": "lift-9"}, "device_id"),  # another community's device
        ({"team_kind": "plumbing"}, "team_kind"),
        ({"reporter": "Ms Liu"}, "reporter"),
    ],
)
def test_creation_refuses_bad_input(conn: psycopg.Connection, kwargs: dict, field: str) -> None:
    args = {"community_id": "c1", "title": "t", "source": "staff", "at": T0, "actor": "op1", "tier": 3} | kwargs
    with pytest.raises(InvalidInput) as error:
        store.create_order(conn, **args)
    assert error.value.field == field


def test_illegal_transition_changes_nothing(conn: psycopg.Connection) -> None:
    order = store.create_order(conn, community_id="c1", title="t", source="staff", at=T0, actor="op1", tier=3)
    before = store.timeline(conn, order_id=order.id)
    with pytest.raises(IllegalTransition, match="cannot complete a work order that is dispatched; allowed now: "
                                                "reassign, accept, cancel"):
        store.act(conn, order_id=order.id, action="complete", at=T0 + MIN, actor=order.assignee)
    assert store.get_order(conn, order_id=order.id).state is OrderState.DISPATCHED
    assert store.timeline(conn, order_id=order.id) == before
    with pytest.raises(NotFound):
        store.act(conn, order_id=order.id + 99, action="accept", at=T0, actor="x")
    with pytest.raises(NotFound):
        store.get_order(conn, order_id=order.id, community_ids=["c2"])
    with pytest.raises(InvalidInput) as error:
        store.act(conn, order_id=order.id, action="reassign", at=T0 + MIN, actor="op1", assignee="zhou")
    assert error.value.field == "assignee"


def test_no_staff_leaves_the_order_created_with_the_reason(conn: psycopg.Connection) -> None:
    order = store.create_order(conn, community_id="c1", title="Mop the lobby", source="staff", at=T0, actor="op1",
                               tier=3, team_kind="cleaning")
    assert order.state is OrderState.CREATED and order.assignee is None
    assert "nobody active in a cleaning team" in store.timeline(conn, order_id=order.id)[-1].detail["reason"]
    manual = store.dispatch(conn, order_id=order.id, at=T0 + MIN, actor="op1", assignee="li")
    assert (manual.state, manual.assignee) == (OrderState.DISPATCHED, "li")


def test_repeat_failure_same_device_same_fault_within_7_days(conn: psycopg.Connection) -> None:
    def fault(at):
        return record(conn, [change("opened", "lift-1", "door_fault", Tier.ROUTINE, at)])[0].incident_id

    def close(incident_id, at):
        [order] = store.list_orders(conn, community_ids=["c1"], incident_id=incident_id)
        for action in ("accept", "arrive", "complete"):
            store.act(conn, order_id=order.id, action=action, at=at, actor=order.assignee)
        record(conn, [change("cleared", "lift-1", "door_fault", Tier.ROUTINE, at)])
        return store.record_return_visit(conn, order_id=order.id, rating=4, at=at, actor="op1")

    first = close(fault(T0), T0 + 3 * HOUR)
    assert first.state is OrderState.CLOSED and first.verified_at == T0 + 3 * HOUR  # the clear verified it
    # Six days after the repair: a repeat, linked both ways.
    second_incident = fault(T0 + 3 * HOUR + 6 * 24 * HOUR)
    [second] = store.list_orders(conn, community_ids=["c1"], incident_id=second_incident)
    assert second.repeat_of == first.id
    assert "failed_again" in [e.kind for e in store.timeline(conn, order_id=first.id)]
    assert any(e.kind == "work_order_created" and e.detail.get("repeat_of") == first.id
               for e in lifecycle.get_alert(conn, incident_id=second_incident).timeline)
    close(second_incident, T0 + 7 * 24 * HOUR)
    # More than 7 days after the last repair: not a repeat. Another fault on the same lift is not either.
    third_incident = fault(T0 + 15 * 24 * HOUR)
    other = record(conn, [change("opened", "lift-1", "overspeed", Tier.ROUTINE, T0 + 15 * 24 * HOUR)])[0]
    assert [o.repeat_of for o in store.list_orders(conn, community_ids=["c1"], incident_id=third_incident)] == [None]
    assert [o.repeat_of for o in store.list_orders(conn, community_ids=["c1"], incident_id=other.incident_id)] == [None]


def test_verification_waits_for_the_detector_unless_overridden(conn: psycopg.Connection) -> None:
    iid = record(conn, [change("opened", "meter-1", "leak", Tier.URGENT, T0)])[0].incident_id
    [order] = store.list_orders(conn, community_ids=["c1"], incident_id=iid)
    for action in ("accept", "arrive", "complete"):
        order = store.act(conn, order_id=order.id, action=action, at=T0 + 10 * MIN, actor=order.assignee)
    assert order.state is OrderState.COMPLETED  # the leak has not cleared yet
    with pytest.raises(IllegalTransition, match="the detector has not seen the condition clear"):
        store.act(conn, order_id=order.id, action="verify", at=T0 + 11 * MIN, actor="supervisor")
    order = store.act(conn, order_id=order.id, action="reject", at=T0 + 12 * MIN, actor="supervisor",
                      reason="meter still shows flow")
    assert (order.state, order.rework_count) == (OrderState.ACCEPTED, 1)
    order = store.act(conn, order_id=order.id, action="arrive", at=T0 + 20 * MIN, actor=order.assignee)
    order = store.act(conn, order_id=order.id, action="complete", at=T0 + 40 * MIN, actor=order.assignee)
    record(conn, [change("cleared", "meter-1", "leak", Tier.URGENT, T0 + 45 * MIN)])
    order = store.get_order(conn, order_id=order.id)
    assert (order.state, order.verified_at) == (OrderState.VERIFIED, T0 + 45 * MIN)
    assert store.timeline(conn, order_id=order.id)[-1].actor == "detector"

    other = store.create_order(conn, community_id="c1", title="t", source="staff", at=T0, actor="op1", tier=3,
                               incident_id=iid)
    for action in ("accept", "arrive", "complete"):
        other = store.act(conn, order_id=other.id, action=action, at=T0 + MIN, actor=other.assignee)
    other = store.act(conn, order_id=other.id, action="verify", at=T0 + 2 * MIN, actor="supervisor",
                      reason="checked on site")
    assert other.state is OrderState.VERIFIED
    assert store.timeline(conn, order_id=other.id)[-1].detail == {"override": True, "reason": "checked on site"}


def test_community_policy_changes_new_deadlines_only(conn: psycopg.Connection) -> None:
    before = store.create_order(conn, community_id="c1", title="t", source="staff", at=T0, actor="op1", tier=1)
    store.set_policy(conn, community_id="c1", actor="manager", at=T0,
                     sla_overrides={"tier_1": {"respond_minutes": 60}}, kpi_thresholds={"completion_24h_rate": 0.95})
    after = store.create_order(conn, community_id="c1", title="t", source="staff", at=T0, actor="op1", tier=1)
    assert (before.respond_due_at, after.respond_due_at) == (T0 + 30 * MIN, T0 + 60 * MIN)
    other = store.create_order(conn, community_id="c2", title="t", source="staff", at=T0, actor="op1", tier=1)
    assert other.respond_due_at == T0 + 30 * MIN
    with pytest.raises(InvalidInput) as error:
        store.set_policy(conn, community_id="c1", actor="manager", at=T0, sla_overrides={"tier_1": {"ack_minutes": 0}})
    assert error.value.field == "sla.tier_1.ack_minutes"
    with pytest.raises(InvalidInput) as error:
        store.set_policy(conn, community_id="c1", actor="manager", at=T0, kpi_thresholds={"completion_24h_rate": 93})
    assert error.value.field == "kpi_thresholds.completion_24h_rate"
