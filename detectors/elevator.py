"""Elevators: GB/T 24476 fault codes, entrapment (explicit, alarm presses, inferred
from field practice), service modes, and proactive maintenance from the lift's own
trends normalised by how much it runs.

Entrapment (Level 1) is a car that **cannot release its passengers**:

- fault code 7 or 8 (the controller's own verdict: paged on arrival, no wait);
- ``alarm_presses_for_entrapment`` presses of the alarm button within
  ``alarm_press_window_s`` (field practice: a passenger who keeps pressing);
- inferred from raw status, only where the car cannot let people out:
  * stopped **outside the door zone** with doors closed and somebody inside for
    ``inferred_entrapment_outside_zone_s`` (doors cannot open between floors). A
    car gets there only by moving: a stop reported right after a movement counts
    at once; "outside the zone" from a car that was standing at a floor is a
    door-zone sensor flicker until a second report says so too;
  * in the door zone with a **failed door opening**: fault 11 (door fails to
    open) while occupied, confirmed like any fault, or at once when the car's
    status also shows its doors asked to open and not open; or the doors reported
    ``opening`` and a report ``door_open_fail_s`` later still shows them not
    open ("opening" is a state every door passes through for a few seconds: a
    snapshot of it alone is nothing);
  * in the door zone, doors shut, car idle and continuously occupied for
    ``inferred_entrapment_s`` (default 3 min: far beyond any ride or a slow
    passenger, see detectors/README.md), by somebody who was inside when the
    doors shut (occupancy first reported ``entrapment_boarding_s`` after that
    is the sensor: nobody walks into a shut car), unless the sensor had said
    "occupied" in every report, rides and door openings included, for
    ``occupancy_stuck_s`` before the doors shut (default 30 min): a stuck sensor,
    trusted again once it reports an empty car.
  Raw-status inference needs current evidence: the car's latest status must be
  at most ``entrapment_evidence_s`` old at the deadline (terminals report every
  few seconds while a car is in use); a single "occupied" snapshot followed by
  minutes of silence is a sensor blip, and the next report decides.
  Clears when the code clears, or the car moves, or its doors open.

A passenger who takes 30 s to press a floor button, people holding the doors,
an empty car parked with its doors shut, an occupancy sensor that flickers: none
of these is a car that cannot release its passengers.

Other conditions:

- ``fault.<code>`` (Level 2, code 14 Level 3 work order): any other code that
  stays active ``fault_confirm_s`` (glitch filter). Clears with the code.
- ``passenger_alarm`` (Level 2): the alarm latched by the controller (code 21
  active for ``fault_confirm_s``) or ``alarm_presses_for_alert`` presses within
  the window. One momentary press (a child, an elbow) is not an alert: the
  car's intercom already connects that passenger to the control room.
- ``fault_rate`` / ``door_wear`` / ``vibration_trend`` (Level 3 work orders,
  proactive), each normalised by usage so that a busy day is not a degrading
  lift: faults **per trip** against the lift's learned faults per trip; door
  re-opens **per trip**; vibration **while moving** only (idle readings say
  nothing about the machine). Learned only while no such order is open.

While the lift is in a service mode other than ``normal`` (inspection, fire
return...) or inside a maintenance window nothing opens; a fault still active
when the lift is back to normal opens at its next message.
"""

from __future__ import annotations

from array import array

import msgspec

from domain.events import Event
from domain.payloads import ELEVATOR_FAULT_CODES
from detectors.base import Changes, Ctx, Raised, clear, earliest, raise_
from detectors.config import local_day

ENTRAPMENT_CODES = (7, 8)
DOOR_FAILS_TO_OPEN = 11
ALARM_CODE = 21
FAULT_TIER = {14: 3}  # everything else not an entrapment: Level 2 (lift out of service)
FAULT_HISTORY_DAYS = 14


