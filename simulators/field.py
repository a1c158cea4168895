"""What the field does that the first simulator did not: look-alikes a property
manager recognises as normal (hard negatives), and entrapments seen the way field
practice sees them.

Each type registers in `simulators.scenarios.CATALOGUE` (after the older types, so
their seeded placements stay put) and compiles, like the others, into injected
records, effects and suppressions on a `Book`. Hard negatives carry ``mimics``:
the fault a naive rule would take them for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from simulators.clock import DAY, HOUR, MINUTE, SECOND
from simulators.scenarios import (
    FAULTS,
    HARD_NEGATIVES,
    L1,
    LATER_TYPES,
    Scenario,
    ScenarioType,
    _lift_status,
    _register,
)

Compile = Callable[[Any, str, ScenarioType, str, int, int, random.Random], Scenario]
COMPILERS: dict[str, Compile] = {}
CANDIDATES: dict[str, Callable[[Any], list[str]]] = {}


def _type(name: str, family: str, tier: Any, target: str, hours: tuple[float, float], minutes: tuple[float, float],
          mimics: str | None, description: str, exclusive: bool = True) -> Callable[[Compile], Compile]:
    def register(fn: Compile) -> Compile:
        _register(ScenarioType(name, family, tier, target, hours, minutes, mimics=mimics, description=description,
                               exclusive=exclusive))
        COMPILERS[name] = fn
        LATER_TYPES.append(name)
        (HARD_NEGATIVES if tier is None else FAULTS).append(name)
        return fn

    return register


def _idle(floor: int, **kw: Any) -> dict[str, Any]:
    return _lift_status(floor, **kw) | {"vibration_mg": 1.2}


def _ride(c: Any, lift: str, t: int, a: int, b: int, *, occupied: bool = True) -> int:
    """A ride from a to b with a passenger; returns when the doors closed behind them."""
    book = c.book
    _, speed = c._lift(lift)
    book.inject(t, lift, "telemetry", "status", **_lift_status(a, moving=True, door_zone=False, occupied=occupied, speed=speed,
                                                                direction="up" if b > a else "down") | {"vibration_mg": 10.5})
    arrive = t + int((4 + abs(a - b) * 3.0 / speed) * SECOND)
    book.inject(arrive, lift, "telemetry", "status", **_idle(b, door="open", occupied=occupied))
    book.inject(arrive, lift, "telemetry", "trip", from_floor=a, to_floor=b, duration_s=round((arrive - t) / SECOND, 1),
                door_cycles=1, door_reopens=0)
    book.inject(arrive + 7 * SECOND, lift, "telemetry", "status", **_idle(b))
    return arrive + 7 * SECOND


# --- elevators: entrapments as field practice sees them -------------------------------------------


@_type("lift_entrapment_door", "elevator", L1, "lift", (7, 22), (15, 40), None,
       "the car stops at a floor with a passenger, the passenger asks the doors to open and they do not "
       "(status 'opening' that never reaches 'open', then GB/T 24476 fault 11): a car that cannot release them")
def c_lift_entrapment_door(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, speed = c._lift(lift)
    floor = rng.randint(2, top)
    end = at + dur
    b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
    b.inject(at - 12 * SECOND, lift, "telemetry", "status", **_lift_status(
        floor, moving=True, door_zone=False, occupied=True, speed=speed, direction="down") | {"vibration_mg": 10.0})
    b.inject(at - 2 * SECOND, lift, "telemetry", "status", **_idle(floor, occupied=True))
    t = at
    while t < end:
        b.inject(t, lift, "telemetry", "status", **_idle(floor, door="opening", occupied=True))
        t += 15 * SECOND
    code_at = at + int(rng.uniform(3, 8) * SECOND)
    b.inject(code_at, lift, "event", "fault", code=11, active=True, floor=floor)
    b.inject(end, lift, "event", "fault", code=11, active=False, floor=floor)
    b.inject(end + SECOND, lift, "telemetry", "status", **_idle(floor, door="open", occupied=True))
    b.inject(end + 40 * SECOND, lift, "telemetry", "status", **_idle(floor))
    return c.scenario(sid, st, [lift], at, end, floor=floor, fault_at_s=round((code_at - at) / SECOND, 1))


@_type("lift_entrapment_silent", "elevator", L1, "lift", (7, 22), (15, 40), None,
       "a passenger shut in a car standing in the door zone, who neither presses a button nor gets the doors "
       "open; the controller reports no fault: only the time far beyond any ride tells (3 minutes by default)")
def c_lift_entrapment_silent(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, speed = c._lift(lift)
    floor = rng.randint(2, top)
    end = at + dur
    b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
    b.inject(at - 14 * SECOND, lift, "telemetry", "status", **_lift_status(
        floor, moving=True, door_zone=False, occupied=True, speed=speed, direction="up") | {"vibration_mg": 10.0})
    t = at
    while t < end:
        b.inject(t, lift, "telemetry", "status", **_idle(floor, occupied=True))
        t += 30 * SECOND
    b.inject(end, lift, "telemetry", "status", **_idle(floor, door="open", occupied=True))
    b.inject(end + 40 * SECOND, lift, "telemetry", "status", **_idle(floor))
    return c.scenario(sid, st, [lift], at, end, floor=floor)


# --- elevators: normal things that look like a fault ---------------------------------------------


@_type("lift_slow_rider", "elevator", None, "lift", (7, 22), (2, 2), "lift_entrapment_raw",
       "a passenger boards, the doors shut and the car stands in the door zone for 20-60 s before they press a floor")
def c_lift_slow_rider(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, _ = c._lift(lift)
    floor = rng.randint(1, top)
    wait = int(rng.uniform(20, 60) * SECOND)
    b.suppress(lift, at - 2 * MINUTE, at + 3 * MINUTE, "status", "trip")
    b.inject(at, lift, "telemetry", "status", **_idle(floor, door="open", occupied=True))
    b.inject(at + 6 * SECOND, lift, "telemetry", "status", **_idle(floor, occupied=True))
    b.inject(at + 6 * SECOND + wait // 2, lift, "telemetry", "status", **_idle(floor, occupied=True))
    done = _ride(c, lift, at + 6 * SECOND + wait, floor, 1 if floor > 1 else top)
    return c.scenario(sid, st, [lift], at, done, wait_s=round(wait / SECOND, 1))


@_type("lift_occupancy_flicker", "elevator", None, "lift", (22, 26), (20, 40), "lift_entrapment_raw",
       "an empty car parked with its doors shut, whose occupancy sensor reports somebody for a reading or two now and then")
def c_lift_occupancy_flicker(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, _ = c._lift(lift)
    floor = rng.randint(1, top)
    end = at + dur
    b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
    t, k = at, 0
    while t < end:
        b.inject(t, lift, "telemetry", "status", **_idle(floor, occupied=rng.random() < 0.35 and k % 4 != 3))
        t += int(rng.uniform(20, 45) * SECOND)
        k += 1
    b.inject(end, lift, "telemetry", "status", **_idle(floor))
    return c.scenario(sid, st, [lift], at, end)


@_type("lift_doors_held", "elevator", None, "lift", (8, 21), (2, 4), "lift_entrapment_raw",
       "residents hold the doors open for a neighbour carrying shopping: open and occupied for minutes, doors re-opening")
def c_lift_doors_held(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, _ = c._lift(lift)
    floor = rng.randint(1, top)
    end = at + dur
    b.suppress(lift, at - MINUTE, end + 2 * MINUTE, "status", "trip")
    t = at
    while t < end:
        b.inject(t, lift, "telemetry", "status", **_idle(floor, door="open", occupied=True))
        t += 15 * SECOND
    done = _ride(c, lift, end, floor, 1 if floor > 1 else top)
    return c.scenario(sid, st, [lift], at, done)


@_type("lift_parked_night", "elevator", None, "lift", (0.5, 1), (240, 300), "lift_entrapment_raw",
       "a lift parked at night at the ground floor, doors shut, nobody inside; its load cell drifts a few per cent")
def c_lift_parked_night(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    end = at + dur
    b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
    t = at
    while t < end:
        b.inject(t, lift, "telemetry", "status", **_idle(1) | {"load_pct": round(rng.uniform(3, 8), 1)})
        t += 5 * MINUTE
    return c.scenario(sid, st, [lift], at, end)


@_type("lift_cleaning_inspection", "elevator", None, "lift", (9, 16), (20, 40), "lift_entrapment_silent",
       "a cleaner works in the car with the lift in inspection mode: shut, occupied, standing still for half an hour")
def c_lift_cleaning_inspection(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, _ = c._lift(lift)
    floor = rng.randint(1, top)
    end = at + dur
    b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
    b.inject(at, lift, "event", "service_mode", mode="inspection")
    t = at + 10 * SECOND
    while t < end - MINUTE:
        b.inject(t, lift, "telemetry", "status", **_idle(floor, door="open" if rng.random() < 0.2 else "closed", occupied=True))
        t += MINUTE
    b.inject(end - 30 * SECOND, lift, "telemetry", "status", **_idle(floor, door="open", occupied=True))
    b.inject(end, lift, "event", "service_mode", mode="normal")
    b.inject(end + 20 * SECOND, lift, "telemetry", "status", **_idle(floor))
    return c.scenario(sid, st, [lift], at, end)


@_type("lift_child_alarm_press", "elevator", None, "lift", (8, 20), (2, 2), "lift_alarm_presses",
       "a child presses the alarm button once during an ordinary ride")
def c_lift_child_alarm_press(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, _ = c._lift(lift)
    b.suppress(lift, at - 2 * MINUTE, at + 3 * MINUTE, "status", "trip")
    b.inject(at - 6 * SECOND, lift, "telemetry", "status", **_idle(1, door="open", occupied=True))
    b.inject(at + 3 * SECOND, lift, "event", "alarm_button", floor=1)
    done = _ride(c, lift, at, 1, rng.randint(2, top) if top > 1 else 1)
    return c.scenario(sid, st, [lift], at - 6 * SECOND, done)


@_type("lift_busy_day", "elevator", None, "lift", (0, 0), (1440, 1440), "lift_wear",
       "a day with two and a half times the usual rides (a holiday, a move, a school trip): more door re-opens "
       "from crowding, more running, the machine itself unchanged", exclusive=False)
def c_lift_busy_day(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    day = (at // DAY) * DAY
    c.book.effect(lift, "busy", day, day + DAY, factor=2.5)
    return c.scenario(sid, st, [lift], day, day + DAY, factor=2.5)


# --- doors ----------------------------------------------------------------------------------------


@_type("door_contact_bounce", "access", None, "entrance", (7, 22), (1, 1), "door_forced",
       "a resident badges in; the door closes, rebounds open for 0.3 s and closes again, 24 s after the grant")
def c_door_contact_bounce(c: Any, sid: str, st: ScenarioType, door: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    b.suppress(door, at - 2 * MINUTE, at + 2 * MINUTE, "door", "access")
    b.inject(at, door, "event", "access", result="granted", credential=f"r-{rng.randint(100, 999)}-1", method="card",
             role="resident")
    b.inject(at + 2 * SECOND, door, "event", "door", state="open")
    closed = at + int(rng.uniform(20, 23.5) * SECOND)
    b.inject(closed, door, "event", "door", state="closed")
    b.inject(at + 24 * SECOND, door, "event", "door", state="open")
    b.inject(at + 24 * SECOND + int(rng.uniform(0.2, 0.4) * SECOND), door, "event", "door", state="closed")
    return c.scenario(sid, st, [door], at, at + 25 * SECOND)


@_type("removal_van_door", "access", None, "entrance", (9, 16), (60, 120), "door_held_open",
       "movers carry a household out through the lobby door for an hour or two: each load starts with the "
       "resident's card or the exit button, the door stays open a few minutes at a time; no notice was given")
def c_removal_van_door(c: Any, sid: str, st: ScenarioType, door: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    end = at + dur
    card = f"r-{rng.randint(100, 999)}-1"
    b.suppress(door, at - MINUTE, end + MINUTE, "door", "access")
    t = at
    while t < end - 5 * MINUTE:
        inward = rng.random() < 0.5
        b.inject(t, door, "event", "access", result="granted", credential=card if inward else "exit-button",
                 method="card" if inward else "button", role="resident")
        b.inject(t + 2 * SECOND, door, "event", "door", state="open")
        held = int(rng.uniform(60, 270) * SECOND)
        b.inject(t + 2 * SECOND + held, door, "event", "door", state="closed")
        t += held + int(rng.uniform(2, 6) * MINUTE)
    return c.scenario(sid, st, [door], at, t)


@_type("night_shift_return", "access", None, "entrance", (0, 0), (10, 10), "unusual_hour_access",
       "a resident who works night shifts comes home after midnight with their own card, as on most nights")
def c_night_shift_return(c: Any, sid: str, st: ScenarioType, door: str, at: int, dur: int, rng: random.Random) -> Scenario:
    from simulators.behaviour import EntranceActor

    actor = EntranceActor(c.fleet.by_id[door], [], 1.0)
    cred, hour = actor.night_workers[0]
    day = (at // DAY) * DAY
    when = day + int((hour + rng.uniform(-0.3, 0.3)) * HOUR)
    c.book.effect(door, "night_shift", when, when + MINUTE, worker=0)
    return c.scenario(sid, st, [door], when, when + 30 * SECOND, credential=cred)


@_type("reader_reboot", "access", None, "entrance", (0, 24), (1, 4), "device_offline",
       "the door reader reboots (a firmware update): its connection drops (last will), it is silent a few minutes, "
       "comes back online, reports the door closed and its contact blips open at start-up")
def c_reader_reboot(c: Any, sid: str, st: ScenarioType, door: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    end = at + dur
    b.suppress(door, at, end + 30 * SECOND)
    b.inject(at + 30 * SECOND, door, "status", "offline")  # the broker's last will, about a keep-alive later
    b.inject(end, door, "status", "online")
    b.inject(end + 2 * SECOND, door, "event", "door", state="open")
    b.inject(end + 2 * SECOND + int(rng.uniform(0.1, 0.4) * SECOND), door, "event", "door", state="closed")
    b.inject(end + 5 * SECOND, door, "status", "heartbeat", battery=90.0)
    return c.scenario(sid, st, [door], at, end + 5 * SECOND)


# --- water ----------------------------------------------------------------------------------------


@_type("bath_and_washer", "water", None, "unit", (19, 21.5), (70, 90), "water_burst",
       "a bath fills at 13-16 L/min while the washing machine takes its first fill, then two more fills: "
       "up to 28 L/min, an hour and more of intermittent flow")
def c_bath_and_washer(c: Any, sid: str, st: ScenarioType, meter: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    bath = int(rng.uniform(8, 12) * MINUTE)
    b.effect(meter, "flow_add", at, at + bath, lpm=round(rng.uniform(13, 16), 1))
    for k, start in enumerate((3, 30, 55)):
        t = at + start * MINUTE + int(rng.uniform(0, 2) * MINUTE)
        b.effect(meter, "flow_add", t, t + int(rng.uniform(3, 5) * MINUTE), lpm=round(rng.uniform(8, 12), 1))
    return c.scenario(sid, st, [meter], at, at + dur)


@_type("meter_replaced", "water", None, "unit", (9, 16), (6, 12), "device_offline",
       "the water company swaps the unit's meter: silent for minutes, then its register starts again near zero")
def c_meter_replaced(c: Any, sid: str, st: ScenarioType, meter: str, at: int, dur: int, rng: random.Random) -> Scenario:
    end = at + dur
    c.book.suppress(meter, at, end)
    c.book.effect(meter, "meter_reset", at, end)
    return c.scenario(sid, st, [meter], at, end + 2 * MINUTE)


@_type("pressure_test_notice", "water", None, "building", (9, 14), (60, 120), "supply_loss",
       "the water company pressure-tests the building's risers at 0.9-1.1 MPa for an hour or two, announced a day ahead")
def c_pressure_test_notice(c: Any, sid: str, st: ScenarioType, building_id: str, at: int, dur: int,
                           rng: random.Random) -> Scenario:
    bl = c.fleet.building(building_id)
    end = at + dur
    sensors = [bl.inlet_pressure, *bl.riser_pressure, *bl.unit_pressure]
    for s in sensors:
        c.book.effect(s, "value_set", at, end, value=round(rng.uniform(900, 1100), 1), noise=5.0)
    sc = c.scenario(sid, st, sensors, at, end, building_id=building_id)
    c.notice(sc, "pressure_test", "building", building_id, sensors)
    return sc


# --- elderly --------------------------------------------------------------------------------------


@_type("overnight_guest", "elderly", None, "hub", (18, 20), (0, 0), "elderly_night_wandering",
       "a relative visits in the evening, stays the night on the sofa and leaves in the small hours while the "
       "resident sleeps: the entrance door opens at night with the resident in bed")
def c_overnight_guest(c: Any, sid: str, st: ScenarioType, hub: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    day = (at // DAY) * DAY
    leave = day + DAY + int(rng.uniform(0.5, 4.5) * HOUR)
    for t in (at, leave):
        b.inject(t, hub, "event", "door", door="entrance", state="open")
        b.inject(t + 10 * SECOND, hub, "event", "door", door="entrance", state="closed")
    b.inject(at + 20 * SECOND, hub, "event", "motion", room="hall")
    b.inject(leave - 4 * MINUTE, hub, "event", "motion", room="living_room")
    b.inject(leave - 40 * SECOND, hub, "event", "motion", room="hall")
    return c.scenario(sid, st, [hub], at, leave + 5 * MINUTE, guest_leaves=round((leave - day) / HOUR, 2))


@_type("holiday_no_notice", "elderly", None, "hub", (9, 11), (720, 4320), "elderly_inactivity",
       "the resident goes to stay with family for days and nobody told the property: out by the entrance, nothing "
       "until they come back")
def c_holiday_no_notice(c: Any, sid: str, st: ScenarioType, hub: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    back = (at + dur) // DAY * DAY + int(rng.uniform(15, 18) * HOUR)
    if c.run_end is not None and back > c.run_end - HOUR:
        back = max(at + 6 * HOUR, c.run_end - HOUR)
    b.suppress(hub, at - 5 * MINUTE, back + 5 * MINUTE, "motion", "door", "bed")
    b.inject(at - 2 * MINUTE, hub, "event", "motion", room="hall")
    b.inject(at, hub, "event", "door", door="entrance", state="open")
    b.inject(at + 10 * SECOND, hub, "event", "door", door="entrance", state="closed")
    c._arrival(hub, back)
    return c.scenario(sid, st, [hub], at + 11 * SECOND, back)


# --- any device with an uplink that can drop --------------------------------------------------------


def _uplink_candidates(c: Any) -> list[str]:
    return c.hubs + c.by_kind.get("lift", []) + [d for d in c.by_kind.get("entrance", []) if c.fleet.by_id[d].building_id]


@_type("uplink_store_and_forward", "device", None, "uplink", (0, 24), (4, 10), "device_offline",
       "the device's uplink drops for a few minutes; it keeps recording and uploads what it buffered, oldest first, "
       "when the link is back (late data)")
def c_uplink_store_and_forward(c: Any, sid: str, st: ScenarioType, device: str, at: int, dur: int,
                               rng: random.Random) -> Scenario:
    c.book.outages.append((device, at, at + dur))
    return c.scenario(sid, st, [device], at, at + dur + MINUTE)


CANDIDATES["uplink"] = _uplink_candidates


# --- added later (registered last, so every earlier type keeps its seeded placement) -----------------


@_type("lift_door_zone_flicker", "elevator", None, "lift", (7, 22), (2, 2), "lift_entrapment_raw",
       "a car arrives at a floor with a passenger; while it stands shut in the door zone its door-zone sensor "
       "reports 'outside' for one reading; the doors open and the passenger rides on")
def c_lift_door_zone_flicker(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
    b = c.book
    top, _ = c._lift(lift)
    floor = rng.randint(1, top)
    b.suppress(lift, at - 2 * MINUTE, at + 3 * MINUTE, "status", "trip")
    b.inject(at, lift, "telemetry", "status", **_idle(floor, door="open", occupied=True))
    b.inject(at + 6 * SECOND, lift, "telemetry", "status", **_idle(floor, occupied=True))
    b.inject(at + 14 * SECOND, lift, "telemetry", "status", **_idle(floor, occupied=True, door_zone=False))
    b.inject(at + 22 * SECOND, lift, "telemetry", "status", **_idle(floor, occupied=True))
    done = _ride(c, lift, at + 30 * SECOND, floor, 1 if floor > 1 else top)
    return c.scenario(sid, st, [lift], at, done)


@_type("lift_doors_opening_report", "elevator", None, "lift", (7, 22), (2, 2), "lift_entrapment_door",
       "a terminal that reports every 15 s catches the doors 'opening' as a car with a passenger arrives; "
       "its next report has them open")
def c_lift_doors_opening_report(c: Any, sid: str, st: ScenarioType, lift: str, at: int, dur: int,
                                rng: random.Random) -> Scenario:
    b = c.book
    top, speed = c._lift(lift)
    floor = rng.randint(2, top) if top > 1 else 1
    b.suppress(lift, at - 2 * MINUTE, at + 3 * MINUTE, "status", "trip")
    b.inject(at, lift, "telemetry", "status", **_lift_status(1, moving=True, door_zone=False, occupied=True, speed=speed,
                                                              direction="up") | {"vibration_mg": 10.5})
    arrive = at + int((4 + (floor - 1) * 3.0 / speed) * SECOND)
    b.inject(arrive, lift, "telemetry", "status", **_idle(floor, door="opening", occupied=True))
    b.inject(arrive + 15 * SECOND, lift, "telemetry", "status", **_idle(floor, door="open", occupied=True))
    b.inject(arrive + 30 * SECOND, lift, "telemetry", "status", **_idle(floor))
    return c.scenario(sid, st, [lift], at, arrive + 30 * SECOND)
