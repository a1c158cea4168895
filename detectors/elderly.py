"""Elderly residents living alone: SOS, falls, inactivity against the resident's own
learned daily profile, night wandering, long bathroom stays at night.

Conditions and tiers:

- ``sos`` / ``fall`` (Level 1): immediately (a fall below
  ``fall_min_confidence`` is ignored).
- ``inactivity`` (Level 2): no motion, door or bed activity for longer than the
  resident's learned limit for this hour of the day, or than the fixed floor
  ``inactivity_fixed_s`` whatever was learned. The profile: for each local hour
  of the day, the longest "time since last activity" reached in that hour on
  each of the last 7 normal days (days with an alarm or a silence are not
  learned). The limit for hour h is max(``inactivity_min_s``,
  ``inactivity_factor`` x 90th percentile + ``inactivity_margin_s``), used once
  ``inactivity_learn_days`` days were learned. Clears on the next activity.
- ``night_wandering`` (Level 2): an entrance door opens between
  ``wander_start_hour`` and ``wander_end_hour``; clears when the resident
  moves inside again after the door closed.
- ``long_bathroom_stay`` (Level 2): in a bathroom room (entered between
  ``night_start`` and ``night_end``) with no motion elsewhere for
  ``bathroom_night_s``; clears on motion elsewhere.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import numpy as np

from domain.events import Event
from detectors.base import Changes, Ctx, Raised, clear, earliest, once, raise_
from detectors.config import in_window

HISTORY_DAYS = 7
ACTIVITY_TYPES = frozenset({"motion", "door", "bed"})


class ElderlyState(msgspec.Struct, array_like=True):
    last_act: float = 0.0
    acc_until: float = 0.0  # the profile is accounted up to this time
    day: int = 0  # local ordinal of the day being accounted
    today: bytes = b""  # 24 x uint16 minutes: longest time-since-activity per hour, today
    hist: bytes = b""  # HISTORY_DAYS x 24 x uint16, newest day last
    spoiled: bool = False  # today had an alarm or a silence: do not learn it
    limits: bytes = b""  # 24 x uint16 minutes, derived from hist at each day's end
    inactive_fired: bool = False
    last_room: str = ""
    bath_since: float | None = None
    bath_fired: bool = False
    door_closed_at: float | None = None
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)


def learned_days(st: ElderlyState) -> int:
    return len(st.hist) // 48


def _limits(st: ElderlyState, ctx: Ctx) -> np.ndarray | None:
    if not st.limits:
        return None
    return np.frombuffer(st.limits, dtype=np.uint16).astype(np.float64) * 60.0


def _relearn(st: ElderlyState, ctx: Ctx) -> None:
    th = ctx.th
    if learned_days(st) < th.inactivity_learn_days:
        st.limits = b""
        return
    hist = np.frombuffer(st.hist, dtype=np.uint16).reshape(-1, 24).astype(np.float64) * 60.0
    high = np.quantile(hist, 0.9, axis=0)
    limit = np.maximum(th.inactivity_min_s, th.inactivity_factor * high + th.inactivity_margin_s)
    limit = np.minimum(limit, th.inactivity_fixed_s)
    st.limits = np.minimum(np.ceil(limit / 60.0), 65535).astype(np.uint16).tobytes()


def _account(st: ElderlyState, ctx: Ctx, upto: float) -> None:
    """Fold the time since the last activity into today's per-hour profile up to
    ``upto``, closing days at local midnight."""
    zone = ctx.th.zone
    if st.acc_until == 0.0:
        st.acc_until = upto
        st.day = dt.datetime.fromtimestamp(upto, zone).toordinal()
        st.today = bytes(48)
        return
    a = st.acc_until
    today = np.frombuffer(st.today or bytes(48), dtype=np.uint16).copy()
    steps = 0
    while a < upto and steps < 24 * 8:
        steps += 1
        local = dt.datetime.fromtimestamp(a, zone)
        day = local.toordinal()
        if day != st.day:
            _close_day(st, ctx, today)
            today[:] = 0
            st.day = day
        into = local.minute * 60 + local.second + local.microsecond / 1e6
        b = min(upto, a + 3600.0 - into)
        if st.last_act:
            today[local.hour] = max(today[local.hour], min(int((b - st.last_act) // 60), 65535))
        a = b if b > a else upto
    st.acc_until = max(st.acc_until, upto)
    st.today = today.tobytes()


def _close_day(st: ElderlyState, ctx: Ctx, today: np.ndarray) -> None:
    if not st.spoiled and st.last_act:
        st.hist = (st.hist + today.tobytes())[-48 * HISTORY_DAYS:]
        _relearn(st, ctx)
    st.spoiled = False


def inactivity_limit(st: ElderlyState, ctx: Ctx, ts: float) -> float:
    limits = _limits(st, ctx)
    if limits is None:
        return ctx.th.inactivity_fixed_s
    return float(limits[dt.datetime.fromtimestamp(ts, ctx.th.zone).hour])


def _inactivity_due(st: ElderlyState, ctx: Ctx) -> float | None:
    """The first moment the time since the last activity exceeds that hour's limit."""
    if not st.last_act or st.inactive_fired:
        return None
    fixed = st.last_act + ctx.th.inactivity_fixed_s
    limits = _limits(st, ctx)
    if limits is None:
        return fixed
    zone = ctx.th.zone
    a = st.last_act
    while a < fixed:
        local = dt.datetime.fromtimestamp(a, zone)
        end = a + 3600.0 - (local.minute * 60 + local.second + local.microsecond / 1e6)
        due = max(a, st.last_act + limits[local.hour])
        if due < end:
            return min(due, fixed)
        a = end
    return fixed