class ElevatorState(msgspec.Struct, array_like=True):
    mode: str = "normal"
    pending: dict[int, float] = msgspec.field(default_factory=dict)  # code -> active since
    held: list[int] = msgspec.field(default_factory=list)  # confirmed while silenced
    active: list[int] = msgspec.field(default_factory=list)  # codes confirmed and still active
    presses: list[float] = msgspec.field(default_factory=list)
    shut_since: float | None = None  # stopped with doors closed (since)
    shut_in_zone: bool = True
    occupied_since: float | None = None  # ...and occupied without a break (since)
    opening_since: float | None = None  # doors asked to open ("opening"), not open yet
    inferred: bool = False  # the current entrapment was inferred (not a code or presses)
    status_at: float = 0.0  # event time of the latest raw status
    day: int = 0
    today_faults: int = 0
    today_trips: int = 0
    fault_days: bytes = b""  # one byte per past day, newest last
    trip_days: bytes = b""  # uint16 trips per past day, aligned with fault_days
    trips: int = 0
    reopen_short: float = 0.0
    reopen_long: float = 0.0
    vib_n: int = 0
    vib_fast: float = 0.0
    vib_slow: float = 0.0
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)
    # (appended: snapshots written before these fields decode with the defaults)
    out_since: float | None = None  # stopped and shut outside the door zone (since)
    out_trusted: bool = False  # ...the car stopped there after moving, or a second report confirmed it
    moved: bool = False  # the latest status before this stop said the car was moving
    occupied_run_since: float | None = None  # "occupied" in every status, rides and openings included (since)


def _silenced(st: ElevatorState, ctx: Ctx) -> Ctx:
    if st.mode != "normal" and not ctx.suppressed:
        return Ctx(device=ctx.device, th=ctx.th, suppressed=True, facts=ctx.facts)
    return ctx


def _confirm_s(code: int, ctx: Ctx) -> float:
    return ctx.th.entrapment_code_confirm_s if code in ENTRAPMENT_CODES else ctx.th.fault_confirm_s


def _occupied(st: ElevatorState) -> bool:
    return st.occupied_since is not None


def _raise_fault(st: ElevatorState, ctx: Ctx, code: int, ts: float) -> Changes:
    name = ELEVATOR_FAULT_CODES.get(code, f"code {code}")
    if code not in st.active:
        st.active.append(code)
    if code in ENTRAPMENT_CODES:
        return raise_(st.raised, ctx, "entrapment", 1, ts, f"Passenger trapped: {name}", detail={"code": code, "source": "fault_code"})
    if code == ALARM_CODE:
        return raise_(st.raised, ctx, "passenger_alarm", 2, ts, "Alarm button held in the car (controller report)",
                      detail={"code": code})
    tier = FAULT_TIER.get(code, 2)
    out = raise_(st.raised, ctx, f"fault.{code}", tier, ts, f"Lift fault {code}: {name}", work_order=tier == 3, detail={"code": code})
    if code == DOOR_FAILS_TO_OPEN and _occupied(st) and st.shut_since is not None:
        out += _entrapment(st, ctx, ts, "door_fails_to_open", "Passenger trapped: the doors fail to open (fault 11)")
    return out


def _door_failure_corroborated(st: ElevatorState, ctx: Ctx, ts: float) -> Changes:
    """Fault 11 (doors fail to open) reported while the car's own status shows its doors
    asked to open and not open, with somebody inside: two independent witnesses of a car
    that cannot release its passenger, so no glitch window (the fault alone waits
    ``fault_confirm_s``; a status snapshot of "opening" alone waits for a later report)."""
    if ("entrapment" in st.raised or st.opening_since is None or st.occupied_since is None
            or not any(c == DOOR_FAILS_TO_OPEN for c in (*st.pending, *st.active))):
        return []
    return _entrapment(st, ctx, ts, "door_fails_to_open",
                       "Passenger trapped: the doors were asked to open and the controller reports they fail to (fault 11)")


def _entrapment(st: ElevatorState, ctx: Ctx, ts: float, source: str, title: str, **detail: object) -> Changes:
    if "entrapment" not in st.raised:
        st.inferred = source not in ("fault_code", "alarm_button")
    return raise_(st.raised, ctx, "entrapment", 1, ts, title, detail={"source": source, **detail})


def instant(st: ElevatorState, ctx: Ctx, ev: Event) -> Changes:
    """An entrapment code pages on arrival, before the device's reorder window ends."""
    if ev.type != "fault" or int(ev.fields["code"]) not in ENTRAPMENT_CODES or not ev.fields.get("active", True):
        return []
    if ctx.th.entrapment_code_confirm_s > 0 or "entrapment" in st.raised:
        return []
    live = _silenced(st, ctx)
    if live.suppressed:
        return []
    return _raise_fault(st, live, int(ev.fields["code"]), ev.ts.timestamp())


def _restart_inference(st: ElevatorState, ts: float) -> None:
    """After an explicit entrapment ends, raw-status inference starts again from now:
    the time the car stood shut while the code was active is not counted twice."""
    for name in ("shut_since", "occupied_since", "opening_since", "out_since"):
        since = getattr(st, name)
        if since is not None:
            setattr(st, name, max(since, ts))


