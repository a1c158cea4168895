"""Door access: forced doors, doors held open, brute-force credentials, access at
hours unusual for that door (learned), reader tamper.

Conditions and tiers:

- ``door_forced`` (Level 2): the door opens with no granted access (or exit
  button) in the preceding ``access_grant_window_s``. A ``fire_door`` has no
  reader and is opened by hand all day: it counts as forced only at night
  (``night_start``..``night_end``), and then it is Level 1.
- ``door_held_open`` (Level 3; a ``fire_door`` propped open is Level 2): open
  longer than ``door_held_open_s`` / ``fire_door_held_open_s``; clears when
  closed.
- ``repeated_denied`` (Level 2): ``denied_attempts`` denied credentials within
  ``denied_window_s`` on one reader; clears after 10 quiet minutes.
- ``unusual_hour_access`` (Level 3): a granted access in an hour of the day in
  which this door sees fewer than ``unusual_hour_rate`` accesses a day on
  average (learned over at least ``unusual_hour_learn_days``; before that, the
  fixed ``quiet_hours`` are the floor rule).
- ``tamper`` (Level 2): reader tamper switch active; clears when released.
- ``tailgating`` (Level 3): a door with a people counter (``passage`` events)
  lets more people in during one opening than credentials were granted for it.
  Doors without a counter never raise it.
"""

from __future__ import annotations

import datetime as dt
from array import array

import msgspec

from domain.events import Event
from detectors.base import Changes, Ctx, Raised, clear, earliest, once, raise_
from detectors.config import in_window

DENIED_QUIET_S = 600.0


class AccessState(msgspec.Struct, array_like=True):
    last_grant: float = 0.0
    open_since: float | None = None
    held_fired: bool = False
    denied: list[float] = msgspec.field(default_factory=list)
    hours: bytes = b""  # 24 x uint16: granted accesses by local hour (halved when full)
    hours_since: float = 0.0  # counting since (moved forward when the counts are halved)
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)
    grants_open: int = 0  # credentials granted for the current (or coming) opening


def _held_limit(ctx: Ctx) -> float:
    return ctx.th.fire_door_held_open_s if ctx.device.kind == "fire_door" else ctx.th.door_held_open_s


def next_deadline(st: AccessState, ctx: Ctx) -> float | None:
    held = st.open_since + _held_limit(ctx) if st.open_since is not None and not st.held_fired else None
    quiet = st.denied[-1] + DENIED_QUIET_S if "repeated_denied" in st.raised and st.denied else None
    return earliest(held, quiet)


def on_tick(st: AccessState, ctx: Ctx, now: float) -> tuple[AccessState, Changes]:
    out: Changes = []
    if st.open_since is not None and not st.held_fired and now >= st.open_since + _held_limit(ctx):
        st.held_fired = True
        fire = ctx.device.kind == "fire_door"
        title = "Fire door propped open" if fire else "Door held open too long"
        out += raise_(st.raised, ctx, "door_held_open", 2 if fire else 3, now, title,
                      detail={"open_since": st.open_since, "limit_s": _held_limit(ctx)})
    if "repeated_denied" in st.raised and st.denied and now >= st.denied[-1] + DENIED_QUIET_S:
        out += clear(st.raised, ctx, "repeated_denied", now, "No more denied attempts")
        st.denied = []
    return st, out


def _hour(ts: float, ctx: Ctx) -> int:
    return dt.datetime.fromtimestamp(ts, ctx.th.zone).hour


def on_event(st: AccessState, ctx: Ctx, ev: Event) -> tuple[AccessState, Changes]:
    th = ctx.th
    ts = ev.ts.timestamp()
    st, out = on_tick(st, ctx, ts)
    f = ev.fields
    if ev.type == "access":
        if f["result"] == "granted":
            st.last_grant = ts
            st.grants_open += 1
            out += _unusual_hour(st, ctx, ts, f)
        else:
            st.denied = [d for d in st.denied if ts - d <= th.denied_window_s][-(th.denied_attempts - 1):] + [ts]
            if len(st.denied) >= th.denied_attempts:
                out += raise_(st.raised, ctx, "repeated_denied", 2, ts, "Repeated denied credentials at a reader (brute force?)",
                              detail={"attempts": len(st.denied), "window_s": th.denied_window_s})
    elif ev.type == "door":
        if f["state"] == "open":
            if st.open_since is None:
                st.open_since, st.held_fired = ts, False
                if ts - st.last_grant > th.access_grant_window_s:
                    st.grants_open = 0  # a grant nobody used in time does not cover this opening
                night = in_window(_hour(ts, ctx), th.night_start, th.night_end)
                fire = ctx.device.kind == "fire_door"
                if ts - st.last_grant > th.access_grant_window_s and (night or not fire):
                    tier = 1 if fire else 2
                    title = "Fire door forced at night" if tier == 1 else "Door forced: opened without a valid access"
                    out += once(ctx, "door_forced", tier, ts, title, detail={"night": night})
        else:
            st.open_since, st.held_fired = None, False
            st.grants_open = 0
            out += clear(st.raised, ctx, "door_held_open", ts, "Door closed")
    elif ev.type == "passage":
        if f.get("direction", "in") == "in" and f["count"] > st.grants_open:
            out += once(ctx, "tailgating", 3, ts, "Tailgating: more people entered than credentials were granted",
                        detail={"entered": f["count"], "granted": st.grants_open})
    elif ev.type == "tamper":
        if f.get("active", True):
            out += raise_(st.raised, ctx, "tamper", 2, ts, "Reader tamper switch triggered")
        else:
            out += clear(st.raised, ctx, "tamper", ts, "Reader tamper switch released")
    st, more = on_tick(st, ctx, ts)
    return st, out + more


def _unusual_hour(st: AccessState, ctx: Ctx, ts: float, f: dict) -> Changes:
    th = ctx.th
    hours = array("H", st.hours or bytes(48))
    if not st.hours_since:
        st.hours_since = ts
    h = _hour(ts, ctx)
    days = (ts - st.hours_since) / 86400.0
    learned = days >= th.unusual_hour_learn_days
    rate = hours[h] / days if days > 0 else 0.0
    unusual = rate < th.unusual_hour_rate if learned else in_window(h, *th.quiet_hours)
    out: Changes = []
    if unusual:
        out = once(ctx, "unusual_hour_access", 3, ts, f"Access at an unusual hour for this door ({h:02d}:00)",
                   detail={"hour": h, "per_day": round(rate, 3), "role": f.get("role"), "learned": learned})
    else:  # learn only from accesses that were not flagged
        if hours[h] == 65535:
            hours = array("H", (c // 2 for c in hours))
            st.hours_since = ts - (ts - st.hours_since) / 2
        hours[h] += 1
    st.hours = hours.tobytes()
    return out
