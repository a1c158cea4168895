"""Labelled incidents: fault scenarios, hard negatives, their ground truth and notices.

A scenario is placed on a device (or a building) at a local time and
*compiled* into what real devices would send: injected records (a GB/T 24476
fault code, a leak sensor turning wet, a fall event...), value effects (extra
flow, a pressure forced down) and suppressions (a stuck lift makes no trips,
an offline device sends nothing). The ground truth records what happened; a
hard negative looks like a fault but is not one (``expected_tier`` is None),
and the ones announced in advance also produce a machine-readable `Notice`.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.incidents import Tier
from domain.payloads import ELEVATOR_FAULT_CODES
from simulators.behaviour import Effect, HubActor, Record, resident_profile
from simulators.clock import DAY, HOUR, MINUTE, SECOND, iso, weekday
from simulators.fleet import Building, Fleet


@dataclass
class Scenario:
    """One labelled incident (or hard negative) as it goes into the ground-truth file."""

    id: str
    type: str
    family: str
    community_id: str
    building_id: str | None
    devices: list[str]
    expected_tier: Tier | None
    start_ms: int  # UTC epoch ms
    end_ms: int
    hard_negative: bool = False
    mimics: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type, "family": self.family, "community_id": self.community_id,
            "building_id": self.building_id, "devices": self.devices,
            "expected_tier": int(self.expected_tier) if self.expected_tier is not None else None,
            "start": iso(self.start_ms), "end": iso(self.end_ms), "start_ms": self.start_ms, "end_ms": self.end_ms,
            "hard_negative": self.hard_negative, "mimics": self.mimics, "detail": self.detail,
        }


# Which device family a notice silences (None: every family in its scope).
NOTICE_FAMILY: dict[str, str | None] = {
    "water_shutdown": "water", "pressure_test": "water", "inspection": "elevator", "door_hold": "access", "away": None,
}


@dataclass
class Notice:
    """An announcement staff entered before the event: feed it to the detectors as a
    maintenance window (``water_shutdown``, ``pressure_test``, ``inspection``, ``door_hold``) or an away notice."""

    id: str
    type: str  # a key of NOTICE_FAMILY
    community_id: str
    scope: str  # device | building
    scope_id: str
    device_ids: list[str]
    start_ms: int
    end_ms: int
    announced_ms: int
    scenario_id: str

    @property
    def device_family(self) -> str | None:
        """The family this notice silences; an unknown type silences nothing rather than everything."""
        if self.type not in NOTICE_FAMILY:
            raise ValueError(f"notice {self.id}: unknown type {self.type!r}")
        return NOTICE_FAMILY[self.type]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type, "community_id": self.community_id, "scope": self.scope,
            "scope_id": self.scope_id, "device_ids": self.device_ids, "start": iso(self.start_ms),
            "end": iso(self.end_ms), "start_ms": self.start_ms, "end_ms": self.end_ms,
            "announced": iso(self.announced_ms), "announced_ms": self.announced_ms, "scenario_id": self.scenario_id,
        }


@dataclass(frozen=True)
class ScenarioType:
    name: str
    family: str  # elevator | water | access | elderly | device
    tier: Tier | None
    target: str  # what it is placed on: lift | unit | building | entrance | fire_door | hub | device
    hours: tuple[float, float]  # local start window for automatic placement
    minutes: tuple[float, float]  # duration
    mimics: str | None = None
    description: str = ""
    exclusive: bool = True  # False: a slow trend that may share its device with other scenarios

    @property
    def hard_negative(self) -> bool:
        return self.tier is None


L1, L2, L3 = Tier.LIFE_SAFETY, Tier.URGENT, Tier.ROUTINE

# Tier per GB/T 24476 code: entrapments and a passenger's alarm are life safety; a
# stuck landing button is a routine work order; everything else takes the lift out
# of service (urgent).
LIFT_FAULT_TIER: dict[int, Tier] = {code: L2 for code in ELEVATOR_FAULT_CODES} | {7: L1, 8: L1, 14: L3}
LIFT_FAULT_MINUTES: dict[int, tuple[float, float]] = {
    code: (15, 60) for code in ELEVATOR_FAULT_CODES
} | {9: (30, 90), 14: (60, 180), 21: (2, 5), 7: (20, 45), 8: (25, 50)}

CATALOGUE: dict[str, ScenarioType] = {}


def _register(*types: ScenarioType) -> None:
    for t in types:
        CATALOGUE[t.name] = t


_register(*(
    ScenarioType(f"lift_fault_{code}", "elevator", LIFT_FAULT_TIER[code], "lift", (7, 22), LIFT_FAULT_MINUTES[code],
                 description=f"GB/T 24476 code {code}: {text}, sent as a fault event with matching raw status")
    for code, text in ELEVATOR_FAULT_CODES.items()
))
_register(
    ScenarioType("lift_entrapment_raw", "elevator", L1, "lift", (7, 22), (25, 50),
                 description="entrapment without any fault code: stopped outside the door zone, doors closed, "
                             "occupied, no movement (status every 15 s)"),
    ScenarioType("lift_alarm_presses", "elevator", L1, "lift", (7, 22), (20, 40),
                 description="car stopped at a floor with doors shut and a passenger inside pressing the alarm "
                             "button three times; no fault code"),
    ScenarioType("lift_wear", "elevator", L3, "lift", (0, 1), (720, 4320),
                 description="door re-opens and vibration rise steadily over 12 hours to three days on one lift: "
                             "grounds for a proactive maintenance work order", exclusive=False),
    ScenarioType("pump_fault", "water", L2, "building", (6, 20), (60, 240),
                 description="the booster pump reports a fault (overload) and stops; the roof tank drains"),
    ScenarioType("water_burst", "water", L1, "unit", (0, 24), (20, 60),
                 description="flow spike on the unit meter, pressure drop on the unit and its riser, leak sensor wet"),
    ScenarioType("continuous_flow_leak", "water", L2, "unit", (0, 24), (360, 1200),
                 description="1.2-3 l/min that never stops on a unit meter"),
    ScenarioType("night_flow_rise", "water", L3, "unit", (1, 1), (240, 240),
                 description="0.15-0.5 l/min between 01:00 and 05:00 for up to three nights"),
    ScenarioType("supply_loss", "water", L2, "building", (6, 20), (60, 180),
                 description="every pressure sensor of a building near 0 kPa, meters at 0, tank pump runs dry"),
    ScenarioType("door_held_open", "access", L3, "entrance", (8, 20), (10, 25),
                 description="entrance opened with a valid card and not closed"),
    ScenarioType("fire_door_propped", "access", L2, "fire_door", (8, 20), (30, 120),
                 description="stairwell fire door left open"),
    ScenarioType("door_forced", "access", L2, "entrance", (0.5, 4.5), (0.5, 1),
                 description="door opens with no access event before it"),
    ScenarioType("brute_force", "access", L2, "entrance", (0, 24), (1, 4),
                 description="8-12 refused credentials on one reader within minutes"),
    ScenarioType("reader_tamper", "access", L2, "entrance", (0, 24), (5, 30),
                 description="the reader's tamper switch opens (cover removed) and closes again"),
    ScenarioType("unusual_hour_access", "access", L3, "entrance", (3.0, 4.5), (0.5, 0.5),
                 description="a granted access during the door's quiet hours (after the night-shift returns)"),
    ScenarioType("elderly_sos", "elderly", L1, "hub", (7, 21), (15, 15), description="SOS button pressed"),
    ScenarioType("elderly_fall", "elderly", L1, "hub", (8, 20), (30, 60),
                 description="fall event, then no motion until help arrives"),
    ScenarioType("elderly_inactivity", "elderly", L2, "hub", (0, 0), (0, 0),
                 description="not up in the morning: no bed, motion or door activity until a neighbour comes late "
                             "morning; the window starts at the resident's usual waking time"),
    ScenarioType("elderly_night_wandering", "elderly", L2, "hub", (1, 3.5), (15, 40),
                 description="out of bed and out of the entrance door in the middle of the night"),
    ScenarioType("elderly_long_bathroom_night", "elderly", L2, "hub", (23, 27.5), (35, 60),
                 description="bathroom stay of 35-60 minutes at night"),
    ScenarioType("device_offline", "device", L3, "device", (0, 24), (120, 360),
                 description="a device sends nothing at all, heartbeats included"),
    ScenarioType("battery_low", "device", L3, "device", (0, 24), (360, 1200),
                 description="heartbeat battery 4-9 %"),
    ScenarioType("hub_sensor_battery_low", "device", L3, "hub", (0, 1), (240, 240),
                 description="a sensor behind an elderly hub reports 3-8 % battery in its daily report "
                             "(02:00-04:00); the window runs from 02:00 to the end of that day"),
    ScenarioType("stuck_sensor", "device", L3, "device", (0, 24), (480, 1440),
                 description="a pressure sensor repeats one exact value"),
    # Hard negatives: they look like the fault in `mimics` but are not incidents.
    ScenarioType("late_sleep_after_late_night", "elderly", None, "hub", (0, 0), (0, 0), mimics="elderly_inactivity",
                 description="up until 00:30-01:00 on Saturday night, sleeps until about 10:00 on Sunday"),
    ScenarioType("resident_away_notice", "elderly", None, "hub", (9, 11), (480, 2880), mimics="elderly_inactivity",
                 description="resident away from 8 hours to two days, with an away notice"),
    ScenarioType("long_shower", "water", None, "unit", (19.5, 22), (25, 40), mimics="continuous_flow_leak",
                 description="a 25-40 minute shower at 8.5-10 l/min"),
    ScenarioType("lift_inspection", "elevator", None, "lift", (9, 15), (60, 120), mimics="lift_fault_10",
                 description="inspection mode (service_mode event) during which the technician trips faults 10 and 6"),
    ScenarioType("planned_water_shutdown", "water", None, "building", (9, 14), (60, 180), mimics="supply_loss",
                 description="building supply off for works, announced a day ahead"),
    ScenarioType("move_door_hold", "access", None, "entrance", (9, 14), (90, 180), mimics="door_held_open",
                 description="entrance held open for a house move, with notice"),
)

# Types added after the first evaluation are placed after all the others, so that
# adding them did not move the seeded placements (and the published figures) of
# the earlier types.
_register(
    ScenarioType("tailgating", "access", L3, "entrance", (8, 20), (0.5, 0.5),
                 description="one card granted at an entrance with a people counter, which sees two people walk in"),
)
LATER_TYPES = ["tailgating"]

# The order automatic placement draws in (seeded placements of older types stay put).
_FIRST_FAULTS = [name for name, t in CATALOGUE.items() if not t.hard_negative and name not in LATER_TYPES]
_FIRST_HARD_NEGATIVES = [name for name, t in CATALOGUE.items() if t.hard_negative]
# Every type by kind (simulators/field.py adds its own to both lists and to LATER_TYPES).
HARD_NEGATIVES = list(_FIRST_HARD_NEGATIVES)
FAULTS = list(_FIRST_FAULTS) + [name for name in LATER_TYPES if not CATALOGUE[name].hard_negative]


class ScenarioError(ValueError):
    """A scenario that cannot be placed as asked (unknown type, wrong device...)."""


@dataclass
class Book:
    """Compiled scenarios: what each device must send or stop sending, and the labels."""

    fleet: Fleet
    seed: int
    scenarios: list[Scenario] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    effects: dict[str, list[Effect]] = field(default_factory=dict)
    injections: dict[str, list[Record]] = field(default_factory=dict)
    # (device, start, end) local ms: uplink down, records stored and forwarded at the end
    outages: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def offset(self) -> int:
        return self.fleet.utc_offset_hours * HOUR

    def effect(self, device_id: str, kind: str, start: int, end: int, **params: Any) -> None:
        self.effects.setdefault(device_id, []).append(Effect(device_id, kind, start, end, params))

    def suppress(self, device_id: str, start: int, end: int, *types: str) -> None:
        self.effect(device_id, "suppress", start, end, types=frozenset(types) if types else None)

    def inject(self, t: int, device_id: str, stream: str, type_: str, **fields: Any) -> None:
        self.injections.setdefault(device_id, []).append((t, device_id, stream, type_, fields))

    def effects_between(self, device_id: str, start: int, end: int) -> list[Effect]:
        return [e for e in self.effects.get(device_id, ()) if e.start < end and e.end > start]


@dataclass
class Placement:
    """A scripted (or planned) incident. ``day`` counts from the run's first local day;
    ``time`` is local "HH:MM" on that day, or ``at`` an aware datetime; what is left
    out (time, target device or building, duration) the seed chooses."""

    type: str
    day: int = 0
    time: str | None = None
    at: Any = None  # datetime.datetime with a UTC offset
    target: str | None = None
    minutes: float | None = None


def _lift_status(floor: int, *, moving: bool = False, door: str = "closed", door_zone: bool = True,
                 occupied: bool = False, speed: float = 0.0, direction: str = "idle") -> dict[str, Any]:
    return dict(floor=floor, moving=moving, door=door, door_zone=door_zone, occupied=occupied,
                direction=direction, speed_mps=speed)


# Raw status a controller shows with each fault: (moving snapshot or None, stopped snapshot kwargs).
def _fault_status(code: int, floor: int, top: int, speed: float) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    if code == 1:
        return _lift_status(top, moving=True, door_zone=False, speed=speed, direction="up"), \
            _lift_status(top, door_zone=False)
    if code == 2:
        return _lift_status(1, moving=True, door_zone=False, speed=speed, direction="down"), \
            _lift_status(1, door_zone=False)
    if code == 3:
        return _lift_status(floor, moving=True, door_zone=False, occupied=True, speed=round(speed * 1.4, 2),
                            direction="down"), _lift_status(floor, door_zone=False, occupied=True)
    if code == 4:
        return _lift_status(floor, moving=True, door="open", door_zone=False, occupied=True, speed=speed,
                            direction="up"), _lift_status(floor, door="open", door_zone=False, occupied=True)
    if code == 5:
        return _lift_status(floor, moving=True, door="open", door_zone=True, speed=0.3, direction="up"), \
            _lift_status(floor, door="open", door_zone=False)
    if code == 6:
        return None, _lift_status(floor, door_zone=False)
    if code == 7:
        return None, _lift_status(floor, door_zone=True, occupied=True)
    if code == 8:
        return None, _lift_status(floor, door_zone=False, occupied=True)
    if code == 12:
        return None, _lift_status(floor, door="open")
    if code == 15:
        return _lift_status(floor, moving=True, door_zone=False, speed=round(speed * 0.55, 2), direction="up"), \
            _lift_status(floor)
    return None, _lift_status(floor)  # 9, 10, 11, 13, 14, 21: stopped at a floor, doors closed


class Compiler:
    """Turns placements into scenarios, notices, effects and injections in a `Book`."""

    def __init__(self, book: Book, run_start: int, run_end: int | None) -> None:
        self.book = book
        self.fleet = book.fleet
        self.run_start = run_start  # local ms
        self.run_end = run_end
        self.used: set[str] = set()
        self.counter = 0
        self.by_kind: dict[str, list[str]] = {}
        for d in self.fleet.devices:
            self.by_kind.setdefault(d.kind, []).append(d.device_id)
        self.busy: dict[str, list[tuple[int, int]]] = {}
        self.building_ids = {b.building_id for b in self.fleet.buildings}
        self.hubs = self.by_kind.get("home_hub", [])
        self.hub_units = {self.fleet.by_id[h].unit_id for h in self.hubs}

    # --- placement ---------------------------------------------------------------------

    def candidates(self, st: ScenarioType) -> list[str]:
        fleet = self.fleet
        if st.target == "lift":
            return self.by_kind.get("lift", [])
        if st.target == "unit":
            meters = self.by_kind.get("meter", [])
            if st.name == "long_shower":
                return [m for m in meters if fleet.by_id[m].unit_id not in self.hub_units]
            return meters
        if st.target == "building":
            return [b.building_id for b in fleet.buildings]
        if st.target == "entrance":
            return [d for d in self.by_kind.get("entrance", []) if fleet.by_id[d].building_id]
        if st.target == "fire_door":
            return self.by_kind.get("fire_door", [])
        if st.target == "hub":
            return self.hubs
        if st.name == "battery_low":
            return self.by_kind.get("leak", []) + self.by_kind.get("fire_door", []) + self.by_kind.get("entrance", [])
        if st.name == "stuck_sensor":
            return self.by_kind.get("pressure", [])
        if st.target in _field.CANDIDATES:
            return _field.CANDIDATES[st.target](self)
        return [d.device_id for d in fleet.devices if d.kind != "home_hub"]

    def place(self, type_: str, day: int, at: int | None, target: str | None, minutes: float | None,
              rng: random.Random, optional: bool = False) -> Scenario | None:
        """Place one scenario: ``day`` is the absolute local day, ``at`` local ms (None: the seed picks).

        With ``optional`` (automatic planning) a scenario whose time of day cannot fall
        inside the run is skipped (None) rather than placed outside it."""
        st = CATALOGUE.get(type_)
        if st is None:
            raise ScenarioError(f"type {type_!r} is not a scenario type; known: {', '.join(CATALOGUE)}")
        pool = self.candidates(st)
        if target is not None and target not in pool:
            raise ScenarioError(f"target {target!r} cannot carry a {type_} scenario "
                                f"(it needs a {st.target}{': e.g. ' + pool[0] if pool else ''})")
        if not pool:
            raise ScenarioError(f"the fleet has no {st.target} for a {type_} scenario")
        day_start = day * DAY
        # Seed-chosen parts avoid devices already busy with another scenario at that time, so
        # that each scenario's signals stay its own (up to a number of tries, then overlap).
        for attempt in range(40):
            tgt = target
            if tgt is None:
                free = [c for c in pool if c not in self.used]
                tgt = rng.choice(free if free and attempt < 10 else pool)
            when = at
            if when is None:
                h0, h1 = st.hours
                when = day_start + int(rng.uniform(h0, h1) * HOUR)
            mins = minutes if minutes is not None else rng.uniform(*st.minutes)
            lo, hi = self._span(st, day_start, when, mins)
            inside = self.run_end is None or hi - self.MARGIN <= self.run_end
            fits = at is not None or (when >= self.run_start and inside)
            if fits and (not st.exclusive or not self._busy(tgt, lo, hi) or (target is not None and at is not None)):
                break
        else:
            if optional and not fits:
                return None
        target, at, minutes = tgt, when, mins
        self.used.add(target)
        self.counter += 1
        sid = f"S{self.counter:04d}-{type_}"
        sc = getattr(self, f"c_{st.name}", None)
        if sc is None and st.name in _field.COMPILERS:
            field_compiler = _field.COMPILERS[st.name]

            def sc(*args: Any) -> Scenario:
                return field_compiler(self, *args)
        if sc is None:
            sc = self.c_lift_fault if st.name.startswith("lift_fault_") else None
        assert sc is not None, st.name
        scenario: Scenario = sc(sid, st, target, at, int(minutes * MINUTE), rng)
        self.book.scenarios.append(scenario)
        off = self.book.offset
        for dev in ({target, *scenario.devices} if st.exclusive else ()):
            self.busy.setdefault(dev, []).append((scenario.start_ms + off - self.MARGIN,
                                                  scenario.end_ms + off + self.MARGIN))
        return scenario

    MARGIN = 20 * MINUTE

    def _span(self, st: ScenarioType, day_start: int, at: int, minutes: float) -> tuple[int, int]:
        """Roughly when a scenario will touch its devices (local ms), before it is compiled."""
        if st.name == "late_sleep_after_late_night":
            return day_start + 20 * HOUR, day_start + 35 * HOUR
        if st.hours == (0, 0):
            return day_start + 3 * HOUR, day_start + 13 * HOUR
        return at - self.MARGIN, at + int(minutes * MINUTE) + self.MARGIN

    def _busy(self, target: str, lo: int, hi: int) -> bool:
        keys = [target]
        if target in self.building_ids:
            b = self.fleet.building(target)
            keys += [*b.meters, *b.unit_pressure, b.inlet_pressure, b.tank]
        return any(s < hi and e > lo for k in keys for s, e in self.busy.get(k, ()))

    def scenario(self, sid: str, st: ScenarioType, devices: list[str], start: int, end: int,
                 **detail: Any) -> Scenario:
        first = self.fleet.by_id.get(devices[0]) if devices else None
        building = detail.pop("building_id", None) or (first.building_id if first else None)
        community = first.community_id if first else self.fleet.community_ids[0]
        off = self.book.offset
        return Scenario(id=sid, type=st.name, family=st.family, community_id=community, building_id=building,
                        devices=devices, expected_tier=st.tier, start_ms=start - off, end_ms=end - off,
                        hard_negative=st.hard_negative, mimics=st.mimics, detail=detail)

    def notice(self, scenario: Scenario, type_: str, scope: str, scope_id: str, devices: list[str],
               margin: int = 0) -> None:
        """The announcement, a day ahead, covering the scenario's window widened by ``margin``."""
        start = scenario.start_ms - margin
        self.book.notices.append(Notice(
            id=f"N-{scenario.id}", type=type_, community_id=scenario.community_id, scope=scope, scope_id=scope_id,
            device_ids=devices, start_ms=start, end_ms=scenario.end_ms + margin,
            announced_ms=start - DAY, scenario_id=scenario.id))

    # --- elevators ----------------------------------------------------------------------

    def _lift(self, lift: str) -> tuple[int, float]:
        d = self.fleet.by_id[lift]
        return int(d.attributes.get("floors", 6)), float(d.attributes.get("rated_speed_mps", 1.0))

    def c_lift_fault(self, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
        b = self.book
        code = int(st.name.rsplit("_", 1)[1])
        top, speed = self._lift(lift)
        floor = rng.randint(2, top)
        end = at + dur
        moving, stopped = _fault_status(code, floor, top, speed)
        if code not in (14, 21):  # a stuck button or an alarm press leave the lift in service
            b.suppress(lift, at - 30 * SECOND, end + 30 * SECOND, "status", "trip")
        if moving is not None:
            b.inject(at - 2 * SECOND, lift, "telemetry", "status", **moving)
        fault_floor = stopped["floor"]
        b.inject(at, lift, "event", "fault", code=code, active=True, floor=fault_floor)
        if code == 21:
            b.inject(at - SECOND, lift, "event", "alarm_button", floor=fault_floor)
        if code not in (14, 21):
            t = at + SECOND
            while t < end:
                b.inject(t, lift, "telemetry", "status", **stopped)
                t += MINUTE
        b.inject(end, lift, "event", "fault", code=code, active=False, floor=fault_floor)
        if code not in (14, 21):
            b.inject(end + 5 * SECOND, lift, "telemetry", "status", **_lift_status(fault_floor))
        return self.scenario(sid, st, [lift], at, end, code=code, floor=fault_floor)

    def c_lift_wear(self, sid: str, st: ScenarioType, lift: str, at: int, dur: int, rng: random.Random) -> Scenario:
        end = at + dur
        self.book.effect(lift, "wear", at, end)
        return self.scenario(sid, st, [lift], at, end, signals=["door_reopens", "vibration_mg"])

    def c_lift_entrapment_raw(self, sid: str, st: ScenarioType, lift: str, at: int, dur: int,
                              rng: random.Random) -> Scenario:
        b = self.book
        top, speed = self._lift(lift)
        floor = rng.randint(2, top)
        end = at + dur
        b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
        b.inject(at - 12 * SECOND, lift, "telemetry", "status", **_lift_status(
            floor, moving=True, door_zone=False, occupied=True, speed=speed, direction="down"))
        t = at
        while t < end:
            b.inject(t, lift, "telemetry", "status", **_lift_status(floor, door_zone=False, occupied=True))
            t += 15 * SECOND
        # Released by the rescuers: car brought to the floor by hand, doors opened.
        b.inject(end, lift, "telemetry", "status", **_lift_status(floor, door="open", occupied=True))
        b.inject(end + 40 * SECOND, lift, "telemetry", "status", **_lift_status(floor))
        return self.scenario(sid, st, [lift], at, end, floor=floor)

    def c_lift_alarm_presses(self, sid: str, st: ScenarioType, lift: str, at: int, dur: int,
                             rng: random.Random) -> Scenario:
        b = self.book
        top, _ = self._lift(lift)
        floor = rng.randint(1, top)
        end = at + dur
        b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
        t = at
        while t < end:
            b.inject(t, lift, "telemetry", "status", **_lift_status(floor, occupied=True))
            t += 15 * SECOND
        for k in range(3):
            b.inject(at + (30 + 40 * k) * SECOND, lift, "event", "alarm_button", floor=floor)
        b.inject(end, lift, "telemetry", "status", **_lift_status(floor, door="open", occupied=True))
        b.inject(end + 30 * SECOND, lift, "telemetry", "status", **_lift_status(floor))
        return self.scenario(sid, st, [lift], at, end, floor=floor, presses=3)

    def c_lift_inspection(self, sid: str, st: ScenarioType, lift: str, at: int, dur: int,
                          rng: random.Random) -> Scenario:
        b = self.book
        top, _ = self._lift(lift)
        end = at + dur
        b.suppress(lift, at - MINUTE, end + MINUTE, "status", "trip")
        b.inject(at, lift, "event", "service_mode", mode="inspection")
        t, floor = at + MINUTE, 1
        while t < end - MINUTE:
            nxt = rng.randint(1, top)
            b.inject(t, lift, "telemetry", "status", **_lift_status(
                floor, moving=True, door_zone=False, speed=0.3, direction="up" if nxt > floor else "down"))
            floor = nxt
            b.inject(t + 40 * SECOND, lift, "telemetry", "status", **_lift_status(floor, door="open"))
            t += int(rng.uniform(3, 8) * MINUTE)
        for code, t0, t1 in ((10, at + 5 * MINUTE, at + 7 * MINUTE), (6, at + 15 * MINUTE, at + 16 * MINUTE)):
            if t1 < end:
                b.inject(t0, lift, "event", "fault", code=code, active=True, floor=floor)
                b.inject(t1, lift, "event", "fault", code=code, active=False, floor=floor)
        b.inject(end, lift, "event", "service_mode", mode="normal")
        b.inject(end + SECOND, lift, "telemetry", "status", **_lift_status(floor))
        sc = self.scenario(sid, st, [lift], at, end)
        self.notice(sc, "inspection", "device", lift, [lift])
        return sc

    # --- water --------------------------------------------------------------------------

    def _unit(self, meter: str) -> tuple[str, str, str, Building]:
        d = self.fleet.by_id[meter]
        assert d.unit_id and d.building_id
        building = self.fleet.building(d.building_id)
        riser = building.riser_pressure[int(d.attributes.get("riser", 1)) - 1]
        return f"{d.unit_id}-pressure", f"{d.unit_id}-leak", riser, building

    def c_water_burst(self, sid: str, st: ScenarioType, meter: str, at: int, dur: int, rng: random.Random) -> Scenario:
        b = self.book
        pressure, leak, riser, _ = self._unit(meter)
        end = at + dur
        b.effect(meter, "flow_add", at, end, lpm=round(rng.uniform(45, 80), 1))
        b.effect(pressure, "value_set", at, end, value=round(rng.uniform(90, 150), 1), noise=8.0)
        b.effect(riser, "value_set", at, end, value=round(rng.uniform(170, 220), 1), noise=6.0)
        b.suppress(leak, at - HOUR, end + 3 * HOUR, "leak")
        b.inject(at + int(rng.uniform(20, 90) * SECOND), leak, "event", "leak", wet=True)
        b.inject(end + int(rng.uniform(60, 150) * MINUTE), leak, "event", "leak", wet=False)
        return self.scenario(sid, st, [meter, leak, pressure, riser], at, end)

    def c_continuous_flow_leak(self, sid: str, st: ScenarioType, meter: str, at: int, dur: int,
                               rng: random.Random) -> Scenario:
        end = at + dur
        lpm = round(rng.uniform(1.2, 3.0), 2)
        self.book.effect(meter, "flow_add", at, end, lpm=lpm)
        return self.scenario(sid, st, [meter], at, end, lpm=lpm)

    def c_long_shower(self, sid: str, st: ScenarioType, meter: str, at: int, dur: int, rng: random.Random) -> Scenario:
        end = at + dur
        lpm = round(rng.uniform(8.5, 10.0), 2)
        self.book.effect(meter, "flow_add", at, end, lpm=lpm)
        return self.scenario(sid, st, [meter], at, end, lpm=lpm)

    def c_night_flow_rise(self, sid: str, st: ScenarioType, meter: str, at: int, dur: int,
                          rng: random.Random) -> Scenario:
        day = at // DAY
        first = day * DAY + HOUR  # 01:00
        nights = 3
        if self.run_end is not None:
            nights = max(1, min(3, (self.run_end - first - 4 * HOUR) // DAY + 1))
        lpm = round(rng.uniform(0.15, 0.5), 2)
        for n in range(nights):
            self.book.effect(meter, "flow_add", first + n * DAY, first + n * DAY + 4 * HOUR, lpm=lpm)
        return self.scenario(sid, st, [meter], first, first + (nights - 1) * DAY + 4 * HOUR, lpm=lpm, nights=nights,
                             night_window="01:00-05:00 local")

    def _supply_off(self, building_id: str, at: int, end: int, rng: random.Random) -> list[str]:
        b = self.book
        bl = self.fleet.building(building_id)
        sensors = [bl.inlet_pressure, *bl.riser_pressure, *bl.unit_pressure]
        for s in sensors:
            b.effect(s, "value_set", at, end, value=round(rng.uniform(3, 12), 1), noise=2.0)
        for m in bl.meters:
            b.effect(m, "flow_zero", at, end)
        b.effect(bl.tank, "flow_zero", at, end)
        return [*sensors, *bl.meters, bl.tank, bl.pump]

    def c_pump_fault(self, sid: str, st: ScenarioType, building_id: str, at: int, dur: int,
                     rng: random.Random) -> Scenario:
        b = self.book
        bl = self.fleet.building(building_id)
        end = at + dur
        b.suppress(bl.pump, at - MINUTE, end + MINUTE, "pump")
        b.inject(at, bl.pump, "event", "pump", state="fault", fault_code="overload")
        b.inject(end, bl.pump, "event", "pump", state="stopped")
        # The tank is not refilled while the pump is down: it drains with demand.
        b.effect(bl.tank, "flow_zero", at, end)
        return self.scenario(sid, st, [bl.pump, bl.tank], at, end, building_id=building_id)

    def c_supply_loss(self, sid: str, st: ScenarioType, building_id: str, at: int, dur: int,
                      rng: random.Random) -> Scenario:
        end = at + dur
        devices = self._supply_off(building_id, at, end, rng)
        return self.scenario(sid, st, devices, at, end, building_id=building_id)

    def c_planned_water_shutdown(self, sid: str, st: ScenarioType, building_id: str, at: int, dur: int,
                                 rng: random.Random) -> Scenario:
        end = at + dur
        devices = self._supply_off(building_id, at, end, rng)
        sc = self.scenario(sid, st, devices, at, end, building_id=building_id)
        self.notice(sc, "water_shutdown", "building", building_id, devices)
        return sc

    # --- access -------------------------------------------------------------------------

    def c_door_held_open(self, sid: str, st: ScenarioType, door: str, at: int, dur: int,
                         rng: random.Random) -> Scenario:
        b = self.book
        end = at + dur
        b.suppress(door, at - MINUTE, end + MINUTE, "door")
        b.inject(at - 2 * SECOND, door, "event", "access", result="granted", credential=f"r-{rng.randint(100, 999)}-1",
                 method="card", role="resident")
        b.inject(at, door, "event", "door", state="open")
        b.inject(end, door, "event", "door", state="closed")
        return self.scenario(sid, st, [door], at, end)

    def c_move_door_hold(self, sid: str, st: ScenarioType, door: str, at: int, dur: int,
                         rng: random.Random) -> Scenario:
        sc = self.c_door_held_open(sid, st, door, at, dur, rng)
        self.notice(sc, "door_hold", "device", door, [door])
        return sc

    def c_fire_door_propped(self, sid: str, st: ScenarioType, door: str, at: int, dur: int,
                            rng: random.Random) -> Scenario:
        b = self.book
        end = at + dur
        b.suppress(door, at - MINUTE, end + MINUTE, "door")
        b.inject(at, door, "event", "door", state="open")
        b.inject(end, door, "event", "door", state="closed")
        return self.scenario(sid, st, [door], at, end)

    def c_door_forced(self, sid: str, st: ScenarioType, door: str, at: int, dur: int, rng: random.Random) -> Scenario:
        b = self.book
        end = at + max(dur, 20 * SECOND)
        b.suppress(door, at - 3 * MINUTE, end + 3 * MINUTE, "door", "access")
        b.inject(at, door, "event", "door", state="open")
        b.inject(end, door, "event", "door", state="closed")
        return self.scenario(sid, st, [door], at, end)

    def c_brute_force(self, sid: str, st: ScenarioType, door: str, at: int, dur: int, rng: random.Random) -> Scenario:
        b = self.book
        n = rng.randint(8, 12)
        b.suppress(door, at - MINUTE, at + dur + MINUTE, "door", "access")
        t = at
        for _ in range(n):
            b.inject(t, door, "event", "access", result="denied", credential=f"x-{rng.getrandbits(24):06x}",
                     method=rng.choice(("card", "pin")), role="unknown")
            t += int(rng.uniform(5, 20) * SECOND)
        return self.scenario(sid, st, [door], at, t, attempts=n)

    def c_reader_tamper(self, sid: str, st: ScenarioType, door: str, at: int, dur: int,
                        rng: random.Random) -> Scenario:
        self.book.inject(at, door, "event", "tamper", active=True)
        self.book.inject(at + dur, door, "event", "tamper", active=False)
        return self.scenario(sid, st, [door], at, at + dur)

    def c_tailgating(self, sid: str, st: ScenarioType, door: str, at: int, dur: int, rng: random.Random) -> Scenario:
        b = self.book
        b.suppress(door, at - 2 * MINUTE, at + 2 * MINUTE, "door", "access")
        b.inject(at, door, "event", "access", result="granted", credential=f"r-{rng.randint(100, 999)}-1",
                 method="card", role="resident")
        b.inject(at + 2 * SECOND, door, "event", "door", state="open")
        b.inject(at + 7 * SECOND, door, "event", "passage", count=2, direction="in")
        b.inject(at + 10 * SECOND, door, "event", "door", state="closed")
        return self.scenario(sid, st, [door], at, at + 10 * SECOND)

    def c_unusual_hour_access(self, sid: str, st: ScenarioType, door: str, at: int, dur: int,
                              rng: random.Random) -> Scenario:
        b = self.book
        b.suppress(door, at - 10 * MINUTE, at + 10 * MINUTE, "door", "access")
        b.inject(at, door, "event", "access", result="granted", credential=f"r-{rng.randint(100, 999)}-2",
                 method="card", role="resident")
        b.inject(at + 2 * SECOND, door, "event", "door", state="open")
        b.inject(at + 11 * SECOND, door, "event", "door", state="closed")
        return self.scenario(sid, st, [door], at, at + 11 * SECOND)

    # --- elderly ------------------------------------------------------------------------

    ROUTINE = ("motion", "door", "bed")

    def c_elderly_sos(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int, rng: random.Random) -> Scenario:
        self.book.inject(at, hub, "event", "sos")
        return self.scenario(sid, st, [hub], at, at + dur)

    def c_elderly_fall(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int, rng: random.Random) -> Scenario:
        b = self.book
        end = at + dur
        room = rng.choice(("bathroom", "kitchen", "living_room", "bedroom"))
        b.suppress(hub, at - 2 * MINUTE, end + 2 * MINUTE, *self.ROUTINE)
        b.inject(at - MINUTE, hub, "event", "motion", room=room)
        b.inject(at, hub, "event", "fall", confidence=round(rng.uniform(0.82, 0.98), 2))
        self._arrival(hub, end, room)
        return self.scenario(sid, st, [hub], at, end, room=room)

    def _arrival(self, hub: str, t: int, room: str = "living_room") -> None:
        """Somebody (carer, neighbour, the resident) comes in through the entrance."""
        b = self.book
        b.inject(t, hub, "event", "door", door="entrance", state="open")
        b.inject(t + 10 * SECOND, hub, "event", "door", door="entrance", state="closed")
        b.inject(t + 20 * SECOND, hub, "event", "motion", room="hall")
        b.inject(t + 80 * SECOND, hub, "event", "motion", room=room)

    def c_elderly_inactivity(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int,
                             rng: random.Random) -> Scenario:
        b = self.book
        day = at // DAY
        usual = day * DAY + int(resident_profile(self.book.seed, hub).wake * MINUTE)
        found = day * DAY + int(rng.uniform(11, 12.5) * HOUR)
        b.suppress(hub, usual - 90 * MINUTE, found + 2 * MINUTE, *self.ROUTINE)
        self._arrival(hub, found, "bedroom")
        b.inject(found + 2 * MINUTE, hub, "event", "bed", occupied=False)
        return self.scenario(sid, st, [hub], usual, found)

    def c_elderly_night_wandering(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int,
                                  rng: random.Random) -> Scenario:
        b = self.book
        end = at + dur
        b.suppress(hub, at - 15 * MINUTE, end + 15 * MINUTE, *self.ROUTINE)
        b.inject(at - 3 * MINUTE, hub, "event", "bed", occupied=False)
        b.inject(at - 2 * MINUTE, hub, "event", "motion", room="bedroom")
        b.inject(at - MINUTE, hub, "event", "motion", room="hall")
        b.inject(at, hub, "event", "door", door="entrance", state="open")
        b.inject(at + 15 * SECOND, hub, "event", "door", door="entrance", state="closed")
        b.inject(end, hub, "event", "door", door="entrance", state="open")
        b.inject(end + 15 * SECOND, hub, "event", "door", door="entrance", state="closed")
        b.inject(end + 30 * SECOND, hub, "event", "motion", room="hall")
        b.inject(end + 3 * MINUTE, hub, "event", "motion", room="bedroom")
        b.inject(end + 5 * MINUTE, hub, "event", "bed", occupied=True)
        return self.scenario(sid, st, [hub], at, end)

    def c_elderly_long_bathroom_night(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int,
                                      rng: random.Random) -> Scenario:
        b = self.book
        b.suppress(hub, at - 20 * MINUTE, at + dur + 20 * MINUTE, *self.ROUTINE)
        out: list[Record] = []
        HubActor(self.fleet.by_id[hub], self.book.seed).night_trip(out, at, rng, minutes=dur / MINUTE)
        for t, did, stream, type_, fields in out:
            b.inject(t, did, stream, type_, **fields)
        return self.scenario(sid, st, [hub], at + 50 * SECOND, at + 50 * SECOND + dur)

    def c_late_sleep_after_late_night(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int,
                                      rng: random.Random) -> Scenario:
        b = self.book
        day = at // DAY  # the Saturday (or the night before the lie-in)
        sunday = (day + 1) * DAY
        evening = day * DAY + 20 * HOUR
        asleep = sunday + int(rng.uniform(0.5, 1.0) * HOUR)
        up = sunday + int(rng.uniform(9.8, 10.5) * HOUR)
        b.suppress(hub, evening, up + 30 * MINUTE, *self.ROUTINE)
        t = evening
        while t < asleep - 15 * MINUTE:
            b.inject(t, hub, "event", "motion", room="living_room")
            t += int(rng.uniform(3, 7) * MINUTE)
        b.inject(asleep - 14 * MINUTE, hub, "event", "door", door="bathroom", state="open")
        b.inject(asleep - 14 * MINUTE + 6 * SECOND, hub, "event", "door", door="bathroom", state="closed")
        b.inject(asleep - 13 * MINUTE, hub, "event", "motion", room="bathroom")
        b.inject(asleep - 5 * MINUTE, hub, "event", "door", door="bathroom", state="open")
        b.inject(asleep - 5 * MINUTE + 4 * SECOND, hub, "event", "door", door="bathroom", state="closed")
        b.inject(asleep - 3 * MINUTE, hub, "event", "motion", room="bedroom")
        b.inject(asleep, hub, "event", "bed", occupied=True)
        b.inject(up, hub, "event", "bed", occupied=False)
        b.inject(up + MINUTE, hub, "event", "motion", room="bedroom")
        b.inject(up + 5 * MINUTE, hub, "event", "motion", room="bathroom")
        b.inject(up + 20 * MINUTE, hub, "event", "motion", room="kitchen")
        b.inject(up + 28 * MINUTE, hub, "event", "motion", room="kitchen")
        usual = sunday + int(resident_profile(self.book.seed, hub).wake * MINUTE)
        return self.scenario(sid, st, [hub], usual, up, asleep=iso(asleep - self.book.offset))

    def c_resident_away_notice(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int,
                               rng: random.Random) -> Scenario:
        b = self.book
        back = at + dur
        if dur >= DAY:  # back on the afternoon of the last day
            back = (back // DAY) * DAY + int(rng.uniform(15, 18) * HOUR)
        if self.run_end is not None and back > self.run_end - HOUR:
            back = max(at + 6 * HOUR, self.run_end - HOUR)
        b.suppress(hub, at - 5 * MINUTE, back + 5 * MINUTE, *self.ROUTINE)
        b.inject(at - 2 * MINUTE, hub, "event", "motion", room="hall")
        b.inject(at, hub, "event", "door", door="entrance", state="open")
        b.inject(at + 10 * SECOND, hub, "event", "door", door="entrance", state="closed")
        self._arrival(hub, back)
        sc = self.scenario(sid, st, [hub], at + 11 * SECOND, back)  # away once the door has shut behind them
        self.notice(sc, "away", "device", hub, [hub], margin=30 * MINUTE)
        return sc

    # --- every device -------------------------------------------------------------------

    def c_device_offline(self, sid: str, st: ScenarioType, device: str, at: int, dur: int,
                         rng: random.Random) -> Scenario:
        self.book.suppress(device, at, at + dur)
        return self.scenario(sid, st, [device], at, at + dur)

    def c_battery_low(self, sid: str, st: ScenarioType, device: str, at: int, dur: int, rng: random.Random) -> Scenario:
        pct = round(rng.uniform(4, 9), 1)
        self.book.effect(device, "battery", at, at + dur, pct=pct)
        return self.scenario(sid, st, [device], at, at + dur, battery=pct)

    def c_hub_sensor_battery_low(self, sid: str, st: ScenarioType, hub: str, at: int, dur: int,
                                 rng: random.Random) -> Scenario:
        from simulators.fleet import HUB_SENSORS

        sensor = rng.choice(HUB_SENSORS)
        pct = round(rng.uniform(3, 8), 1)
        # Hubs report their sensors once a day between 02:00 and 04:00.
        start = (at // DAY) * DAY
        self.book.effect(hub, "sensor_battery", start, start + DAY, sensor=sensor, pct=pct)
        return self.scenario(sid, st, [hub], start + 2 * HOUR, start + DAY, sensor=sensor, battery=pct)

    def c_stuck_sensor(self, sid: str, st: ScenarioType, device: str, at: int, dur: int,
                       rng: random.Random) -> Scenario:
        nominal = float(self.fleet.by_id[device].attributes.get("nominal_kpa", 350.0))
        value = round(nominal - rng.uniform(5, 30), 1)
        self.book.effect(device, "value_set", at, at + dur, value=value, noise=0.0)
        return self.scenario(sid, st, [device], at, at + dur, value=value)


def auto_placements(seed: int, first_day: int, days: int, *, per_type: int = 1,
                    include_hard_negatives: bool = True, types: list[str] | None = None) -> list[Placement]:
    """One placement per scenario type (``per_type`` of each) spread over the run's days
    (``first_day`` is the absolute local day the run starts on, for finding a Saturday)."""
    rng = random.Random(f"{seed}:plan")
    names = types if types is not None else (
        _FIRST_FAULTS + (_FIRST_HARD_NEGATIVES if include_hard_negatives else [])
        + [n for n in LATER_TYPES if include_hard_negatives or not CATALOGUE[n].hard_negative])
    out: list[Placement] = []
    for name in names:
        for _ in range(per_type):
            if name == "late_sleep_after_late_night":
                if days < 2:  # the lie-in is the morning after: it needs two days
                    continue
                saturdays = [d for d in range(days - 1) if weekday(first_day + d) == 5]
                day = rng.choice(saturdays) if saturdays else rng.randrange(max(1, days - 1))
            elif name == "elderly_long_bathroom_night" or name in ("resident_away_notice",):
                day = rng.randrange(max(1, days - 1))
            else:
                day = rng.randrange(days)
            out.append(Placement(type=name, day=day))
    return out


def daily_placements(seed: int, day: int, count: int) -> list[Placement]:
    """For endless (live) runs: ``count`` random incidents a day, hard negatives included."""
    rng = random.Random(f"{seed}:daily:{day}")
    short = [n for n in CATALOGUE if n not in ("night_flow_rise", "resident_away_notice", "battery_low",
                                               "hub_sensor_battery_low", "late_sleep_after_late_night")]
    return [Placement(type=rng.choice(short), day=day) for _ in range(count)]


# --- scenario files (TOML) ------------------------------------------------------------------


@dataclass
class ScenarioFile:
    simulation: dict[str, Any]
    incidents: list[dict[str, Any]]
    path: str


SIMULATION_KEYS = {"seed", "preset", "devices", "days", "start", "auto", "hard_negatives", "heartbeat_s"}
INCIDENT_KEYS = {"type", "day", "time", "at", "target", "minutes"}


def load_scenario_file(path: str | Path) -> ScenarioFile:
    """Read and check a scenario file; errors name the file, the incident and the field."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read: {exc}") from None
    unknown = set(data) - {"simulation", "incident"}
    if unknown:
        raise ScenarioError(f"{p}: unknown section(s) {sorted(unknown)}; expected [simulation] and [[incident]]")
    sim = data.get("simulation", {})
    if not isinstance(sim, dict):
        raise ScenarioError(f"{p}: [simulation] must be a table")
    bad = set(sim) - SIMULATION_KEYS
    if bad:
        raise ScenarioError(f"{p}: simulation: unknown field(s) {sorted(bad)}; allowed {sorted(SIMULATION_KEYS)}")
    incidents = data.get("incident", [])
    if not isinstance(incidents, list):
        raise ScenarioError(f"{p}: incident must be an array of tables ([[incident]])")
    for i, inc in enumerate(incidents):
        where = f"{p}: incident[{i}]"
        bad = set(inc) - INCIDENT_KEYS
        if bad:
            raise ScenarioError(f"{where}: unknown field(s) {sorted(bad)}; allowed {sorted(INCIDENT_KEYS)}")
        if "type" not in inc:
            raise ScenarioError(f"{where}: field 'type' is required")
        if inc["type"] not in CATALOGUE:
            raise ScenarioError(f"{where}: type {inc['type']!r} is unknown; known: {', '.join(CATALOGUE)}")
        if "at" in inc and ("day" in inc or "time" in inc):
            raise ScenarioError(f"{where}: give either 'at' (a datetime) or 'day' and 'time', not both")
        if "day" in inc and (not isinstance(inc["day"], int) or inc["day"] < 0):
            raise ScenarioError(f"{where}: field 'day' must be a day number from 0, got {inc['day']!r}")
        if "time" in inc:
            _parse_hhmm(inc["time"], f"{where}: field 'time'")
        if "minutes" in inc and (not isinstance(inc["minutes"], (int, float)) or inc["minutes"] <= 0):
            raise ScenarioError(f"{where}: field 'minutes' must be a positive number, got {inc['minutes']!r}")
        if "target" in inc and not isinstance(inc["target"], str):
            raise ScenarioError(f"{where}: field 'target' must be a device or building id")
    return ScenarioFile(simulation=sim, incidents=incidents, path=str(p))


def _parse_hhmm(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise ScenarioError(f"{where} must be \"HH:MM\", got {value!r}")
    try:
        hh, mm = value.split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise ScenarioError(f"{where} must be \"HH:MM\", got {value!r}") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ScenarioError(f"{where} is out of range: {value!r}")
    return (h * 60 + m) * MINUTE


def file_placements(sf: ScenarioFile) -> list[Placement]:
    return [Placement(type=inc["type"], day=int(inc.get("day", 0)), time=inc.get("time"), at=inc.get("at"),
                      target=inc.get("target"), minutes=float(inc["minutes"]) if "minutes" in inc else None)
            for inc in sf.incidents]


def parse_hhmm(value: Any, where: str = "time") -> int:
    """Local "HH:MM" as milliseconds after midnight."""
    return _parse_hhmm(value, where)


# Field behaviours and the look-alikes a property manager knows (registers its types).
from simulators import field as _field  # noqa: E402
