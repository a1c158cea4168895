"""Normal behaviour, one actor per device (the tank and its pump share one).

An actor produces one local day at a time as a list of records
``(local_ms, device_id, stream, type, fields)``. It keeps the state that must
carry over midnight (a meter's register, a tank's level); everything random
comes from a per-(actor, day) RNG, so traffic is a function of the seed.

Scenario *effects* change values (extra flow, a pressure forced down, a low
battery); scenario *injections* and *suppressions* are applied by the engine.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.devices import Device
from simulators.clock import (
    ACCESS_WEEKDAY,
    ACCESS_WEEKEND,
    DAY,
    HOUR,
    LIFT_WEEKDAY,
    LIFT_WEEKEND,
    MINUTE,
    SECOND,
    WATER_WEEKDAY,
    WATER_WEEKEND,
    demand,
    hourly_times,
    is_weekend,
    poisson,
    weekday,
)
from simulators.fleet import HUB_SENSORS, Building

Record = tuple[int, str, str, str, dict[str, Any]]  # local_ms, device_id, stream, type, fields


@dataclass(frozen=True)
class Effect:
    """A change to a device's behaviour during [start, end) (local ms).

    kinds: ``wear`` (a lift's door re-opens and vibration grow towards the end),
    ``busy`` (a lift's calls times ``factor``), ``meter_reset`` (a meter replaced: its
    register starts again near zero at ``end``), ``night_shift`` (an entrance's
    night-shift ``worker`` comes home at ``start``),
    ``suppress`` (drop the device's own records of ``params["types"]``,
    all of them, heartbeats included, when absent), ``flow_add`` (``lpm`` on a
    meter), ``flow_zero`` (no water), ``value_set`` (a sensor reads ``value`` ±
    ``noise``), ``battery`` (heartbeat battery ``pct``), ``sensor_battery``
    (a hub sensor's battery ``pct``).
    """

    device_id: str
    kind: str
    start: int
    end: int
    params: dict[str, Any] = field(default_factory=dict)


EffectLookup = Callable[[str, int, int], list[Effect]]  # device_id, start, end -> overlapping effects


def _active(effects: list[Effect], kind: str, t: int) -> Effect | None:
    for e in effects:
        if e.kind == kind and e.start <= t < e.end:
            return e
    return None


class Actor:
    key: str
    devices: tuple[Device, ...]

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        raise NotImplementedError


# --- elevators ------------------------------------------------------------------------------


class LiftActor(Actor):
    """Trips from daily traffic: down in the morning, up in the evening, flatter at weekends."""

    KEEPALIVE = 5 * MINUTE
    FLOOR_M = 3.0

    def __init__(self, device: Device, building: Building, lifts_in_building: int) -> None:
        self.key = device.device_id
        self.devices = (device,)
        self.lift = device
        self.floors = building.floors
        self.speed = float(device.attributes.get("rated_speed_mps", 1.0))
        self.served = max(1, len(building.units) // lifts_in_building)
        self.floor = 1

    def travel_ms(self, a: int, b: int) -> int:
        return int((4.0 + abs(a - b) * self.FLOOR_M / self.speed) * SECOND)

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        did = self.lift.device_id
        rates = LIFT_WEEKEND if is_weekend(d) else LIFT_WEEKDAY
        eff = effects(did, start, start + DAY)
        busy = next((e for e in eff if e.kind == "busy"), None)
        calls = hourly_times(rng, start, rates, self.served * (float(busy.params["factor"]) if busy else 1.0))
        wear = [e for e in eff if e.kind == "wear"]
        out: list[Record] = []
        busy_until = start
        for t in calls:
            t = max(t, busy_until)
            hour = ((t - start) // HOUR) % 24
            home = rng.randint(2, self.floors) if self.floors > 1 else 1
            if 6 <= hour < 10:
                a, b = (home, 1) if rng.random() < 0.8 else (1, home)
            elif 16 <= hour < 21:
                a, b = (1, home) if rng.random() < 0.8 else (home, 1)
            else:
                a, b = (home, 1) if rng.random() < 0.5 else (1, home)
            if rng.random() < 0.06:  # a neighbour visit, a trip to the roof, ...
                b = rng.randint(1, self.floors)
                if b == a:
                    b = 1 if a != 1 else self.floors
            # Wear (a scenario) makes door re-opens and vibration creep up over days.
            worn = 0.0
            for e in wear:
                if e.start <= t < e.end:
                    worn = (t - e.start) / (e.end - e.start)
            if self.floor != a:  # fetch the car empty
                out.append((t, did, "telemetry", "status", dict(
                    floor=self.floor, moving=True, door="closed", door_zone=False, occupied=False,
                    direction="up" if a > self.floor else "down", speed_mps=self.speed, load_pct=0.0,
                    vibration_mg=self.ride_vibration(rng, worn))))
                t += self.travel_ms(self.floor, a)
                out.append((t, did, "telemetry", "status", dict(
                    floor=a, moving=False, door="open", door_zone=True, occupied=False, direction="idle",
                    speed_mps=0.0, load_pct=0.0, vibration_mg=self.idle_vibration(rng))))
            riders = 1 + poisson(rng, 0.5)
            load = round(min(100.0, riders * 7.5 + rng.random() * 3), 1)
            board = t + int(rng.uniform(3, 8) * SECOND)
            crowd = 0.07 if busy is not None else 0.0  # a busy day: people hold the doors for each other
            reopens = (1 + poisson(rng, 2.0 * worn)) if rng.random() < 0.05 + crowd + 0.5 * worn else 0
            board += reopens * 4 * SECOND
            u = rng.random()
            if u < 0.03:  # somebody holds the doors for a neighbour: open and occupied for a minute or two
                held = int(rng.uniform(30, 100) * SECOND)
                out.append((board, did, "telemetry", "status", dict(
                    floor=a, moving=False, door="open", door_zone=True, occupied=True, direction="idle",
                    speed_mps=0.0, load_pct=load, vibration_mg=self.idle_vibration(rng))))
                reopens += 1 + int(rng.random() < 0.5)
                board += held
            elif u < 0.07:  # a slow rider: doors shut, standing a while before pressing a floor
                out.append((board, did, "telemetry", "status", dict(
                    floor=a, moving=False, door="closed", door_zone=True, occupied=True, direction="idle",
                    speed_mps=0.0, load_pct=load, vibration_mg=self.idle_vibration(rng))))
                board += int(rng.uniform(12, 60) * SECOND)
            out.append((board, did, "telemetry", "status", dict(
                floor=a, moving=True, door="closed", door_zone=False, occupied=True,
                direction="up" if b > a else "down", speed_mps=self.speed, load_pct=load,
                vibration_mg=self.ride_vibration(rng, worn))))
            arrive = board + self.travel_ms(a, b)
            out.append((arrive, did, "telemetry", "status", dict(
                floor=b, moving=False, door="open", door_zone=True, occupied=True, direction="idle",
                speed_mps=0.0, load_pct=load, vibration_mg=self.idle_vibration(rng))))
            out.append((arrive, did, "telemetry", "trip", dict(
                from_floor=a, to_floor=b, duration_s=round((arrive - t) / SECOND, 1),
                door_cycles=1 + reopens, door_reopens=reopens)))
            leave = arrive + int(rng.uniform(5, 10) * SECOND)
            out.append((leave, did, "telemetry", "status", dict(
                floor=b, moving=False, door="closed", door_zone=True, occupied=False, direction="idle",
                speed_mps=0.0, load_pct=0.0, vibration_mg=self.idle_vibration(rng))))
            self.floor = b
            busy_until = leave + SECOND
        # Idle keepalive status between trips; now and then the occupancy sensor sees
        # something in the empty car for one reading (a reflection, a bag left behind).
        busy_at = [(r[0]) for r in out]
        nxt = 0
        t = start + int(rng.random() * self.KEEPALIVE)
        floor_at = 1
        while t < start + DAY:
            while nxt < len(busy_at) and busy_at[nxt] <= t:
                floor_at = out[nxt][4].get("floor", floor_at) if out[nxt][3] == "status" else floor_at
                nxt += 1
            if nxt >= len(busy_at) or busy_at[nxt] - t > MINUTE:
                out.append((t, did, "telemetry", "status", dict(
                    floor=floor_at, moving=False, door="closed", door_zone=True, occupied=rng.random() < 0.01,
                    direction="idle", speed_mps=0.0, load_pct=0.0, vibration_mg=self.idle_vibration(rng))))
            t += self.KEEPALIVE
        return out

    @staticmethod
    def ride_vibration(rng: random.Random, worn: float) -> float:
        return round(rng.uniform(7, 14) + 25 * worn, 1)  # milli-g while running; wear adds to it

    @staticmethod
    def idle_vibration(rng: random.Random) -> float:
        return round(rng.uniform(0.5, 2.5), 1)  # the building's own hum, standing still


# --- water ----------------------------------------------------------------------------------

# (share, duration seconds, flow l/min) of household draws.
DRAWS = (
    (0.32, (40, 75), (5.0, 8.0)),  # toilet cistern refill
    (0.45, (10, 90), (2.5, 6.0)),  # tap
    (0.12, (60, 240), (4.0, 7.0)),  # kitchen sink, dishes
    (0.07, (300, 840), (7.0, 10.5)),  # shower
    (0.04, (240, 480), (8.0, 12.0)),  # washing machine fill
)


class MeterActor(Actor):
    """Reports on every change of flow, each minute while water runs, every 15 minutes otherwise."""

    RUNNING = MINUTE
    IDLE = 15 * MINUTE

    def __init__(self, device: Device, day0: int, rng: random.Random) -> None:
        self.key = device.device_id
        self.devices = (device,)
        self.meter = device
        self.occupants = int(device.attributes.get("occupants", 2))
        self.total = rng.uniform(5_000, 600_000)  # the register since the meter was fitted

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        did = self.meter.device_id
        rates = WATER_WEEKEND if is_weekend(d) else WATER_WEEKDAY
        draws: list[tuple[int, int, float]] = []
        for t in hourly_times(rng, start, rates, self.occupants):
            u = rng.random()
            kind = DRAWS[-1]
            for candidate in DRAWS:
                if u < candidate[0]:
                    kind = candidate
                    break
                u -= candidate[0]
            _, (d0, d1), (f0, f1) = kind
            draws.append((t, t + int(rng.uniform(d0, d1) * SECOND), round(rng.uniform(f0, f1), 2)))
        eff = effects(did, start, start + DAY)
        resets = sorted(e.end for e in eff if e.kind == "meter_reset" and start <= e.end < start + DAY)
        adds = [(e.start, e.end, float(e.params["lpm"])) for e in eff if e.kind == "flow_add"]
        zeros = [(e.start, e.end) for e in eff if e.kind == "flow_zero"]
        points = {start}
        for s, e, _ in draws + adds:
            points.update((s, e))
        for s, e in zeros:
            points.update((s, e))
        changes = sorted(p for p in points if start <= p < start + DAY)

        def flow_at(t: int) -> float:
            if any(s <= t < e for s, e in zeros):
                return 0.0
            return sum(f for s, e, f in draws if s <= t < e) + sum(f for s, e, f in adds if s <= t < e)

        out: list[Record] = []
        day_end = start + DAY
        for i, cp in enumerate(changes):
            seg_end = changes[i + 1] if i + 1 < len(changes) else day_end
            flow = flow_at(cp)
            step = self.RUNNING if flow > 0 else self.IDLE
            t = cp
            while t < seg_end:
                while resets and resets[0] <= t:  # a new meter: its register starts near zero
                    resets.pop(0)
                    self.total = rng.uniform(0, 3)
                out.append((t, did, "telemetry", "flow", dict(flow_lpm=round(float(flow), 2),
                                                              total_l=round(self.total, 1))))
                nxt = min(t + step, seg_end)
                self.total += flow * (nxt - t) / MINUTE
                t = nxt
        return out


class PressureActor(Actor):
    """A sample every 5 minutes: nominal pressure that sags when the building draws most water."""

    PERIOD = 5 * MINUTE

    def __init__(self, device: Device, rng: random.Random) -> None:
        self.key = device.device_id
        self.devices = (device,)
        self.sensor = device
        self.nominal = float(device.attributes.get("nominal_kpa", 350.0))
        self.sag = 12.0 if device.attributes.get("location") == "inlet" else 55.0
        self.phase = int(rng.random() * self.PERIOD)

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        did = self.sensor.device_id
        profile = WATER_WEEKEND if is_weekend(d) else WATER_WEEKDAY
        eff = [e for e in effects(did, start, start + DAY) if e.kind == "value_set"]
        out: list[Record] = []
        for t in range(start + self.phase, start + DAY, self.PERIOD):
            forced = _active(eff, "value_set", t) if eff else None
            if forced is not None:
                noise = float(forced.params.get("noise", 0.0))
                value = float(forced.params["value"]) + (rng.uniform(-noise, noise) if noise else 0.0)
            else:
                value = self.nominal - self.sag * demand(profile, t - start) + rng.gauss(0, 2.0)
            out.append((t, did, "telemetry", "pressure", dict(pressure_kpa=round(max(0.0, value), 1))))
        return out


class LeakActor(Actor):
    """A leak sensor states ``wet: false`` once a day (its supervision report) and on change."""

    def __init__(self, device: Device) -> None:
        self.key = device.device_id
        self.devices = (device,)

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        t = start + int(rng.uniform(1, 23) * HOUR)
        return [(t, self.devices[0].device_id, "event", "leak", dict(wet=False))]


class TankPumpActor(Actor):
    """The roof tank drains with demand; the booster pump refills it from 45 % to 92 %.

    Without supply (``flow_zero`` on the tank) the pump runs dry: it reports a
    fault and the tank empties.
    """

    STEP = 5 * MINUTE

    def __init__(self, tank: Device, pump: Device, units: int, rng: random.Random) -> None:
        self.key = tank.device_id
        self.devices = (tank, pump)
        self.tank, self.pump = tank, pump
        self.level = rng.uniform(60, 90)
        self.running = False
        self.dry = False
        self.drain = 0.9 + units / 80.0  # % per step at peak demand

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        tid, pid = self.tank.device_id, self.pump.device_id
        profile = WATER_WEEKEND if is_weekend(d) else WATER_WEEKDAY
        eff = effects(tid, start, start + DAY)
        out: list[Record] = []
        for t in range(start, start + DAY, self.STEP):
            no_supply = _active(eff, "flow_zero", t) is not None
            stuck = _active(eff, "value_set", t)
            self.level -= self.drain * demand(profile, t - start) * rng.uniform(0.7, 1.3)
            if not self.running and self.level < 45 and not self.dry:
                self.running = True
                out.append((t, pid, "event", "pump", dict(state="running")))
            if self.running:
                if no_supply:
                    self.running, self.dry = False, True
                    out.append((t, pid, "event", "pump", dict(state="fault", fault_code="dry_run")))
                else:
                    self.level += 4.0
                    if self.level >= 92:
                        self.running = False
                        out.append((t, pid, "event", "pump", dict(state="stopped")))
            elif self.dry and not no_supply:
                self.dry = False
                out.append((t, pid, "event", "pump", dict(state="stopped")))
            self.level = min(100.0, max(0.0, self.level))
            value = float(stuck.params["value"]) if stuck else self.level
            out.append((t, tid, "telemetry", "tank_level", dict(level_pct=round(value, 1))))
        return out


# --- door access ----------------------------------------------------------------------------


class EntranceActor(Actor):
    """Residents (card or face), exits by button, visitors (QR), couriers (app) and staff.

    Every passage is an ``access`` event then ``door`` open and closed; a
    resident's card is sometimes refused once and presented again. As in the
    field: the door leaf sometimes rebounds as it closes (closed, open for a
    fraction of a second, closed); the contact sometimes reports the opening a
    moment before the reader reports the credential; a few residents work night
    shifts and come home after midnight on most nights, with their own card; the
    cleaning contractor's staff card comes once a week at 03:xx.
    """

    def __init__(self, device: Device, units: list[str], scale: float) -> None:
        self.key = device.device_id
        self.devices = (device,)
        self.door = device
        self.units = units
        self.scale = scale
        rng = random.Random(f"night-shift:{device.device_id}")
        self.night_workers = [(f"r-ns{rng.randint(100, 999)}-{k + 1}", rng.uniform(0.4, 2.4)) for k in range(rng.randint(1, 2))]
        self.cleaning_day = rng.randrange(7)

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        did = self.door.device_id
        rates = ACCESS_WEEKEND if is_weekend(d) else ACCESS_WEEKDAY
        out: list[Record] = []
        free_at = start
        visits = [(t, None) for t in hourly_times(rng, start, rates, self.scale)]
        forced = {e.params["worker"]: e.start for e in effects(did, start, start + DAY) if e.kind == "night_shift"}
        for k, (cred, hour) in enumerate(self.night_workers):
            if k in forced:
                visits.append((forced[k], cred))
            elif rng.random() < 5 / 7:
                visits.append((start + int((hour + max(-0.5, min(0.5, rng.gauss(0, 0.25)))) * HOUR), cred))
        if weekday(d) == self.cleaning_day:
            visits.append((start + int(rng.uniform(3.0, 3.8) * HOUR), "s-clean"))
        visits.sort(key=lambda v: v[0])
        for t, who in visits:
            t = max(t, free_at)
            hour = ((t - start) // HOUR) % 24
            u = rng.random()
            unit = rng.choice(self.units) if self.units else "guest"
            if who is not None:
                cred, method, role = who, "card", "staff" if who.startswith("s-") else "resident"
            elif u < 0.55:
                cred, role = f"r-{unit[-6:]}-{rng.randint(1, 3)}", "resident"
                method = rng.choice(("card", "face", "face"))
                if rng.random() < 0.015:
                    out.append((t, did, "event", "access", dict(result="denied", credential=f"r-{unit[-6:]}-9",
                                                                method="card", role="unknown")))
                    t += int(rng.uniform(3, 9) * SECOND)
            elif u < 0.82:
                cred, method, role = "exit-button", "button", "resident"
            elif u < 0.9 or not 8 <= hour < 21:
                cred, method, role = f"v-{rng.getrandbits(32):08x}", "qr", "visitor"
            elif u < 0.97:
                cred, method, role = f"k-{rng.randint(1, 40):03d}", "app", "courier"
            else:
                cred, method, role = f"s-{rng.randint(1, 12):02d}", "card", "staff"
            opened = t + int(rng.uniform(1, 3) * SECOND)
            if rng.random() < 0.05:  # the contact reports before the reader does
                opened = t - int(rng.uniform(0.1, 0.8) * SECOND)
            out.append((t, did, "event", "access", dict(result="granted", credential=cred, method=method, role=role)))
            closed = max(opened, t) + int(rng.uniform(5, 14) * SECOND)
            out.append((opened, did, "event", "door", dict(state="open")))
            out.append((closed, did, "event", "door", dict(state="closed")))
            if rng.random() < 0.04:  # the leaf rebounds off the frame
                bounce = closed + int(rng.uniform(0.1, 0.5) * SECOND)
                out.append((bounce, did, "event", "door", dict(state="open")))
                closed = bounce + int(rng.uniform(0.1, 0.4) * SECOND)
                out.append((closed, did, "event", "door", dict(state="closed")))
            free_at = closed + SECOND
        return out


class FireDoorActor(Actor):
    """A stairwell door without a reader: opened now and then, closed by its closer in seconds."""

    RATES = [0.0] * 6 + [0.4, 0.6, 0.4] + [0.25] * 8 + [0.5, 0.4, 0.3, 0.2, 0.1] + [0.0, 0.0]

    def __init__(self, device: Device) -> None:
        self.key = device.device_id
        self.devices = (device,)

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        did = self.devices[0].device_id
        out: list[Record] = []
        free_at = start
        for t in hourly_times(rng, start, self.RATES, 1.0):
            t = max(t, free_at)
            closed = t + int(rng.uniform(4, 15) * SECOND)
            out.append((t, did, "event", "door", dict(state="open")))
            out.append((closed, did, "event", "door", dict(state="closed")))
            free_at = closed + SECOND
        return out


# --- elderly residents living alone -----------------------------------------------------------


@dataclass(frozen=True)
class ResidentProfile:
    """One resident's habits (minutes after local midnight); each day varies around them."""

    wake: float
    bedtime: float
    nap_prob: float
    outing_prob: float
    walk_prob: float
    night_trips: float
    visitor_prob: float


def resident_profile(seed: int, hub_id: str) -> ResidentProfile:
    rng = random.Random(f"{seed}:profile:{hub_id}")
    return ResidentProfile(
        wake=rng.uniform(5.75, 7.75) * 60,
        bedtime=rng.uniform(20.75, 22.75) * 60,
        nap_prob=rng.uniform(0.2, 0.8),
        outing_prob=rng.uniform(0.3, 0.8),
        walk_prob=rng.uniform(0.1, 0.6),
        night_trips=rng.uniform(0.3, 1.8),
        visitor_prob=rng.uniform(0.05, 0.3),
    )


# Motion re-trigger interval (s) while the resident is in a room; None: no motion events.
ROOM_ACTIVITY: dict[str, tuple[float, float] | None] = {
    "kitchen": (40, 150), "living_room": (90, 420), "bedroom": (120, 600), "bathroom": (45, 180),
    "hall": (20, 60), "bed": None, "out": None,
}


class HubActor(Actor):
    """An elderly resident's day as hub events: motion per room, doors, bed, sensor batteries."""

    def __init__(self, device: Device, seed: int) -> None:
        self.key = device.device_id
        self.devices = (device,)
        self.hub = device
        self.profile = resident_profile(seed, device.device_id)

    def timeline(self, d: int, rng: random.Random) -> list[tuple[float, float, str]]:
        """Segments (start, end, place) in minutes after local midnight, from waking to sleep."""
        p = self.profile
        wake = p.wake + rng.gauss(0, 18)
        bed = p.bedtime + rng.gauss(0, 25)
        segs: list[tuple[float, float, str]] = []
        t = wake

        def add(place: str, minutes: float) -> None:
            nonlocal t
            segs.append((t, t + minutes, place))
            t += minutes

        def stay_until(until: float) -> None:
            # The living room, broken by bathroom and kitchen visits every hour or two.
            while t < until - 1:
                chunk = min(until - t, rng.uniform(50, 130))
                add("living_room", chunk)
                if t < until - 10:
                    add("bathroom" if rng.random() < 0.6 else "kitchen", rng.uniform(3, 8))

        add("bedroom", rng.uniform(3, 8))
        add("bathroom", rng.uniform(8, 20))
        add("kitchen", rng.uniform(20, 40))
        if rng.random() < p.outing_prob:
            stay_until(max(t + 10, rng.gauss(9 * 60, 30)))
            add("hall", 1.5)
            add("out", rng.uniform(60, 150))
            add("hall", 1.5)
        stay_until(max(t + 5, 11.5 * 60 + rng.gauss(0, 15)))
        add("kitchen", rng.uniform(30, 50))
        add("bathroom", rng.uniform(4, 8))
        if rng.random() < p.nap_prob:
            add("bedroom", 2)
            add("bed", rng.uniform(30, 90))
            add("bedroom", 2)
        if rng.random() < p.walk_prob:
            stay_until(max(t + 10, rng.uniform(15, 16.5) * 60))
            add("hall", 1.5)
            add("out", rng.uniform(30, 70))
            add("hall", 1.5)
        stay_until(max(t + 5, 17.5 * 60 + rng.gauss(0, 20)))
        add("kitchen", rng.uniform(30, 50))
        stay_until(max(t + 5, bed - 25))
        add("bathroom", rng.uniform(10, 20))
        add("bedroom", rng.uniform(3, 6))
        segs.append((t, 24 * 60, "bed"))
        return segs

    def day(self, d: int, start: int, rng: random.Random, effects: EffectLookup) -> list[Record]:
        did = self.hub.device_id
        out: list[Record] = []
        segs = self.timeline(d, rng)
        wake = segs[0][0]
        # Night trips to the bathroom (before waking and after going to bed).
        bed_start = segs[-1][0]
        for _ in range(poisson(rng, self.profile.night_trips)):
            if rng.random() < 0.7:
                when = rng.uniform(0, max(1.0, wake - 30))
            else:
                when = rng.uniform(bed_start + 45, 24 * 60 - 10)
            if when < 1 or (bed_start + 45 > 24 * 60 - 10 and when > wake):
                continue
            self.night_trip(out, start + int(when * MINUTE), rng)
        out.append((start + int(wake * MINUTE), did, "event", "bed", dict(occupied=False)))
        visitor_at = rng.uniform(14.5, 17) * 60 if rng.random() < self.profile.visitor_prob else None
        for s, e, place in segs:
            t0, t1 = start + int(s * MINUTE), start + int(e * MINUTE)
            if place == "bed":
                out.append((t0, did, "event", "bed", dict(occupied=True)))
                if e < 24 * 60:
                    out.append((t1, did, "event", "bed", dict(occupied=False)))
                continue
            if place == "out":
                out.append((t0, did, "event", "door", dict(door="entrance", state="open")))
                out.append((t0 + 8 * SECOND, did, "event", "door", dict(door="entrance", state="closed")))
                out.append((t1, did, "event", "door", dict(door="entrance", state="open")))
                out.append((t1 + 8 * SECOND, did, "event", "door", dict(door="entrance", state="closed")))
                continue
            if place == "bathroom":
                out.append((t0, did, "event", "door", dict(door="bathroom", state="open")))
                out.append((t0 + 6 * SECOND, did, "event", "door", dict(door="bathroom", state="closed")))
                leave = max(t0 + 7 * SECOND, t1 - 6 * SECOND)
                out.append((leave, did, "event", "door", dict(door="bathroom", state="open")))
                out.append((leave + 4 * SECOND, did, "event", "door", dict(door="bathroom", state="closed")))
            gap = ROOM_ACTIVITY[place]
            room = "hall" if place == "hall" else place
            t = t0 + int(rng.uniform(1, 10) * SECOND)
            visitor = visitor_at is not None and place == "living_room" and s <= visitor_at < e
            while t < t1 and gap is not None:
                out.append((t, did, "event", "motion", dict(room=room)))
                lo, hi = gap
                t += int(rng.uniform(lo, hi) * SECOND * (0.4 if visitor else 1.0))
            if visitor:
                assert visitor_at is not None
                v0 = start + int(visitor_at * MINUTE)
                v1 = min(t1 - MINUTE, v0 + int(rng.uniform(40, 100) * MINUTE))
                for tv in (v0, v1):
                    if tv > t0:
                        out.append((tv, did, "event", "door", dict(door="entrance", state="open")))
                        out.append((tv + 10 * SECOND, did, "event", "door", dict(door="entrance", state="closed")))
        self.sensor_batteries(out, d, start, rng, effects)
        return out

    def night_trip(self, out: list[Record], t: int, rng: random.Random, minutes: float | None = None) -> int:
        """Out of bed to the bathroom and back; returns the time the resident is back in bed."""
        did = self.hub.device_id
        stay = int((minutes if minutes is not None else rng.uniform(3, 9)) * MINUTE)
        out.append((t, did, "event", "bed", dict(occupied=False)))
        out.append((t + 20 * SECOND, did, "event", "motion", dict(room="bedroom")))
        t1 = t + 50 * SECOND
        out.append((t1, did, "event", "door", dict(door="bathroom", state="open")))
        out.append((t1 + 5 * SECOND, did, "event", "motion", dict(room="bathroom")))
        out.append((t1 + 10 * SECOND, did, "event", "door", dict(door="bathroom", state="closed")))
        tm = t1 + 10 * SECOND + int(rng.uniform(60, 180) * SECOND)
        while tm < t1 + stay:
            out.append((tm, did, "event", "motion", dict(room="bathroom")))
            tm += int(rng.uniform(60, 240) * SECOND)
        t2 = t1 + stay
        out.append((t2, did, "event", "door", dict(door="bathroom", state="open")))
        out.append((t2 + 4 * SECOND, did, "event", "door", dict(door="bathroom", state="closed")))
        out.append((t2 + 20 * SECOND, did, "event", "motion", dict(room="bedroom")))
        out.append((t2 + 60 * SECOND, did, "event", "bed", dict(occupied=True)))
        return t2 + 60 * SECOND

    def sensor_batteries(self, out: list[Record], d: int, start: int, rng: random.Random,
                         effects: EffectLookup) -> None:
        did = self.hub.device_id
        low = [e for e in effects(did, start, start + DAY) if e.kind == "sensor_battery"]
        t = start + int(rng.uniform(2, 4) * HOUR)
        for i, sensor in enumerate(HUB_SENSORS):
            pct = battery_level(f"{did}/{sensor}", d)
            for e in low:
                if e.params["sensor"] == sensor and e.start <= t < e.end:
                    pct = float(e.params["pct"])
            out.append((t + i * SECOND, did, "status", "sensor_battery", dict(sensor=sensor, battery=round(pct, 1))))


@functools.lru_cache(maxsize=65_536)
def _battery_life(key: str) -> tuple[float, float]:
    rng = random.Random(f"battery:{key}")
    life = rng.uniform(400, 900)
    return life, rng.uniform(0, life)


def battery_level(key: str, d: int) -> float:
    """A saw-tooth from 100 % down to 25 % over a battery's life (days), then a replacement."""
    life, phase = _battery_life(key)
    return 100.0 - 75.0 * (((d + phase) % life) / life)
