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
    "three alarm presses confirm an entrapment (one press alone is nothing, a second one an alert)": (
        [(T, LIFT, "alarm_button", {}), (T + 40, LIFT, "alarm_button", {}), (T + 80, LIFT, "alarm_button", {})],
        [(T + 40, "opened", "passenger_alarm", 2), (T + 80, "opened", "entrapment", 1)],
    ),
    "hard negative: a child presses the alarm button once and the ride goes on": (
        [(T, LIFT, "status", status(occupied=True, moving=True, door_zone=False)), (T + 3, LIFT, "alarm_button", {}),
         (T + 12, LIFT, "status", status(occupied=True, door="open")), (T + 20, LIFT, "status", status()), (T + 600, "tick")],
        [],
    ),
    "the alarm latched by the controller (code 21) is an alert until reset": (
        [(T - 1, LIFT, "alarm_button", {}), (T, LIFT, "fault", {"code": 21, "active": True}), (T + 10, "tick"),
         (T + 180, LIFT, "fault", {"code": 21, "active": False})],
        [(T + 5, "opened", "passenger_alarm", 2), (T + 180, "cleared", "passenger_alarm", 2)],
    ),
    "hard negative: a slow rider stands 30 s in the shut car before pressing a floor": (
        [(T, LIFT, "status", status(door="open", occupied=True)), (T + 5, LIFT, "status", status(occupied=True)),
         (T + 20, LIFT, "status", status(occupied=True)), (T + 35, LIFT, "status", status(occupied=True, moving=True, door_zone=False)),
         (T + 50, LIFT, "status", status(occupied=True, door="open")), (T + 60, LIFT, "status", status()), (T + 900, "tick")],
        [],
    ),
    "occupied car shut and idle in the door zone far longer than any ride": (
        [(T, LIFT, "status", status(occupied=True))] + [(T + 30 * k, LIFT, "status", status(occupied=True)) for k in range(1, 10)]
        + [(T + 400, LIFT, "status", status(door="open", occupied=True))],
        [(T + 180, "opened", "entrapment", 1), (T + 400, "cleared", "entrapment", 1)],
    ),
    "hard negative: an occupancy sensor flickering in a parked car": (
        [(T + 60 * k, LIFT, "status", status(occupied=k % 3 == 1)) for k in range(30)] + [(T + 3600, "tick")],
        [],
    ),
    "hard negative: people holding the doors for a neighbour": (
        [(T, LIFT, "status", status(door="open", occupied=True))] + [(T + 15 * k, LIFT, "status", status(door="open", occupied=True))
                                                                     for k in range(1, 9)]
        + [(T + 140, LIFT, "status", status(occupied=True, moving=True, door_zone=False)), (T + 900, "tick")],
        [],
    ),
    "hard negative: a car parked at night, doors shut, nobody inside": (
        [(at(1) + 300 * k, LIFT, "status", status(floor=1)) for k in range(60)] + [(at(7), "tick")],
        [],
    ),
    "hard negative: a cleaner in the shut car during inspection": (
        [(T, LIFT, "service_mode", {"mode": "inspection"})] + [(T + 60 * k, LIFT, "status", status(occupied=True)) for k in range(1, 40)]
        + [(T + 2460, LIFT, "status", status(door="open", occupied=True)), (T + 2470, LIFT, "service_mode", {"mode": "normal"}),
           (T + 2500, LIFT, "status", status()), (T + 3000, "tick")],
        [],
    ),
    "doors asked to open that never do, with a passenger inside": (
        [(T, LIFT, "status", status(occupied=True)), (T + 30, LIFT, "status", status(door="opening", occupied=True)),
         (T + 45, LIFT, "status", status(door="opening", occupied=True)), (T + 50, "tick"),
         (T + 300, LIFT, "status", status(door="open", occupied=True))],
        [(T + 40, "opened", "entrapment", 1), (T + 300, "cleared", "entrapment", 1)],
    ),
    "hard negative: a report catches the doors opening, the next one 15 s later has them open": (
        [(T - 10, LIFT, "status", status(moving=True, door_zone=False, occupied=True)),
         (T, LIFT, "status", status(door="opening", occupied=True)), (T + 12, "tick"),
         (T + 15, LIFT, "status", status(door="open", occupied=True)), (T + 30, LIFT, "status", status()), (T + 600, "tick")],
        [],
    ),
    "hard negative: the door-zone sensor flickers once while a car stands shut at a floor": (
        [(T - 10, LIFT, "status", status(moving=True, door_zone=False, occupied=True)),
         (T, LIFT, "status", status(occupied=True)), (T + 10, LIFT, "status", status(occupied=True, door_zone=False)),
         (T + 25, LIFT, "status", status(occupied=True)), (T + 40, LIFT, "status", status(occupied=True, moving=True, door_zone=False)),
         (T + 600, "tick")],
        [],
    ),
    "a car that stood at a floor reported outside the door zone twice: it slid off (re-levelling failed)": (
        [(T, LIFT, "status", status(occupied=True)), (T + 10, LIFT, "status", status(occupied=True, door_zone=False)),
         (T + 14, "tick"), (T + 25, LIFT, "status", status(occupied=True, door_zone=False)), (T + 40, "tick")],
        [(T + 15, "opened", "entrapment", 1)],  # true since T + 15, known once the second report came
    ),
    "hard negative: a parked, shut car whose load cell drifts to 'occupied' long after the doors shut": (
        [(T - 10, LIFT, "status", status(door="open", occupied=True)), (T, LIFT, "status", status())]
        + [(T + 60 * k, LIFT, "status", status(occupied=k >= 5)) for k in range(1, 30)] + [(T + 3600, "tick")],
        [],
    ),
    "fault 11 (doors fail to open) with a passenger inside is an entrapment": (
        [(T - 20, LIFT, "status", status(occupied=True)), (T, LIFT, "fault", {"code": 11, "active": True}), (T + 6, "tick"),
         (T + 600, LIFT, "fault", {"code": 11, "active": False}), (T + 605, LIFT, "status", status(door="open", occupied=True))],
        [(T + 5, "opened", "fault.11", 2), (T + 5, "opened", "entrapment", 1), (T + 600, "cleared", "fault.11", 2),
         (T + 605, "cleared", "entrapment", 1)],
    ),
    "fault 11 while the car shows its doors asked to open, a passenger inside: Level 1 at once": (
        [(T - 12, LIFT, "status", status(moving=True, door_zone=False, occupied=True)), (T - 2, LIFT, "status", status(occupied=True)),
         (T, LIFT, "status", status(door="opening", occupied=True)), (T + 6, LIFT, "fault", {"code": 11, "active": True}),
         (T + 12, "tick"), (T + 300, LIFT, "fault", {"code": 11, "active": False}),
         (T + 301, LIFT, "status", status(door="open", occupied=True))],
        [(T + 6, "opened", "entrapment", 1), (T + 11, "opened", "fault.11", 2), (T + 300, "cleared", "fault.11", 2),
         (T + 301, "cleared", "entrapment", 1)],
    ),
    "hard negative: a 2 s fault-11 glitch in an occupied car whose doors are shut, not asked to open": (
        [(T - 12, LIFT, "status", status(moving=True, door_zone=False, occupied=True)), (T, LIFT, "status", status(occupied=True)),
         (T + 3, LIFT, "fault", {"code": 11, "active": True}), (T + 5, LIFT, "fault", {"code": 11, "active": False}),
         (T + 20, LIFT, "status", status(occupied=True, moving=True, door_zone=False)), (T + 600, "tick")],
        [],
    ),
    "fault 11 in an empty car is a fault, not an entrapment": (
        [(T - 20, LIFT, "status", status()), (T, LIFT, "fault", {"code": 11, "active": True}), (T + 6, "tick")],
        [(T + 5, "opened", "fault.11", 2)],
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
    steps = [(T + i * 60, LIFT, "trip", trip | {"door_reopens": 1 if i % 20 == 0 else 0}) for i in range(1200)]
    assert play(eng, steps) == []  # a normal lift: 5 % re-opens, learned over its last ~1,000 trips
    worn = [(T + (1200 + i) * 60, LIFT, "trip", trip | {"door_reopens": 1 if i % 2 == 0 else 0}) for i in range(150)]
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


def test_vibration_trend_reads_the_machine_not_the_traffic() -> None:
    """Idle readings (0.5-2.5 mg) and a peak hour of rides (7-14 mg while moving): a
    busy lift is not a shaking one. A real rise while moving is."""
    eng = engine(LIFT)
    steps, t = [], T
    for k in range(1500):  # a few days: quiet hours with idle readings, rides in between
        busy = (k // 100) % 3 == 0
        if busy or k % 4 == 0:
            steps.append((t, LIFT, "status", status(moving=True, door_zone=False, occupied=True, vibration_mg=7 + (k * 7919) % 8)))
        steps.append((t + 20, LIFT, "status", status(vibration_mg=0.5 + (k * 104729) % 3 * 0.8)))
        t += 60
    assert play(eng, steps) == []
    worn = [(t + 60 * k, LIFT, "status", status(moving=True, door_zone=False, occupied=True, vibration_mg=28.0)) for k in range(100)]
    assert kinds(play(eng, worn))[:1] == [("opened", "vibration_trend", 3)]


def test_hard_negative_a_chance_cluster_of_door_reopens_is_not_wear() -> None:
    """One ride in ten re-opens (a pram, a hand in the door); now and then ten of fifteen
    rides in a row do (a school outing, a move). Wear is a lasting rise, not a cluster."""
    eng = engine(LIFT)
    trip = dict(from_floor=1, to_floor=5, duration_s=20.0, door_cycles=1)
    steps = [(T + i * 60, LIFT, "trip", trip | {"door_reopens": 1 if i % 10 == 0 else 0}) for i in range(400)]
    cluster = [(T + (400 + i) * 60, LIFT, "trip", trip | {"door_reopens": 1 if i in (0, 1, 2, 4, 5, 7, 8, 10, 12, 13) else 0}) for i in range(15)]
    after = [(T + (415 + i) * 60, LIFT, "trip", trip | {"door_reopens": 1 if i % 10 == 0 else 0}) for i in range(200)]
    assert play(eng, steps + cluster + after) == []


def test_fault_rate_is_per_trip_so_a_busy_day_is_not_a_degrading_lift() -> None:
    trip = dict(from_floor=1, to_floor=5, duration_s=20.0, door_cycles=1, door_reopens=0)

    def day(d: int, trips: int, glitches: int) -> list:
        out = [(at(7, day=d) + i * 40, LIFT, "trip", trip) for i in range(trips)]
        for i in range(glitches):
            t = at(9, day=d) + i * 600
            out += [(t, LIFT, "fault", {"code": 13, "active": True}), (t + 1, LIFT, "fault", {"code": 13, "active": False})]
        return sorted(out, key=lambda s: s[0])

    eng = engine(LIFT)
    steps = [s for d in range(4) for s in day(d, 200, 1)]  # one glitch in 200 trips is this lift's normal
    assert play(eng, steps) == []
    assert play(eng, day(4, 700, 3)) == []  # a busy day: 3.5 x the trips, 3 glitches
    assert kinds(play(eng, day(5, 200, 4))) == [("opened", "fault_rate", 3)]  # 4 glitches in an ordinary day


# --- trends per unit of use: a busy day is not a degrading lift -----------------------------------


def _traffic(day: int, rides_per_hour: dict[int, int], *, vib: float = 10.5, reopen_every: int = 20) -> list:
    """One day of a lift's rides (``rides_per_hour`` by local hour): each ride is a moving
    status with its vibration (7-14 mg around ``vib``), a trip (every ``reopen_every``-th
    with a door re-open) and the stop; the terminal also reports every 5 minutes on its own
    with the idle vibration (0.5-2.5 mg), so the share of moving readings follows the traffic
    (an average over every reading rises at a peak: the issue's false vibration trend)."""
    steps = [(at(0, day=day) + 300 * k + 150, LIFT, "status", status(vibration_mg=0.5 + (k % 3) * 0.8)) for k in range(288)]
    n = 0
    trip = dict(from_floor=1, to_floor=5, duration_s=20.0, door_cycles=1)
    for hour, rides in sorted(rides_per_hour.items()):
        for i in range(rides):
            t = at(hour, day=day) + i * 3600 / rides
            n += 1
            wobble = ((n * 7919) % 8 - 3.5) / 3.5 * 3.5 * vib / 10.5
            steps += [(t, LIFT, "status", status(moving=True, door_zone=False, occupied=True, vibration_mg=round(vib + wobble, 1))),
                      (t + 15, LIFT, "trip", trip | {"door_reopens": 1 if n % reopen_every == 0 else 0}),
                      (t + 16, LIFT, "status", status(door="open", occupied=True)), (t + 25, LIFT, "status", status())]
    return sorted(steps, key=lambda s: s[0])


ORDINARY = {h: 12 for h in range(7, 23)}  # about 190 rides a day
PEAK = ORDINARY | {7: 60, 8: 80, 17: 60, 18: 80, 19: 60}  # a holiday's traffic: twice the rides, four times at the peaks


def _learned_lift():
    eng = engine(LIFT)
    assert play(eng, [s for d in range(5) for s in _traffic(d, ORDINARY)]) == []
    return eng


TREND_CASES = {
    "hard negative: a traffic peak, vibration and re-opens per ride unchanged": (dict(rides=PEAK), []),
    "a real vibration rise (x1.9) at ordinary traffic": (dict(rides=ORDINARY, vib=20.0), [("opened", "vibration_trend", 3)]),
    "door re-opens rising from one ride in 20 to one in 2 at ordinary traffic": (
        dict(rides=ORDINARY, reopen_every=2), [("opened", "door_wear", 3)]),
}


@pytest.mark.parametrize("name", TREND_CASES)
def test_trends_are_per_unit_of_use(name: str) -> None:
    case, expected = TREND_CASES[name]
    eng = _learned_lift()
    got = play(eng, _traffic(5, case["rides"], vib=case.get("vib", 10.5), reopen_every=case.get("reopen_every", 20)))
    assert sorted(set(kinds(got))) == expected


def _rides_with_occupancy(start: float, minutes: int, occupied: bool) -> list:
    """A car in use: a ride every 2 minutes (doors open, shut, moving, arrived)."""
    steps = []
    for k in range(minutes // 2):
        t = start + k * 120
        steps += [(t, LIFT, "status", status(door="open", occupied=occupied)),
                  (t + 8, LIFT, "status", status(occupied=occupied)),
                  (t + 10, LIFT, "status", status(moving=True, occupied=occupied, door_zone=False)),
                  (t + 30, LIFT, "status", status(floor=9, occupied=occupied)),
                  (t + 32, LIFT, "status", status(floor=9, door="open", occupied=occupied))]
    return steps


def _parked_shut(start: float, occupied: bool, minutes: int = 10) -> list:
    return [(start + k * 30, LIFT, "status", status(floor=9, occupied=occupied)) for k in range(minutes * 2)]


def test_hard_negative_a_stuck_occupancy_sensor_in_a_car_that_parks_shut() -> None:
    """The sensor says "occupied" through 40 minutes of rides and door openings (nobody
    rides that long), then the car parks shut at a floor: not a trapped passenger."""
    steps = _rides_with_occupancy(T, 40, occupied=True) + _parked_shut(T + 2400, occupied=True)
    assert kinds(play(engine(LIFT), steps + [(T + 3100, "tick")])) == []


def test_a_silent_passenger_after_the_occupancy_sensor_reported_an_empty_car_again() -> None:
    """The same stuck sensor, but it reports an empty car once: trusted again, and a
    passenger who then boards and stays shut in silently is inferred at 3 minutes."""
    steps = _rides_with_occupancy(T, 40, occupied=True) + [(T + 2400, LIFT, "status", status(floor=9, door="open"))]
    steps += [(T + 2410, LIFT, "status", status(floor=9, door="open", occupied=True))]
    steps += _parked_shut(T + 2420, occupied=True)
    assert play(engine(LIFT), steps + [(T + 3100, "tick")])[:1] == [(T + 2420 + 180, "opened", "entrapment", 1)]


def test_a_passenger_who_rode_for_a_while_is_still_inferred() -> None:
    """Occupied through 10 minutes of rides (well under occupancy_stuck_s), then shut in
    silently at a floor: an entrapment at 3 minutes."""
    steps = _rides_with_occupancy(T, 10, occupied=True) + _parked_shut(T + 600, occupied=True)
    assert play(engine(LIFT), steps + [(T + 1300, "tick")])[:1] == [(T + 600 + 180, "opened", "entrapment", 1)]
