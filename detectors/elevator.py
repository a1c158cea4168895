"""Elevators: GB/T 24476 fault codes, entrapment (explicit, alarm presses, inferred),
service modes, and proactive maintenance from the lift's own learned trends.

Conditions and tiers:

- ``entrapment`` (Level 1): fault code 7 or 8 active (the controller's own
  entrapment verdict, so no extra confirmation by default); or
  ``alarm_presses_for_entrapment`` presses within ``alarm_press_window_s``; or
  *inferred* from raw status: car stopped, doors closed, occupied and no
  movement for ``inferred_entrapment_s`` (``..._outside_zone_s`` between
  floors). Clears when the code clears or the car moves / opens its doors.
- ``fault.<code>`` (Level 2, code 14 Level 3 work order): any other code that
  stays active ``fault_confirm_s`` (glitch filter). Clears with the code.
- ``passenger_alarm`` (Level 2): a single press of the alarm button (or code 21).
- ``fault_rate`` / ``door_wear`` / ``vibration_trend`` (Level 3 work orders,
  proactive): today's fault count, the short-term door re-open ratio and the
  short-term vibration against the lift's own learned baseline (learned only
  while no such order is open).

While the lift is in a service mode other than ``normal`` (inspection, fire
return...) or inside a maintenance window nothing opens; a fault still active
when the lift is back to normal opens at its next message.
"""

from __future__ import annotations

from array import array

import msgspec

from domain.events import Event
from domain.payloads import ELEVATOR_FAULT_CODES
from detectors.base import Changes, Ctx, Raised, clear, earliest, once, raise_
from detectors.config import local_day

ENTRAPMENT_CODES = (7, 8)
ALARM_CODE = 21
FAULT_TIER = {14: 3}  # everything else not an entrapment: Level 2 (lift out of service)
FAULT_HISTORY_DAYS = 14


class ElevatorState(msgspec.Struct, array_like=True):
    mode: str = "normal"
    pending: dict[int, float] = msgspec.field(default_factory=dict)  # code -> active since
    held: list[int] = msgspec.field(default_factory=list)  # confirmed while silenced
    presses: list[float] = msgspec.field(default_factory=list)
    still_since: float | None = None  # stopped, doors closed, occupied
    still_in_zone: bool = True
    still_fired: bool = False
    day: int = 0
    today_faults: int = 0
    fault_days: bytes = b""  # one byte per past day, newest last
    trips: int = 0
    reopen_short: float = 0.0
    reopen_long: float = 0.0
    vib_n: int = 0
    vib_fast: float = 0.0
    vib_slow: float = 0.0
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)


def _silenced(st: ElevatorState, ctx: Ctx) -> Ctx:
    if st.mode != "normal" and not ctx.suppressed:
        return Ctx(device=ctx.device, th=ctx.th, suppressed=True, facts=ctx.facts)
    return ctx


def _confirm_s(code: int, ctx: Ctx) -> float:
    if code == ALARM_CODE:
        return 0.0  # a passenger's alarm is not a glitch to filter
    return ctx.th.entrapment_code_confirm_s if code in ENTRAPMENT_CODES else ctx.th.fault_confirm_s


def _raise_fault(st: ElevatorState, ctx: Ctx, code: int, ts: float) -> Changes:
    name = ELEVATOR_FAULT_CODES.get(code, f"code {code}")
    if code in ENTRAPMENT_CODES:
        return raise_(st.raised, ctx, "entrapment", 1, ts, f"Passenger trapped: {name}", detail={"code": code, "source": "fault_code"})
    if code == ALARM_CODE:
        return once(ctx, "passenger_alarm", 2, ts, "Alarm button pressed in the car (controller report)", detail={"code": code})
    tier = FAULT_TIER.get(code, 2)
    return raise_(st.raised, ctx, f"fault.{code}", tier, ts, f"Lift fault {code}: {name}", work_order=tier == 3, detail={"code": code})


def next_deadline(st: ElevatorState, ctx: Ctx) -> float | None:
    pending = [since + _confirm_s(code, ctx) for code, since in st.pending.items()]
    still = None
    if st.still_since is not None and not st.still_fired:
        wait = ctx.th.inferred_entrapment_s if st.still_in_zone else ctx.th.inferred_entrapment_outside_zone_s
        still = st.still_since + wait
    return earliest(*pending, still)


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
    if st.still_since is not None and not st.still_fired:
        wait = ctx.th.inferred_entrapment_s if st.still_in_zone else ctx.th.inferred_entrapment_outside_zone_s
        due = st.still_since + wait
        if now >= due:
            st.still_fired = True
            out += raise_(
                st.raised, ctx, "entrapment", 1, due, "Passenger trapped (inferred: stopped, doors closed, occupied)",
                detail={"source": "inferred", "in_door_zone": st.still_in_zone, "still_s": wait},
            )
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
        st.today_faults = 0
        st.day += 1
        if day - st.day > FAULT_HISTORY_DAYS:
            st.day = day
    if "fault_rate" in st.raised and st.fault_days and st.fault_days[-1] < _fault_limit(st, ctx):
        out += clear(st.raised, ctx, "fault_rate", ts, "Lift fault rate back to normal")
    return out


