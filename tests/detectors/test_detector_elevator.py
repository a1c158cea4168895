"""Elevator detector: a table of events per case, hard negatives included."""

from __future__ import annotations

import pytest

from domain.devices import DeviceType
from dtables import at, device, engine, kinds, play, play_changes

LIFT = device("lift1", DeviceType.ELEVATOR, "lift")
T = at(10)


def status(**kw):
    base = dict(floor=3, moving=False, door="closed", door_zone=True, occupied=False)
    return base | kw


CASES = {
    "fault confirmed after 5 s, cleared when the code clears": (
        [(T, LIFT, "fault", {"code": 10, "active": True}), (T + 5, "tick"), (T + 60, LIFT, "fault", {"code": 10, "active": False})],
        [(T + 5, "opened", "fault.10", 2), (T + 60, "cleared", "fault.10", 2)],
    ),
    "hard negative: a 2 s glitch never pages": (
        [(T, LIFT, "fault", {"code": 13, "active": True}), (T + 2, LIFT, "fault", {"code": 13, "active": False}), (T + 30, "tick")],
        [],
    ),
    "entrapment code 7 is Level 1 at once": (
        [(T, LIFT, "fault", {"code": 7, "active": True})],
        [(T, "opened", "entrapment", 1)],
    ),
    "messages milliseconds apart never open two incidents": (
        [(T, LIFT, "fault", {"code": 8, "active": True}), (T + 0.003, LIFT, "fault", {"code": 8, "active": True}),
         (T + 0.004, LIFT, "status", status(occupied=True, door_zone=False)), (T + 30, "tick")],
        [(T, "opened", "entrapment", 1)],
    ),
    "stuck landing button is a Level 3 work order": (
        [(T, LIFT, "fault", {"code": 14, "active": True}), (T + 6, "tick")],
        [(T + 5, "opened", "fault.14", 3)],
    ),
    "inferred entrapment between floors": (
        [(T - 12, LIFT, "status", status(moving=True, door_zone=False, occupied=True)),
         (T, LIFT, "status", status(door_zone=False, occupied=True)), (T + 15, LIFT, "status", status(door_zone=False, occupied=True)),
         (T + 600, LIFT, "status", status(door="open", occupied=True))],
        [(T + 5, "opened", "entrapment", 1), (T + 600, "cleared", "entrapment", 1)],
    ),
    "three alarm presses confirm an entrapment": (
        [(T, LIFT, "alarm_button", {}), (T + 40, LIFT, "alarm_button", {}), (T + 80, LIFT, "alarm_button", {})],
        [(T, "opened", "passenger_alarm", 2), (T + 40, "opened", "passenger_alarm", 2), (T + 80, "opened", "entrapment", 1)],
    ),
    "hard negative: passengers boarding (doors close, car moves at once)": (
        [(T, LIFT, "status", status(door="open", occupied=True)), (T + 6, LIFT, "status", status(moving=True, occupied=True, door_zone=False)),
         (T + 20, LIFT, "status", status(door="open", occupied=True)), (T + 30, LIFT, "status", status()), (T + 120, "tick")],
        [],
    ),
    "hard negative: inspection mode silences faults, even after it ends": (
        [(T, LIFT, "service_mode", {"mode": "inspection"}), (T + 300, LIFT, "fault", {"code": 10, "active": True}),
         (T + 420, LIFT, "fault", {"code": 10, "active": False}), (T + 900, LIFT, "fault", {"code": 6, "active": True}),
         (T + 960, LIFT, "fault", {"code": 6, "active": False}), (T + 1200, LIFT, "service_mode", {"mode": "normal"}),
         (T + 1300, "tick")],
        [],
    ),
    "a fault still active when inspection ends pages then": (
        [(T, LIFT, "service_mode", {"mode": "inspection"}), (T + 300, LIFT, "fault", {"code": 10, "active": True}),
         (T + 400, "tick"), (T + 1200, LIFT, "service_mode", {"mode": "normal"})],
        [(T + 1200, "opened", "fault.10", 2)],
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_elevator_table(name: str) -> None:
    steps, expected = CASES[name]
    got = play(engine(LIFT), steps)
    assert [(round(t, 3), k, c, tier) for t, k, c, tier in got] == [(round(t, 3), k, c, tier) for t, k, c, tier in expected]


def test_rising_door_reopens_raise_a_proactive_work_order_once_learned() -> None:
    eng = engine(LIFT)
    trip = dict(from_floor=1, to_floor=5, duration_s=20.0, door_cycles=1)
    steps = [(T + i * 60, LIFT, "trip", trip | {"door_reopens": 1 if i % 20 == 0 else 0}) for i in range(300)]
    assert play(eng, steps) == []  # a normal lift: 5 % re-opens
    worn = [(T + (300 + i) * 60, LIFT, "trip", trip | {"door_reopens": 1 if i % 2 == 0 else 0}) for i in range(40)]
    changes = play_changes(eng, worn)
    assert [(c.kind, c.condition, int(c.tier), c.work_order) for c in changes] == [("opened", "door_wear", 3, True)]


def test_rising_fault_rate_is_a_work_order() -> None:
    eng = engine(LIFT)
    steps = []
    for day in range(4):  # one glitch a day is this lift's normal
        t = at(9, day=day)
        steps += [(t, LIFT, "fault", {"code": 13, "active": True}), (t + 1, LIFT, "fault", {"code": 13, "active": False})]
    assert play(eng, steps) == []
    burst = []
    for i in range(4):
        t = at(9, minute=i * 10, day=4)
        burst += [(t, LIFT, "fault", {"code": 12, "active": True}), (t + 1, LIFT, "fault", {"code": 12, "active": False})]
    assert kinds(play(eng, burst)) == [("opened", "fault_rate", 3)]
