"""One incident from detection to a closed work order with a rating, through the real
detector engine, the detectors' incident store and the closed-loop hook."""

from __future__ import annotations

import datetime as dt

import psycopg

from alerts import lifecycle
from detectors.engine import Engine
from domain.devices import Device, DeviceType, Stream
from domain.events import Event
from tests.closedloop.conftest import HOUR, MIN, T0, record
from workorders import kpis, store
from workorders.machine import OrderState

LIFT = Device(device_id="lift-1", community_id="c1", device_type=DeviceType.ELEVATOR, kind="lift", building_id="b1")


def fault(n: int, at: dt.datetime, active: bool) -> Event:
    fields = {"type": "fault", "code": 7, "active": active, "floor": 3}  # 7: passenger trapped at floor level
    return Event(community_id="c1", device_type=DeviceType.ELEVATOR, device_id="lift-1", stream=Stream.EVENT,
                 msg_id=str(n), type="fault", ts=at, received_at=at, fields=fields)


def test_entrapment_from_detection_to_closed_rated_order(conn: psycopg.Connection) -> None:
    engine = Engine(devices={"lift-1": LIFT})
    opened = [c for c in engine.on_event(fault(1, T0, active=True)) if c.condition == "entrapment"]
    [stored] = record(conn, opened)
    incident_id = stored.incident_id

    # 接单 + 派单: a Level 1 alert, with a follow-up order already given to wang (lifts, building b1).
    detail = lifecycle.get_alert(conn, incident_id=incident_id, now=T0 + MIN)
    assert (detail.alert.tier, detail.alert.status, detail.alert.ack_due_at) == (1, "open", T0 + 5 * MIN)
    [order_id] = detail.work_order_ids
    order = store.get_order(conn, order_id=order_id)
    assert (order.state, order.assignee, order.source, order.respond_due_at) == (
        OrderState.DISPATCHED, "wang", "alert_follow_up", T0 + 30 * MIN)

    # 跟进: the on-call technician acknowledges the alert and takes the order; on site in 12 min.
    lifecycle.acknowledge(conn, incident_id=incident_id, actor="wang", at=T0 + MIN)
    store.act(conn, order_id=order_id, action="accept", at=T0 + 2 * MIN, actor="wang")
    store.act(conn, order_id=order_id, action="arrive", at=T0 + 12 * MIN, actor="wang")
    store.note(conn, order_id=order_id, at=T0 + 15 * MIN, actor="wang", text="passenger released, car stuck at 3F")

    # The controller clears the fault: the alert resolves itself; the order is told.
    # (applied once the lift's 2 s reorder window has passed: the engine's next tick)
    changes = engine.on_event(fault(2, T0 + 20 * MIN, active=False)) + engine.advance((T0 + 20 * MIN).timestamp() + 3)
    cleared = [c for c in changes if c.condition == "entrapment"]
    record(conn, cleared)
    assert lifecycle.get_alert(conn, incident_id=incident_id).alert.resolved_by == "detector"

    # 验收: completing an order whose condition already cleared verifies it with the detector.
    order = store.act(conn, order_id=order_id, action="complete", at=T0 + 40 * MIN, actor="wang")
    assert (order.state, order.verified_at) == (OrderState.VERIFIED, T0 + 40 * MIN)

    # 回访: the resident rates the service; the order closes.
    order = store.record_return_visit(conn, order_id=order_id, rating=5, at=T0 + 3 * HOUR, actor="op1",
                                      note="thanked the team")
    assert (order.state, order.rating, order.closed_at, order.return_visit_note) == (
        OrderState.CLOSED, 5, T0 + 3 * HOUR, "thanked the team")
    assert [c.status.value for c in store.get_order(conn, order_id=order_id, now=T0 + 4 * HOUR).clocks or []] == [
        "met", "met"]

    steps = [(e.kind, e.actor, e.to_state) for e in store.timeline(conn, order_id=order_id)]
    assert steps == [
        ("created", "detector", "created"), ("dispatch", "system", "dispatched"), ("accept", "wang", "accepted"),
        ("arrive", "wang", "on_site"), ("note", "wang", None), ("condition_cleared", "detector", None),
        ("complete", "wang", "completed"), ("verify", "detector", "verified"),
        ("return_visit", "op1", "return_visit_done"), ("close", "op1", "closed"),
    ]
    alert_steps = [(e.kind, e.actor) for e in lifecycle.get_alert(conn, incident_id=incident_id).timeline]
    assert alert_steps == [("opened", "detector"), ("work_order_created", "system"), ("acknowledged", "wang"),
                           ("cleared", "detector")]
    got = kpis.compute_kpis(conn, community_id="c1", start=T0, end=T0 + HOUR, now=T0 + 4 * HOUR)["kpis"]
    assert (got["response_time_mean_s"]["value"], got["satisfaction"]["value"], got["overdue_count"]["value"]) == (
        120.0, 5.0, 0.0)