def _fault_limit(st: ElevatorState, ctx: Ctx) -> float:
    days = array("B", st.fault_days)
    if len(days) < 3:
        return 2.0 * ctx.th.fault_rate_min_per_day
    rate = sum(days) / len(days)
    return max(float(ctx.th.fault_rate_min_per_day), ctx.th.fault_rate_factor * rate)


def on_event(st: ElevatorState, ctx: Ctx, ev: Event) -> tuple[ElevatorState, Changes]:
    ts = ev.ts.timestamp()
    st, out = on_tick(st, ctx, ts)
    out += _roll_day(st, ctx, ts)
    f = ev.fields
    if ev.type == "service_mode":
        st.mode = f["mode"]
        if st.mode == "normal":
            st.still_since, st.still_fired = None, False
    live = _silenced(st, ctx)
    if st.held and not live.suppressed:
        for code in st.held:
            out += _raise_fault(st, live, code, ts)
        st.held = []

    if ev.type == "fault":
        code = int(f["code"])
        if f.get("active", True):
            if code != ALARM_CODE:
                st.today_faults += 1
            if code not in st.pending and f"fault.{code}" not in st.raised:
                st.pending[code] = ts
                st, more = on_tick(st, ctx, ts)
                out += more
            limit = _fault_limit(st, ctx)
            if st.today_faults >= limit and "fault_rate" not in st.raised:
                out += raise_(st.raised, live, "fault_rate", 3, ts, "Rising lift fault rate: proactive maintenance",
                              work_order=True, detail={"today": st.today_faults, "limit": limit})
        else:
            st.pending.pop(code, None)
            if code in st.held:
                st.held.remove(code)
            if code in ENTRAPMENT_CODES:
                out += clear(st.raised, ctx, "entrapment", ts, "Entrapment fault cleared", detail={"code": code})
            else:
                out += clear(st.raised, ctx, f"fault.{code}", ts, f"Lift fault {code} cleared", detail={"code": code})
    elif ev.type == "alarm_button":
        window = ctx.th.alarm_press_window_s
        st.presses = [p for p in st.presses if ts - p <= window][-(ctx.th.alarm_presses_for_entrapment - 1):] + [ts]
        if len(st.presses) >= ctx.th.alarm_presses_for_entrapment:
            out += raise_(st.raised, live, "entrapment", 1, ts, "Passenger trapped: repeated alarm button presses",
                          detail={"source": "alarm_button", "presses": len(st.presses)})
        else:
            out += once(live, "passenger_alarm", 2, ts, "Alarm button pressed in the car", detail={"floor": f.get("floor")})
    elif ev.type == "status":
        still = not f["moving"] and f["door"] == "closed" and f["occupied"]
        if still:
            if st.still_since is None:
                st.still_since, st.still_in_zone, st.still_fired = ts, bool(f["door_zone"]), False
            elif not f["door_zone"] and st.still_in_zone:
                st.still_in_zone = False
            st, more = on_tick(st, ctx, ts)
            out += more
        else:
            st.still_since, st.still_fired = None, False
            if f["moving"] or f["door"] in ("open", "opening"):
                ent = st.raised.get("entrapment")
                if ent is not None and not any(c in st.pending for c in ENTRAPMENT_CODES):
                    out += clear(st.raised, ctx, "entrapment", ts, "Car moving or doors open: passengers released")
        vib = f.get("vibration_mg")
        if vib is not None:
            out += _vibration(st, live, float(vib), ts)
    elif ev.type == "trip":
        out += _door_trend(st, live, float(f.get("door_reopens", 0)), ts)
    return st, out


def _door_trend(st: ElevatorState, ctx: Ctx, reopens: float, ts: float) -> Changes:
    th = ctx.th
    st.trips += 1
    a_short = max(0.05, 1.0 / st.trips)
    st.reopen_short += a_short * (reopens - st.reopen_short)
    worn = "door_wear" in st.raised
    if not worn:  # learn only from normal behaviour
        a_long = max(0.005, 1.0 / st.trips)
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
