"""Alert lifecycle on the detectors' incidents: status moves, staff actions, timeline, list."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from alerts import lifecycle
from alerts.errors import IllegalTransition, InvalidInput, NotFound
from domain.incidents import Tier
from tests.closedloop.conftest import MIN, T0, change, record
from workorders import store


def open_alert(conn: psycopg.Connection, device: str = "lift-1", condition: str = "entrapment",
               tier: Tier = Tier.LIFE_SAFETY, at: dt.datetime = T0, community: str = "c1") -> int:
    return record(conn, [change("opened", device, condition, tier, at, community=community)])[0].incident_id


def kinds(conn: psycopg.Connection, incident_id: int) -> list[tuple[str, str]]:
    return [(e.kind, e.actor) for e in lifecycle.get_alert(conn, incident_id=incident_id).timeline]


def test_acknowledge_then_resolve_with_timeline(conn: psycopg.Connection) -> None:
    iid = open_alert(conn)
    alert = lifecycle.acknowledge(conn, incident_id=iid, actor="wang", at=T0 + 2 * MIN)
    assert (alert.status, alert.acknowledged_by, alert.acknowledged_at) == ("acknowledged", "wang", T0 + 2 * MIN)
    with pytest.raises(IllegalTransition, match="cannot acknowledge alert .*: it is acknowledged"):
        lifecycle.acknowledge(conn, incident_id=iid, actor="li", at=T0 + 3 * MIN)
    # Level 1: closed only with what was found and why, on every path (this function is all of them).
    with pytest.raises(InvalidInput, match="resolved as false_alarm, confirmed or duplicate") as refused:
        lifecycle.resolve(conn, incident_id=iid, actor="wang", at=T0 + 30 * MIN, note="passenger released")
    assert refused.value.field == "resolution"
    with pytest.raises(InvalidInput, match="needs the reason") as refused:
        lifecycle.resolve(conn, incident_id=iid, actor="wang", at=T0 + 30 * MIN, resolution="confirmed", reason=" ")
    assert refused.value.field == "reason"
    alert = lifecycle.resolve(conn, incident_id=iid, actor="wang", at=T0 + 30 * MIN, note="passenger released",
                              resolution="confirmed", reason="trapped 20 min, released by the maintainer")
    assert (alert.status, alert.resolved_by) == ("resolved", "wang")
    for action in (lifecycle.acknowledge, lifecycle.resolve):
        with pytest.raises(IllegalTransition, match="it is resolved"):
            action(conn, incident_id=iid, actor="wang", at=T0 + 31 * MIN)
    assert kinds(conn, iid) == [("opened", "detector"), ("work_order_created", "system"),
                                ("acknowledged", "wang"), ("resolved", "wang")]
    resolved = lifecycle.get_alert(conn, incident_id=iid).timeline[-1]
    assert resolved.detail == {"note": "passenger released", "resolution": "confirmed",
                               "reason": "trapped 20 min, released by the maintainer"}


def test_ack_sla_is_computed_from_stored_times(conn: psycopg.Connection) -> None:
    iid = open_alert(conn, tier=Tier.URGENT, device="door-1", condition="door_forced")
    detail = lifecycle.get_alert(conn, incident_id=iid, now=T0 + 14 * MIN)
    assert (detail.alert.ack_due_at, detail.alert.ack_overdue) == (T0 + 15 * MIN, False)
    assert lifecycle.get_alert(conn, incident_id=iid, now=T0 + 16 * MIN).alert.ack_overdue is True
    lifecycle.acknowledge(conn, incident_id=iid, actor="sun", at=T0 + 20 * MIN)
    # Acknowledged late: stays a breach however late we look.
    assert lifecycle.get_alert(conn, incident_id=iid, now=T0 + 5 * 60 * MIN).alert.ack_overdue is True


def test_comment_assign_escalate(conn: psycopg.Connection) -> None:
    iid = open_alert(conn, device="meter-1", condition="leak", tier=Tier.ROUTINE)
    [order_id] = lifecycle.get_alert(conn, incident_id=iid).work_order_ids
    assert store.get_order(conn, order_id=order_id).complete_due_at == T0 + 24 * 60 * MIN

    note = lifecycle.comment(conn, incident_id=iid, actor="op1", at=T0 + MIN, body="resident in 301 reports water")
    lifecycle.assign(conn, incident_id=iid, actor="op1", at=T0 + 2 * MIN, assignee="li")
    alert = lifecycle.escalate(conn, incident_id=iid, actor="op1", at=T0 + 3 * MIN, tier=2, severity=4,
                               reason="water reaching the corridor")
    assert (alert.tier, alert.severity, alert.assignee) == (2, 4, "li")
    # The open order took the tier and its Level 2 deadlines, counted from its creation.
    order = store.get_order(conn, order_id=order_id)
    assert (order.tier, order.ack_due_at, order.respond_due_at, order.complete_due_at) == (
        2, T0 + 15 * MIN, T0 + 30 * MIN, None)
    detail = lifecycle.get_alert(conn, incident_id=iid)
    assert [c.body for c in detail.comments] == ["resident in 301 reports water"] and detail.comments[0].id == note.id
    assert [k for k, _ in kinds(conn, iid)][-3:] == ["commented", "assigned", "escalated"]
    assert detail.timeline[-1].tier == 2 and detail.timeline[-1].detail["from_tier"] == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"tier": 3}, InvalidInput, "escalation raises the tier"),
        ({"tier": 4}, InvalidInput, "tier: must be 1, 2 or 3"),
        ({"severity": 1}, InvalidInput, "severity: must be a whole number above the current 1"),
        ({}, InvalidInput, "give a higher tier"),
    ],
)
def test_escalate_refuses_lowering(conn: psycopg.Connection, kwargs, error, message) -> None:
    iid = open_alert(conn, tier=Tier.ROUTINE, device="lift-2", condition="door_cycles")
    with pytest.raises(error, match=message):
        lifecycle.escalate(conn, incident_id=iid, actor="op1", at=T0 + MIN, **kwargs)


def test_inputs_are_validated_with_the_field_named(conn: psycopg.Connection) -> None:
    iid = open_alert(conn)
    cases = [
        (lambda: lifecycle.acknowledge(conn, incident_id=iid, actor="", at=T0), "actor"),
        (lambda: lifecycle.acknowledge(conn, incident_id=iid, actor="x", at=dt.datetime(2026, 11, 2)), "at"),
        (lambda: lifecycle.acknowledge(conn, incident_id=iid, actor="x", at=T0 - MIN), "at"),
        (lambda: lifecycle.acknowledge(conn, incident_id=0, actor="x", at=T0), "incident_id"),
        (lambda: lifecycle.comment(conn, incident_id=iid, actor="x", at=T0, body=" "), "body"),
        (lambda: lifecycle.assign(conn, incident_id=iid, actor="x", at=T0, assignee="zhou"), "assignee"),  # other community
        (lambda: lifecycle.assign(conn, incident_id=iid, actor="x", at=T0, assignee="nobody"), "assignee"),
        (lambda: lifecycle.list_alerts(conn, community_ids="c1"), "community_ids"),
        (lambda: lifecycle.list_alerts(conn, community_ids=["c1"], sort="random"), "sort"),
        (lambda: lifecycle.list_alerts(conn, community_ids=["c1"], status="closed"), "status"),
        (lambda: lifecycle.list_alerts(conn, community_ids=["c1"], tier=0), "tier"),
        (lambda: lifecycle.list_alerts(conn, community_ids=["c1"], limit=0), "limit"),
        (lambda: lifecycle.list_alerts(conn, community_ids=["c1"], after="garbage"), "after"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as error:
            call()
        assert error.value.field == field
    with pytest.raises(NotFound):
        lifecycle.acknowledge(conn, incident_id=iid + 1000, actor="x", at=T0)
    with pytest.raises(NotFound):  # outside the caller's communities it does not exist
        lifecycle.acknowledge(conn, incident_id=iid, actor="x", at=T0, community_ids=["c2"])


def test_list_filters_sorts_and_pages_by_keyset(conn: psycopg.Connection) -> None:
    specs = [("lift-1", "entrapment", Tier.LIFE_SAFETY), ("lift-2", "door_fault", Tier.URGENT),
             ("meter-1", "leak", Tier.URGENT), ("door-1", "door_held", Tier.ROUTINE),
             ("hub-1", "inactivity", Tier.URGENT)]
    ids = [open_alert(conn, d, c, t, at=T0 + i * MIN) for i, (d, c, t) in enumerate(specs)]
    open_alert(conn, "lift-9", "entrapment", community="c2")
    lifecycle.acknowledge(conn, incident_id=ids[2], actor="li", at=T0 + 10 * MIN)

    def page_all(**kw) -> list[int]:
        out, cursor = [], None
        while True:
            page = lifecycle.list_alerts(conn, community_ids=["c1"], limit=2, after=cursor, **kw)
            out += [a.id for a in page.items]
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor

    assert page_all() == ids[::-1]
    assert page_all(sort="oldest") == ids
    assert page_all(sort="priority") == [ids[0], ids[4], ids[2], ids[1], ids[3]]
    assert page_all(sort="updated") == [ids[2], ids[4], ids[3], ids[1], ids[0]]
    assert page_all(building="b2") == [ids[4], ids[1]]
    assert page_all(tier=[2], status="open") == [ids[4], ids[1]]
    assert page_all(since=T0 + MIN, until=T0 + 3 * MIN) == [ids[2], ids[1]]
    assert lifecycle.list_alerts(conn, community_ids=[]).items == []
    cursor = lifecycle.list_alerts(conn, community_ids=["c1"], limit=1).next_cursor
    with pytest.raises(InvalidInput, match="same sort"):
        lifecycle.list_alerts(conn, community_ids=["c1"], sort="oldest", after=cursor)


def test_detector_reopen_needs_a_new_acknowledgement(conn: psycopg.Connection) -> None:
    iid = open_alert(conn, device="meter-1", condition="leak", tier=Tier.URGENT)
    lifecycle.acknowledge(conn, incident_id=iid, actor="li", at=T0 + MIN)
    record(conn, [change("cleared", "meter-1", "leak", Tier.URGENT, T0 + 10 * MIN)])
    assert lifecycle.get_alert(conn, incident_id=iid).alert.resolved_by == "detector"
    again = record(conn, [change("opened", "meter-1", "leak", Tier.URGENT, T0 + 20 * MIN)])
    assert again[0].reopened and again[0].incident_id == iid
    alert = lifecycle.get_alert(conn, incident_id=iid).alert
    assert (alert.status, alert.acknowledged_by, alert.reopen_count) == ("open", None, 1)
    # Staff call it a false alarm; the leak comes back: it was not one after all.
    alert = lifecycle.resolve(conn, incident_id=iid, actor="li", at=T0 + 25 * MIN, false_alarm=True)
    assert alert.false_alarm and lifecycle.get_alert(conn, incident_id=iid).timeline[-1].detail == {"false_alarm": True, "resolution": "false_alarm"}
    record(conn, [change("opened", "meter-1", "leak", Tier.URGENT, T0 + 30 * MIN)])
    alert = lifecycle.get_alert(conn, incident_id=iid).alert
    assert (alert.status, alert.false_alarm, alert.reopen_count) == ("open", False, 2)
    # Still one work order: the open one carries on, told that the condition came back.
    orders = store.list_orders(conn, community_ids=["c1"], incident_id=iid)
    assert len(orders) == 1 and orders[0].condition_cleared_at is None
    assert [e.kind for e in store.timeline(conn, order_id=orders[0].id)][-3:] == [
        "condition_cleared", "condition_returned", "condition_returned"]