def _boarded(st: ElevatorState, ctx: Ctx) -> bool:
    """Somebody was in the car when its doors shut: nobody walks into a shut car, so
    occupancy first reported long after the doors shut at a floor is the sensor (a
    flicker, a drifting load cell), not a passenger."""
    assert st.shut_since is not None and st.occupied_since is not None
    return st.occupied_since - st.shut_since <= ctx.th.entrapment_boarding_s


def _occupancy_stuck(st: ElevatorState, ctx: Ctx) -> bool:
    """The sensor said "occupied" in every report for ``occupancy_stuck_s`` before these
    doors shut, through rides and door openings: a stuck sensor, not a passenger."""
    assert st.shut_since is not None
    run = st.occupied_run_since
    return run is not None and st.shut_since - run >= ctx.th.occupancy_stuck_s


def _inferred_due(st: ElevatorState, ctx: Ctx) -> tuple[float, str] | None:
    """When raw status alone says the car cannot release its passengers, and why."""
    if "entrapment" in st.raised or st.shut_since is None or st.occupied_since is None:
        return None
    th = ctx.th
    found: list[tuple[float, str]] = []
    if st.out_since is not None and st.out_trusted:
        found.append((max(st.out_since, st.occupied_since) + th.inferred_entrapment_outside_zone_s, "outside_door_zone"))
    if _boarded(st, ctx) and not _occupancy_stuck(st, ctx):
        found.append((max(st.shut_since, st.occupied_since) + th.inferred_entrapment_s, "occupied_shut_idle"))
    if st.opening_since is not None and st.status_at >= st.opening_since + th.door_open_fail_s:
        # "opening" is a state every door passes through for 2-4 s: a snapshot of it says
        # nothing until a report door_open_fail_s later still shows the doors not open.
        found.append((st.opening_since + th.door_open_fail_s, "doors_do_not_open"))
    return min(found) if found else None


def next_deadline(st: ElevatorState, ctx: Ctx) -> float | None:
    pending = [since + _confirm_s(code, ctx) for code, since in st.pending.items()]
    inferred = _inferred_due(st, ctx)
    if inferred is not None and inferred[0] - st.status_at > ctx.th.entrapment_evidence_s:
        inferred = None  # no fresh report by then: the next status decides
    return earliest(*pending, inferred[0] if inferred else None)


TITLES = {
    "outside_door_zone": "Passenger trapped (inferred: stopped outside the door zone, doors closed, occupied)",
    "doors_do_not_open": "Passenger trapped (inferred: the doors were asked to open and did not)",
    "occupied_shut_idle": "Passenger trapped (inferred: occupied car shut and idle far longer than any ride)",
}


def on_tick(st: ElevatorState, ctx: Ctx, now: float) -> tuple[ElevatorState, Changes]:
    ctx = _silenced(st, ctx)
    out: Changes = []
    for code, since in sorted(st.pending.items()):
        due = since + _confirm_s(code, ctx)
        if now >= due:
            del st.pending[code]
            if ctx.suppressed:
                st.held.append(code)
            else:
                out += _raise_fault(st, ctx, code, due)
    inferred = _inferred_due(st, ctx)
    if inferred is not None and now >= inferred[0]:
        due, source = inferred
        if due - st.status_at <= ctx.th.entrapment_evidence_s:
            out += _entrapment(st, ctx, due, source, TITLES[source], in_door_zone=st.out_since is None,
                               shut_since=st.shut_since, occupied_since=st.occupied_since)
            if "entrapment" not in st.raised:  # silenced: do not retry until the situation changes
                st.occupied_since = None
        elif now - st.status_at <= ctx.th.entrapment_evidence_s:
            # The car's reports had gone quiet at the deadline: one stale "occupied" reading is
            # not a passenger. A fresh report that still says so decides, at its own time.
            out += _entrapment(st, ctx, now, source, TITLES[source], in_door_zone=st.out_since is None,
                               shut_since=st.shut_since, occupied_since=st.occupied_since)
    return st, out


def _roll_day(st: ElevatorState, ctx: Ctx, ts: float) -> Changes:
    day = local_day(ts, ctx.th.zone)
    if st.day == 0:
        st.day = day
        return []
    out: Changes = []
    if st.day >= day:
        return out
    while st.day < day:
        st.fault_days = (st.fault_days + bytes([min(st.today_faults, 255)]))[-FAULT_HISTORY_DAYS:]
        st.trip_days = (st.trip_days + array("H", [min(st.today_trips, 65535)]).tobytes())[-2 * FAULT_HISTORY_DAYS:]
        st.today_faults = st.today_trips = 0
        st.day += 1
        if day - st.day > FAULT_HISTORY_DAYS:
            st.day = day
    if "fault_rate" in st.raised and st.fault_days and st.fault_days[-1] < _fault_limit(st, ctx, _trips_yesterday(st)):
        out += clear(st.raised, ctx, "fault_rate", ts, "Lift fault rate back to normal")
    return out


