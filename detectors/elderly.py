"""Elderly residents living alone: SOS, falls, inactivity against the resident's own
learned routine, night wandering, long bathroom stays at night.

Conditions and tiers:

- ``sos`` / ``fall`` (Level 1): immediately (a fall below
  ``fall_min_confidence`` is ignored).
- ``inactivity`` (Level 2), two learned profiles with the fixed rule as floor:

  * *in bed* (bed sensor occupied): the resident's nights are learned as
    (wake-up time, sleep length); brief trips out of bed (< ``sleep_trip_s``)
    do not end a night. Alarm at max(latest usual wake-up, sleep start + longest
    usual sleep) + ``sleep_margin_s``, where "latest" and "longest" are
    max(observed max, median + 3 robust sigmas) of the last nights. So a resident
    who went to bed late may sleep late; one who is not up long after both is
    raised. While fewer than ``sleep_learn_nights`` nights are known:
    ``inactivity_fixed_s`` after going to bed.
  * *up*: for each local hour of the day, the longest "time since last activity"
    reached in that hour on each of the last 7 normal days (outings, naps and
    visits included). Limit for hour h: max(``inactivity_min_s``,
    ``inactivity_factor`` x 90th percentile + ``inactivity_margin_s``), used once
    ``inactivity_learn_days`` days were learned; ``inactivity_fixed_s`` before.

  Quiet that starts within the usual night (learned bedtime - 30 min to
  wake-up) long after the last bed exit is judged by the night rule (a bed
  sensor can miss a bed-in); silence right after getting up at night is not. Days and nights with an alarm or a silence are not learned.
  When the resident went out (the entrance door opened while they were home,
  and no motion since) nobody is home to be inactive: no inactivity is raised
  until the door opens again (a week away without a notice is not an alarm),
  and the time out is not learned as a quiet spell. Clears on the next activity.
- ``night_wandering`` (Level 2): the resident *left* in the middle of the
  night: an entrance door opened between ``wander_start_hour`` and
  ``wander_end_hour`` and for ``wander_confirm_s`` after it was last used
  nobody moved inside and the bed sensor said nobody was in bed (a guest
  leaving while the resident sleeps, or sees them out, is not wandering; the
  guest's own motion does not count as the resident getting up); clears when the
  resident moves inside again after the door closed.
- ``long_bathroom_stay`` (Level 2): in a bathroom (entered or still there between
  ``night_start`` and ``night_end``, but not in the morning routine: from an
  hour before the resident's usual wake-up) with no motion elsewhere for longer
  than max(``bathroom_night_s``, 1.25 x the longest of the resident's last
  normal stays + 5 min); clears on motion elsewhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from array import array

import msgspec
import numpy as np

from domain.events import Event
from detectors.base import Changes, Ctx, Raised, clear, earliest, once, raise_
from detectors.config import in_window

HISTORY_DAYS = 7
HISTORY_NIGHTS = 10
HISTORY_BATHS = 16
ACTIVITY_TYPES = frozenset({"motion", "door", "bed"})
DAY_S = 86400.0


class ElderlyState(msgspec.Struct, array_like=True):
    last_act: float = 0.0
    acc_until: float = 0.0  # the awake profile is accounted up to this time
    day: int = 0  # local ordinal of the day being accounted
    today: bytes = b""  # 24 x uint16 minutes: longest time-since-activity per hour while up, today
    hist: bytes = b""  # HISTORY_DAYS x 24 x uint16, newest day last
    spoiled: bool = False  # today had an alarm or a silence: do not learn it
    limits: bytes = b""  # 24 x uint16 minutes, derived from hist at each day's end
    inactive_fired: bool = False
    in_bed: bool = False
    sleep_start: float | None = None
    bed_out_at: float | None = None
    night_spoiled: bool = False
    nights: bytes = b""  # pairs of uint16: wake-up minute of the local day, sleep minutes
    bath_since: float | None = None
    bath_fired: bool = False
    baths: bytes = b""  # uint16 seconds of past normal bathroom stays
    door_closed_at: float | None = None
    out: bool = False  # went out by the entrance door, no motion since
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)
    wander_last: float | None = None  # last use of the entrance door at night, not yet explained
    bed_sensor: bool = False  # what the bed sensor itself last said (in_bed also infers missed exits)


def named(name: str, words: tuple[str, ...]) -> bool:
    """Is a sensor's name one of ``words``, whatever its decoration ("front_door",
    "Bathroom 2", "main-entrance")? (A home has a handful of names: each is parsed once.)"""
    return _named(name, tuple(words))


@functools.lru_cache(maxsize=4096)
def _named(name: str, words: tuple[str, ...]) -> bool:
    tokens = re.split(r"[^a-z]+", name.lower())
    if any(t in words for t in tokens if t):
        return True
    # Chinese names have no spaces between words ("主卫生间", "入户门1"): a word is found inside.
    return any(not w.isascii() and w in name for w in words)


def learned_days(st: ElderlyState) -> int:
    return len(st.hist) // 48


def _upper(values: np.ndarray) -> float:
    """A robust upper envelope: the largest of the observed max and median + 3 sigma (MAD)."""
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med)))
    return max(float(values.max()), med + 3 * 1.4826 * mad)


# --- the awake profile ----------------------------------------------------------------------


def _limits(st: ElderlyState) -> np.ndarray | None:
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
    """Fold the time since the last activity (while up) into today's per-hour profile
    up to ``upto``, closing days at local midnight."""
    zone = ctx.th.zone
    if st.acc_until == 0.0:
        st.acc_until = upto
        st.day = dt.datetime.fromtimestamp(upto, zone).toordinal()
        st.today = bytes(48)
        return
    a = st.acc_until
    if upto <= a:
        return
    today = array("H", st.today or bytes(48))  # (not NumPy: 24 values, every message)
    steps = 0
    while a < upto and steps < 24 * 8:
        steps += 1
        local = dt.datetime.fromtimestamp(a, zone)
        day = local.toordinal()
        if day != st.day:
            _close_day(st, ctx, today)
            today = array("H", bytes(48))
            st.day = day
        into = local.minute * 60 + local.second + local.microsecond / 1e6
        b = min(upto, a + 3600.0 - into)
        if st.last_act and not st.in_bed and not st.out:
            today[local.hour] = max(today[local.hour], min(int((b - st.last_act) // 60), 65535))
        a = b if b > a else upto
    st.acc_until = upto
    st.today = today.tobytes()


def _close_day(st: ElderlyState, ctx: Ctx, today: array) -> None:
    if not st.spoiled and st.last_act:
        st.hist = (st.hist + today.tobytes())[-48 * HISTORY_DAYS:]
        _relearn(st, ctx)
    st.spoiled = False


def _awake_due(st: ElderlyState, ctx: Ctx) -> float:
    """The first moment the time since the last activity exceeds that hour's limit."""
    fixed = st.last_act + ctx.th.inactivity_fixed_s
    limits = _limits(st)
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