def next_deadline(st: ElderlyState, ctx: Ctx) -> float | None:
    bath = st.bath_since + ctx.th.bathroom_night_s if st.bath_since is not None and not st.bath_fired else None
    return earliest(_inactivity_due(st, ctx), bath)


def on_tick(st: ElderlyState, ctx: Ctx, now: float) -> tuple[ElderlyState, Changes]:
    th = ctx.th
    out: Changes = []
    if ctx.suppressed:
        st.spoiled = True
    due = _inactivity_due(st, ctx)
    if due is not None and now >= due:
        st.inactive_fired = True
        st.spoiled = True
        learned = st.limits != b""
        out += raise_(st.raised, ctx, "inactivity", 2, now, "No activity for longer than the resident's routine",
                      detail={"since": st.last_act, "hours": round((now - st.last_act) / 3600, 2),
                              "limit_h": round((due - st.last_act) / 3600, 2), "learned": learned})
    if st.bath_since is not None and not st.bath_fired and now >= st.bath_since + th.bathroom_night_s:
        st.bath_fired = True
        hour = dt.datetime.fromtimestamp(st.bath_since, th.zone).hour
        end_hour = dt.datetime.fromtimestamp(now, th.zone).hour
        if in_window(hour, th.night_start, th.night_end) or in_window(end_hour, th.night_start, th.night_end):
            out += raise_(st.raised, ctx, "long_bathroom_stay", 2, now, "Unusually long bathroom stay at night",
                          detail={"since": st.bath_since, "minutes": round((now - st.bath_since) / 60, 1)})
    _account(st, ctx, now)
    return st, out


def on_event(st: ElderlyState, ctx: Ctx, ev: Event) -> tuple[ElderlyState, Changes]:
    th = ctx.th
    ts = ev.ts.timestamp()
    st, out = on_tick(st, ctx, ts)
    f = ev.fields
    if ev.type == "sos":
        out += once(ctx, "sos", 1, ts, "SOS: one-key call pressed")
    elif ev.type == "fall":
        confidence = f.get("confidence")
        if confidence is None or confidence >= th.fall_min_confidence:
            out += once(ctx, "fall", 1, ts, "Fall detected", detail={"confidence": confidence})
    if ev.type in ACTIVITY_TYPES or ev.type in ("sos", "fall"):
        if ts >= st.last_act:
            st.last_act = ts
        st.inactive_fired = False
        out += clear(st.raised, ctx, "inactivity", ts, "Activity again")
    if ev.type == "motion":
        room = str(f["room"]).lower()
        if room in th.bathroom_rooms:
            if st.bath_since is None:
                st.bath_since, st.bath_fired = ts, False
        else:
            st.bath_since, st.bath_fired = None, False
            out += clear(st.raised, ctx, "long_bathroom_stay", ts, "Resident left the bathroom")
            if st.door_closed_at is not None and ts - st.door_closed_at >= 60.0:
                out += clear(st.raised, ctx, "night_wandering", ts, "Resident moving inside again")
                st.door_closed_at = None
        st.last_room = room
    elif ev.type == "door" and str(f["door"]).lower() in th.entrance_doors:
        if f["state"] == "open":
            st.door_closed_at = None
            hour = dt.datetime.fromtimestamp(ts, th.zone).hour
            if in_window(hour, th.wander_start_hour, th.wander_end_hour):
                out += raise_(st.raised, ctx, "night_wandering", 2, ts, "Entrance door opened in the middle of the night",
                              detail={"hour": hour})
        else:
            st.door_closed_at = ts
    if out:
        st.spoiled = st.spoiled or any(c.kind == "opened" and c.condition == "inactivity" for c in out)
    return st, out