def _trips_yesterday(st: ElevatorState) -> int:
    trips = array("H", st.trip_days)
    return trips[-1] if trips else 0


def _fault_limit(st: ElevatorState, ctx: Ctx, trips_today: int) -> float:
    """Faults a day beyond which the lift is degrading: ``fault_rate_factor`` x its learned
    faults per trip x today's trips (at least ``fault_rate_min_per_day``); per day when the
    lift reports no trips."""
    th = ctx.th
    days = array("B", st.fault_days)
    if len(days) < 3:
        return 2.0 * th.fault_rate_min_per_day
    trips = array("H", st.trip_days)[-len(days):]
    if trips_today and sum(trips) > 0:
        per_trip = max(sum(days), 1) / sum(trips)
        return max(float(th.fault_rate_min_per_day), th.fault_rate_factor * per_trip * trips_today)
    rate = sum(days) / len(days)
    return max(float(th.fault_rate_min_per_day), th.fault_rate_factor * rate)


def on_event(st: ElevatorState, ctx: Ctx, ev: Event) -> tuple[ElevatorState, Changes]:
    ts = ev.ts.timestamp()
    st, out = on_tick(st, ctx, ts)
    out += _roll_day(st, ctx, ts)
    f = ev.fields
    if ev.type == "service_mode":
        st.mode = f["mode"]
        if st.mode == "normal":
            st.occupied_since = None
    live = _silenced(st, ctx)
    if st.held and not live.suppressed:
        for code in st.held:
            out += _raise_fault(st, live, code, ts)
        st.held = []

    if ev.type == "fault":
        out += _fault(st, ctx, live, int(f["code"]), bool(f.get("active", True)), ts)
    elif ev.type == "alarm_button":
        th = ctx.th
        window = th.alarm_press_window_s
        st.presses = [p for p in st.presses if ts - p <= window][-(th.alarm_presses_for_entrapment - 1):] + [ts]
        if len(st.presses) >= th.alarm_presses_for_entrapment:
            out += _entrapment(st, live, ts, "alarm_button", "Passenger trapped: repeated alarm button presses",
                               presses=len(st.presses))
        elif len(st.presses) >= th.alarm_presses_for_alert:
            out += raise_(st.raised, live, "passenger_alarm", 2, ts, "Alarm button pressed again in the car",
                          detail={"floor": f.get("floor"), "presses": len(st.presses)})
    elif ev.type == "status":
        out += _status(st, ctx, live, f, ts)
    elif ev.type == "trip":
        st.today_trips += 1
        out += _door_trend(st, live, float(f.get("door_reopens", 0)), ts)
    st, more = on_tick(st, ctx, ts)
    return st, out + more


def _fault(st: ElevatorState, ctx: Ctx, live: Ctx, code: int, active: bool, ts: float) -> Changes:
    out: Changes = []
    if active:
        if code != ALARM_CODE:
            st.today_faults += 1
        if code not in st.pending and code not in st.active:
            st.pending[code] = ts
        if code == DOOR_FAILS_TO_OPEN:
            out += _door_failure_corroborated(st, live, ts)
        limit = _fault_limit(st, ctx, st.today_trips)
        if st.today_faults >= limit and "fault_rate" not in st.raised:
            out += raise_(st.raised, live, "fault_rate", 3, ts, "Rising lift fault rate: proactive maintenance",
                          work_order=True, detail={"today": st.today_faults, "trips_today": st.today_trips, "limit": round(limit, 1)})
        return out
    st.pending.pop(code, None)
    if code in st.held:
        st.held.remove(code)
    if code in st.active:
        st.active.remove(code)
    if code in ENTRAPMENT_CODES:
        if not any(c in st.active for c in ENTRAPMENT_CODES):
            out += clear(st.raised, ctx, "entrapment", ts, "Entrapment fault cleared", detail={"code": code})
            _restart_inference(st, ts)
    elif code == ALARM_CODE:
        out += clear(st.raised, ctx, "passenger_alarm", ts, "Alarm reset", detail={"code": code})
    else:
        out += clear(st.raised, ctx, f"fault.{code}", ts, f"Lift fault {code} cleared", detail={"code": code})
    return out