# --- the night profile ----------------------------------------------------------------------


def _asleep_due(st: ElderlyState, ctx: Ctx) -> float:
    th = ctx.th
    start = st.sleep_start if st.in_bed and st.sleep_start is not None else st.last_act
    fixed = start + th.inactivity_fixed_s
    nights = np.frombuffer(st.nights, dtype=np.uint16).reshape(-1, 2).astype(np.float64)
    if len(nights) < th.sleep_learn_nights:
        return max(fixed, st.last_act + th.inactivity_min_s)
    wake_min = _upper(nights[:, 0]) * 60.0  # seconds after local midnight
    longest = _upper(nights[:, 1]) * 60.0
    local = dt.datetime.fromtimestamp(start, th.zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    wake = midnight + wake_min
    if wake <= start:  # went to bed after midnight's usual wake-up time? then tomorrow's
        wake += DAY_S
    if wake - start > DAY_S / 2:  # a bedtime before midnight: the wake-up is the next morning
        wake = min(wake, start + DAY_S / 2)
    due = min(max(wake, start + longest) + th.sleep_margin_s, fixed)
    return max(due, st.last_act + th.inactivity_min_s)


def _learn_night(st: ElderlyState, ctx: Ctx, wake: float) -> None:
    if st.sleep_start is None or st.night_spoiled:
        return
    length = wake - st.sleep_start
    if length < ctx.th.sleep_min_s or length > DAY_S / 2:
        return
    local = dt.datetime.fromtimestamp(wake, ctx.th.zone)
    minute = local.hour * 60 + local.minute
    st.nights = (st.nights + np.array([minute, int(length // 60)], dtype=np.uint16).tobytes())[-4 * HISTORY_NIGHTS:]


# --- steps -------------------------------------------------------------------------------------


def _inactivity_due(st: ElderlyState, ctx: Ctx) -> float | None:
    if not st.last_act or st.inactive_fired or st.out:  # out: nobody home to be inactive
        return None
    if st.in_bed or (_missed_bed(st, ctx) and _usual_sleep_time(st, ctx, st.last_act)):
        return _asleep_due(st, ctx)
    return _awake_due(st, ctx)


def _missed_bed(st: ElderlyState, ctx: Ctx) -> bool:
    """Not just out of bed: the last bed exit is long before the last activity (a
    night trip that ends in silence is judged as awake, not as sleep)."""
    return st.bed_out_at is None or st.last_act - st.bed_out_at > ctx.th.sleep_trip_s


def _usual_sleep_time(st: ElderlyState, ctx: Ctx, ts: float) -> bool:
    """Is ``ts`` within the resident's usual night (learned bedtime - 30 min to wake-up)?
    Quiet then, without a bed report, is most likely sleep the bed sensor missed."""
    if len(st.nights) // 4 < ctx.th.sleep_learn_nights:
        return False
    wake, slept = _night_medians(st.nights)
    bedtime = (wake - slept - 30) % 1440
    local = dt.datetime.fromtimestamp(ts, ctx.th.zone)
    minute = local.hour * 60 + local.minute
    return in_window(minute, bedtime, wake)


@functools.lru_cache(maxsize=8192)
def _night_medians(nights: bytes) -> tuple[float, float]:
    """The median wake-up minute and night length of the learned nights (they change once
    a day; asked at every message)."""
    pairs = np.frombuffer(nights, dtype=np.uint16).reshape(-1, 2).astype(np.float64)
    return float(np.median(pairs[:, 0])), float(np.median(pairs[:, 1]))


def bathroom_limit(st: ElderlyState, ctx: Ctx) -> float:
    th = ctx.th
    baths = np.frombuffer(st.baths, dtype=np.uint16)
    if len(baths) < th.bathroom_learn_stays:
        return th.bathroom_night_s
    return max(th.bathroom_night_s, 1.25 * float(baths.max()) + 300.0)


def _morning_routine(st: ElderlyState, entered: dt.datetime) -> bool:
    """A bathroom visit from an hour before the resident's usual wake-up on is the
    morning routine (before 06:00 for an early riser), not a night-time stay."""
    if len(st.nights) // 4 < 3:
        return False
    usual, _ = _night_medians(st.nights)
    minute = entered.hour * 60 + entered.minute
    return usual - 60 <= minute <= usual + 180


def next_deadline(st: ElderlyState, ctx: Ctx) -> float | None:
    bath = st.bath_since + bathroom_limit(st, ctx) if st.bath_since is not None and not st.bath_fired else None
    wander = st.wander_last + ctx.th.wander_confirm_s if st.wander_last is not None else None
    return earliest(_inactivity_due(st, ctx), bath, wander)


def instant(st: ElderlyState, ctx: Ctx, ev: Event) -> Changes:
    """SOS and falls page on arrival, before the hub's reorder window ends."""
    if ev.type == "sos":
        return once(ctx, "sos", 1, ev.ts.timestamp(), "SOS: one-key call pressed")
    if ev.type == "fall":
        confidence = ev.fields.get("confidence")
        if confidence is None or confidence >= ctx.th.fall_min_confidence:
            return once(ctx, "fall", 1, ev.ts.timestamp(), "Fall detected", detail={"confidence": confidence})
    return []


def on_tick(st: ElderlyState, ctx: Ctx, now: float) -> tuple[ElderlyState, Changes]:
    th = ctx.th
    out: Changes = []
    if ctx.suppressed:
        st.spoiled = st.night_spoiled = True
    due = _inactivity_due(st, ctx)
    if due is not None and now >= due:
        st.inactive_fired = True
        st.spoiled = st.night_spoiled = True
        out += raise_(st.raised, ctx, "inactivity", 2, now, "No activity for longer than the resident's routine",
                      detail={"since": st.last_act, "hours": round((now - st.last_act) / 3600, 2), "in_bed": st.in_bed,
                              "learned": bool(st.limits) if not st.in_bed else len(st.nights) >= 4 * th.sleep_learn_nights})
    if st.bath_since is not None and not st.bath_fired:
        limit = bathroom_limit(st, ctx)
        if now >= st.bath_since + limit:
            st.bath_fired = True
            entered = dt.datetime.fromtimestamp(st.bath_since, th.zone)
            end_hour = dt.datetime.fromtimestamp(now, th.zone).hour
            at_night = in_window(entered.hour, th.night_start, th.night_end) or in_window(end_hour, th.night_start, th.night_end)
            if at_night and not _morning_routine(st, entered):
                out += raise_(st.raised, ctx, "long_bathroom_stay", 2, now, "Unusually long bathroom stay at night",
                              detail={"since": st.bath_since, "minutes": round((now - st.bath_since) / 60, 1),
                                      "limit_min": round(limit / 60, 1)})
    if st.wander_last is not None and now >= st.wander_last + th.wander_confirm_s:
        due = st.wander_last + th.wander_confirm_s
        st.wander_last = None
        if not st.bed_sensor:  # another person's motion does not get the resident out of bed
            out += raise_(st.raised, ctx, "night_wandering", 2, due, "Resident left home in the middle of the night",
                          detail={"door_at": due - th.wander_confirm_s})
    _account(st, ctx, now)
    return st, out


def on_event(st: ElderlyState, ctx: Ctx, ev: Event) -> tuple[ElderlyState, Changes]:
    th = ctx.th
    ts = ev.ts.timestamp()
    st, out = on_tick(st, ctx, ts)
    f = ev.fields
    if ev.type in ACTIVITY_TYPES or ev.type in ("sos", "fall"):
        if ts >= st.last_act:
            st.last_act = ts
        st.inactive_fired = False
        out += clear(st.raised, ctx, "inactivity", ts, "Activity again")
    entrance = ev.type == "door" and named(str(f["door"]), th.entrance_doors)
    if ev.type in ("motion", "bed"):
        st.out = False
        if st.wander_last is not None and ts > st.wander_last and (ev.type == "motion" or f["occupied"]):
            st.wander_last = None  # somebody is inside: whoever used the door, the resident is home
    elif entrance and f["state"] == "open":
        st.out = not st.out  # home: going out; out: coming back (even if nobody moves after)
    if ev.type == "bed":
        st.bed_sensor = bool(f["occupied"])
        if f["occupied"] and not st.in_bed:
            st.in_bed = True
            if st.bed_out_at is None or st.sleep_start is None or ts - st.bed_out_at > th.sleep_trip_s:
                if st.bed_out_at is not None:
                    _learn_night(st, ctx, st.bed_out_at)
                st.sleep_start, st.night_spoiled = ts, ctx.suppressed
        elif not f["occupied"] and st.in_bed:
            st.in_bed, st.bed_out_at = False, ts
    elif ev.type == "motion":
        room = str(f["room"]).lower()
        if st.in_bed and "bed" not in room:
            # Moving about in another room: the bed sensor missed the exit.
            st.in_bed, st.bed_out_at = False, ts
        if named(room, th.bathroom_rooms):
            if st.bath_since is None:
                st.bath_since, st.bath_fired = ts, False
        else:
            if st.bath_since is not None and not st.bath_fired and "long_bathroom_stay" not in st.raised:
                stay = ts - st.bath_since
                if stay >= 180.0:  # learn normal stays (alarmed ones are not normal)
                    st.baths = (st.baths + np.uint16(min(stay, 65535)).tobytes())[-2 * HISTORY_BATHS:]
            st.bath_since, st.bath_fired = None, False
            out += clear(st.raised, ctx, "long_bathroom_stay", ts, "Resident left the bathroom")
            if st.door_closed_at is not None and ts - st.door_closed_at >= 60.0:
                out += clear(st.raised, ctx, "night_wandering", ts, "Resident moving inside again")
                st.door_closed_at = None
    elif entrance:
        hour = dt.datetime.fromtimestamp(ts, th.zone).hour
        if in_window(hour, th.wander_start_hour, th.wander_end_hour) or st.wander_last is not None:
            st.wander_last = ts
        if f["state"] == "open":
            st.door_closed_at = None
        else:
            st.door_closed_at = ts
    return st, out