def _status(st: ElevatorState, ctx: Ctx, live: Ctx, f: dict, ts: float) -> Changes:
    out: Changes = []
    moving, door, occupied = bool(f["moving"]), f["door"], bool(f["occupied"])
    st.status_at = max(st.status_at, ts)
    if not occupied:
        st.occupied_run_since = None
    elif st.occupied_run_since is None:
        st.occupied_run_since = ts
    if not moving and door != "open":  # shut: closed, or closing, or asked to open and not open yet
        in_zone = bool(f["door_zone"])
        arrived = st.shut_since is None  # the first report of this stop
        if arrived:
            st.shut_since = ts
        st.shut_in_zone = in_zone
        if in_zone:
            st.out_since, st.out_trusted = None, False
        elif st.out_since is None:
            # A car stops between floors only after moving; "outside the zone" from a car
            # that stood at a floor (or opened its doors there) is a door-zone sensor
            # flicker until a second report says so too.
            st.out_since, st.out_trusted = ts, arrived and st.moved
        else:
            st.out_trusted = True
        if occupied:
            if st.occupied_since is None:
                st.occupied_since = ts
        else:
            st.occupied_since = None
        if door == "opening":
            if st.opening_since is None:
                st.opening_since = ts
        else:
            st.opening_since = None
        if DOOR_FAILS_TO_OPEN in st.active and occupied and "entrapment" not in st.raised:
            out += _entrapment(st, live, ts, "door_fails_to_open", "Passenger trapped: the doors fail to open (fault 11)")
        else:
            out += _door_failure_corroborated(st, live, ts)
    else:  # moving, or doors open: nobody is held in the car
        st.shut_since, st.occupied_since, st.opening_since = None, None, None
        st.out_since, st.out_trusted, st.moved = None, False, moving
        ent = st.raised.get("entrapment")
        if ent is not None and ts >= ent.since and not any(c in st.active or c in st.pending for c in ENTRAPMENT_CODES):
            out += clear(st.raised, ctx, "entrapment", ts, "Car moving or doors open: passengers released")
        alarm = st.raised.get("passenger_alarm")
        if alarm is not None and ts >= alarm.since and ALARM_CODE not in st.active:
            out += clear(st.raised, ctx, "passenger_alarm", ts, "Car moving or doors open after the alarm")
    vib = f.get("vibration_mg")
    if vib is not None and moving:  # idle readings say nothing about the machine
        out += _vibration(st, live, float(vib), ts)
    return out


def _door_trend(st: ElevatorState, ctx: Ctx, reopens: float, ts: float) -> Changes:
    th = ctx.th
    st.trips += 1
    a_short = max(th.door_trend_alpha, 1.0 / st.trips)
    st.reopen_short += a_short * (reopens - st.reopen_short)
    worn = "door_wear" in st.raised
    if not worn:  # learn only from normal behaviour
        a_long = max(0.001, 1.0 / st.trips)  # the lift's own rate over about the last 1,000 trips (days)
        st.reopen_long += a_long * (reopens - st.reopen_long)
    if st.trips < th.door_learn_trips:
        return []
    limit = max(th.door_reopen_min_ratio, th.door_reopen_factor * st.reopen_long)
    if st.reopen_short >= limit:
        return raise_(st.raised, ctx, "door_wear", 3, ts, "Door re-open cycles rising: proactive maintenance", work_order=True,
                      detail={"reopens_per_trip": round(st.reopen_short, 3), "learned": round(st.reopen_long, 3)})
    if worn and st.reopen_short < 0.5 * limit:
        return clear(st.raised, ctx, "door_wear", ts, "Door re-open cycles back to normal")
    return []


def _vibration(st: ElevatorState, ctx: Ctx, vib: float, ts: float) -> Changes:
    th = ctx.th
    st.vib_n += 1
    st.vib_fast += max(0.02, 1.0 / st.vib_n) * (vib - st.vib_fast)
    trending = "vibration_trend" in st.raised
    if not trending:
        st.vib_slow += max(0.001, 1.0 / st.vib_n) * (vib - st.vib_slow)
    if st.vib_n < th.vibration_learn_samples or st.vib_slow <= 0:
        return []
    if st.vib_fast >= th.vibration_factor * st.vib_slow:
        return raise_(st.raised, ctx, "vibration_trend", 3, ts, "Lift vibration trending up: proactive maintenance",
                      work_order=True, detail={"short_mg": round(st.vib_fast, 1), "learned_mg": round(st.vib_slow, 1)})
    if trending and st.vib_fast < 1.2 * st.vib_slow:
        return clear(st.raised, ctx, "vibration_trend", ts, "Lift vibration back to normal")
    return []
