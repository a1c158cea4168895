"""The learned baseline's maths for any numeric telemetry stream (pressure, tank level, load...).

One streaming pass, no look-ahead, bounded state: each reading is *scored* against
what the stream showed before it (`score_one`, which changes nothing), then
*learned* (`learn_one`). Deciding is a third, separate step: `report_once` shapes
scores for a ranking (``steward score``, NAB), `statistical.decide` turns them into an
incident that opens early, rarely and clears (device health).

Four small experts watch the stream, each with its own residual ``z`` (a
deviation in units of a learned scale):

- ``level``: distance from a slow exponentially weighted level (spikes, level
  shifts). The level learns every value, so after a level shift it re-learns the
  new level in ~1/``level_alpha`` readings instead of freezing;
- ``jump``: the step from the previous reading against the typical step
  (sudden changes on smooth series);
- ``season``: distance from a time-of-day profile (``slots`` slots of the local
  wall clock; each slot learns the offset from the level and its own spread), so
  a pump schedule, a tank's daily cycle or rush-hour load are normal at their hour;
- ``season_run``: the ``season`` residual averaged over a few readings
  (``smooth_alpha``): a sustained, modest departure from the daily pattern
  (a slow drift, a day that does not follow the usual shape, a noisier regime).

Before any expert sees a reading, a **day-of-week correction** takes the reading's weekday
offset off it (`week_correction`; the weekday of the reading's own local timestamp, never
the wall clock): at the end of each whole local day, the day's mean reading is learned into
its weekday's offset from a slow reference (``week_alpha`` per visit of that weekday, ~3
weeks; the reference, the deseasonalised mean of daily means, at ``week_base_alpha`` a day).
The correction is used once every weekday has been seen ``week_min`` whole days and only
while the seven offsets explain the daily means (their mean |offset from their mean| above
``week_gate`` times the daily means' typical residual, learned at ``week_dev_alpha`` a day),
so a stream without a weekly pattern, or one whose level just shifted, is not corrected.
The level and the previous reading are kept on the corrected scale (when a day's correction
changes they move with it), so a learned weekend is neither a level shift nor a jump, while a
weekday at the weekend's level still is.

The two time-of-day experts have a say only while the profile explains the
stream (``season_gate``: its slots' mean spread is below the deviation from the
level), and the jump expert only while the previous reading predicts the next
better than the level does (``jump_gate``: the typical step is below the
deviation from the level); otherwise they would only add chances of a false
surprise (the score is the rarest of the experts' p-values).

Every residual is *calibrated on the stream itself*: a decaying histogram of
that expert's past residuals (``calib_alpha``: ~1,000 readings of memory) says
how rare the new residual is (``p``: the share of past residuals at least as
large, extrapolated past the largest seen). The surprise is ``S = -log10(min p)``
over the experts and the score is ``S / (S + score_half)`` in [0, 1): 0.5 means
"rarer than one in 10**score_half of this stream's own readings". Calibrating per
stream is what lets one global threshold hold on flat, smooth and noisy series
alike; floors on every scale (the data's own resolution, a relative epsilon) keep a
flat series from turning a rounding step into an alarm.

Everything is deterministic (no randomness at all), parameters are global
(`Params`), and the state is at most 1,348 B per stream as msgpack (`statistical.state_bytes`;
every slot, bin and counter at its cap): the calibration histograms count in millionths of a
reading as integers (5 bytes each in msgpack, where a float takes 9).

This module imports nothing beyond the standard library's ``math`` and ``typing`` so that
``steward score`` starts fast; `statistical` adds the stored form of the state (msgspec
structs, for device health's snapshots) and the decision for incidents.
"""

from __future__ import annotations

import math
from typing import NamedTuple

# Residual bin edges (in units of the expert's learned scale) of the calibration histogram.
EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 32.0, 40.0, 50.0, 64.0,
         80.0, 100.0)
NB = len(EDGES)
EXPERTS = ("level", "jump", "season", "season_run")
NE = len(EXPERTS)
DAY = 86400.0
UNIT = 1_000_000  # the calibration histograms count in millionths of a reading (a msgpack int: 5 bytes, not 9)


class Params(NamedTuple):
    """Global parameters: the same for every stream (documented in detectors/README.md)."""

    grace: int = 150  # readings learned before anything is scored
    level_alpha: float = 0.01  # level memory (~100 readings): re-learns a new level at this pace
    scale_alpha: float = 0.01  # memory of the typical deviation and step
    slots: int = 48  # time-of-day profile slots (30 min each)
    profile_alpha: float = 0.05  # each slot's memory (~20 visits = days)
    profile_min: int = 3  # visits before a slot's profile is used
    smooth_alpha: float = 0.03  # averaging of the season residual (~30 readings)
    calib_alpha: float = 0.001  # calibration memory (~1,000 readings)
    tail_power: float = 3.0  # beyond the largest residual seen, p falls as (largest / z) ** tail_power
    max_fade: float = 0.9999  # the largest residual seen fades by this per reading
    score_half: float = 3.0  # surprise (-log10 p) that scores 0.5
    report_decay: float = 0.995  # report_once: how fast the last report's surprise fades (per reading)
    echo_damp: float = 0.3  # report_once: an echo of a recent report keeps this share of its score
    # the time-of-day experts have a say only while the profile explains the stream: its slots'
    # mean spread is below this share of the deviation from the level (1: better than no profile)
    season_gate: float = 1.0
    # the jump expert has a say only while the previous reading predicts the next better than the
    # level does (typical step below this share of the deviation from the level; white noise: 1.4)
    jump_gate: float = 1.0
    # the day-of-week correction (see `week_correction`): each weekday's offset learns its day's mean
    # at this pace per visit (~3 weeks of memory), the reference (the deseasonalised mean of daily
    # means) at week_base_alpha per day, the daily means' typical residual at week_dev_alpha per day
    week_alpha: float = 0.3
    week_base_alpha: float = 0.15
    week_dev_alpha: float = 0.1
    week_min: int = 2  # whole days seen of every weekday before the correction is used
    # ...and used only while it explains the daily means: the weekdays' mean |offset| above this
    # many times their typical residual
    week_gate: float = 1.0


class Stream:
    """One stream's learned state as plain Python (``steward score``, which stores nothing).
    `statistical.StreamState` has the same fields, in the same order, as a msgspec struct
    (device health's snapshots); every function here takes either."""

    __slots__ = ("n", "level", "level_dev", "prev", "step", "resolution", "run", "peak", "profile", "spread",
                 "visits", "calib", "calib_n", "calib_max", "week", "week_visits", "week_base", "week_dev", "day",
                 "day_sum", "day_n")

    def __init__(self) -> None:
        self.n = 0
        self.level = 0.0
        self.level_dev = 0.0  # mean |x - level|
        self.prev = 0.0
        self.step = 0.0  # mean |x - prev|
        self.resolution = math.inf  # smallest non-zero step seen: the sensor's quantum
        self.run = 0.0  # smoothed season residual
        self.peak = 0.0  # report_once: surprise of the last report, fading
        self.profile: list[float] = []  # slot offset from the level
        self.spread: list[float] = []  # slot mean |residual|
        self.visits: list[int] = []  # readings seen per slot (capped)
        self.calib: list[int] = []  # NE x NB decaying residual histograms, in millionths of a reading
        self.calib_n = 0  # their common (decayed) mass, in millionths, decayed the same way
        self.calib_max: list[float] = []  # largest residual per expert, fading
        self.week: list[float] = []  # day-of-week offset of the daily mean from week_base (Monday first)
        self.week_visits: list[int] = []  # whole days folded in per weekday (capped)
        self.week_base = 0.0  # deseasonalised mean of the daily means
        self.week_dev = 0.0  # mean |daily mean - week_base - its weekday's offset|
        self.day = 0  # the local day (days since 1970-01-01) being summed...
        self.day_sum = 0.0  # ...the sum of its readings...
        self.day_n = 0  # ...and their number


def _bin(z: float) -> int:
    lo, hi = 0, NB - 1
    if z >= EDGES[-1]:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if EDGES[mid] <= z:
            lo = mid
        else:
            hi = mid
    return lo


def _tail(h: list[float], off: int, total: float, z: float, zmax: float, power: float) -> float:
    """Share of this expert's past residuals >= z, with one pseudo-count at the largest seen
    (``zmax``, fading) whose weight falls as ``(zmax / z) ** power`` beyond it."""
    b = _bin(z)
    above = 0.0
    for i in range(off + b + 1, off + NB):
        above += h[i]
    if b < NB - 1:
        above += h[off + b] * (EDGES[b + 1] - z) / (EDGES[b + 1] - EDGES[b])
    else:
        above += h[off + b] * min(1.0, (EDGES[-1] / z) ** 2)
    extra = (zmax / z) ** power if z > zmax else 1.0
    return (above / UNIT + extra) / (total / UNIT + 1.0)


def week_correction(st: Stream, d: int, p: Params) -> float:
    """The day-of-week correction for local day ``d`` (days since 1970-01-01, a Thursday): its
    weekday's offset from the mean of the seven, once every weekday has been seen ``week_min``
    whole days and while the offsets explain the daily means better than no correction
    (``week_gate``); 0 otherwise. Readings are deseasonalised by it before the other experts see them."""
    if not st.week_visits or min(st.week_visits) < p.week_min:
        return 0.0
    mean = sum(st.week) / 7.0
    spread = sum(abs(w - mean) for w in st.week) / 7.0
    if spread <= p.week_gate * st.week_dev:
        return 0.0
    return st.week[(d + 3) % 7] - mean


def _residuals(st: Stream, x: float, t: float, p: Params) -> tuple[float, float, float, float, int]:
    x -= week_correction(st, int(t // DAY), p)
    floor = max(1e-9, 1e-6 * abs(st.level), 0.5 * st.resolution if st.resolution < math.inf else 0.0)
    z_level = abs(x - st.level) / max(st.level_dev, floor)
    z_jump = abs(x - st.prev) / max(st.step, floor)
    slot = int((t % DAY) / DAY * p.slots) if st.profile else 0
    if st.profile and st.visits[slot] >= p.profile_min:
        z_season = abs(x - st.level - st.profile[slot]) / max(st.spread[slot], floor)
    else:
        z_season = 0.0
    run = (1.0 - p.smooth_alpha) * st.run + p.smooth_alpha * min(z_season, 10.0)
    return z_level, z_jump, z_season, run, slot


ALL = tuple(range(NE))
JUMP = EXPERTS.index("jump")
UNCLOCKED = (EXPERTS.index("level"), EXPERTS.index("jump"))  # for a cycle not tied to the clock (a tank)


def surprise(st: Stream, x: float, t: float, p: Params, experts: tuple[int, ...] = ALL) -> float:
    """-log10 of the rarest expert's p-value for ``x`` at local wall-clock time ``t`` (seconds).

    ``experts``: which experts have a say (all by default; device health leaves the
    time-of-day ones out for a stream whose cycle does not follow the clock)."""
    if st.n < p.grace or st.calib_n <= 0:
        return 0.0
    zs = _residuals(st, x, t, p)
    if p.season_gate and experts is ALL and not _profile_explains(st, p):
        experts = UNCLOCKED  # the time-of-day experts would only add chances of a false surprise
    if p.jump_gate and st.step >= p.jump_gate * st.level_dev:
        experts = tuple(e for e in experts if e != JUMP)  # the previous reading predicts nothing the level does not
    pmin = min(_tail(st.calib, e * NB, st.calib_n, zs[e], st.calib_max[e], p.tail_power) for e in experts)
    return -math.log10(max(pmin, 1e-12))


def score_one(st: Stream, x: float, t: float, p: Params, experts: tuple[int, ...] = ALL) -> float:
    """Anomaly score in [0, 1) of ``x`` at local wall-clock time ``t``; learns nothing."""
    s = surprise(st, x, t, p, experts)
    return s / (s + p.score_half)


def _profile_explains(st: Stream, p: Params) -> bool:
    """Does the time-of-day profile explain the stream (its slots' spread below the level's)?"""
    total, n = 0.0, 0
    for sp, v in zip(st.spread, st.visits):
        if v >= p.profile_min:
            total += sp
            n += 1
    return n > 0 and total < p.season_gate * st.level_dev * n


def slot_of(t: float, p: Params) -> int:
    """The time-of-day profile's slot of local wall-clock time ``t`` (seconds)."""
    return int((t % DAY) / DAY * p.slots)


def usual(st: Stream, t: float, p: Params) -> tuple[float, float] | None:
    """(the usual value, its typical deviation) at local wall-clock time ``t`` by the
    time-of-day profile, or None while that slot has not been seen ``profile_min`` times."""
    if not st.profile:
        return None
    slot = slot_of(t, p)
    if st.visits[slot] < p.profile_min:
        return None
    floor = max(1e-9, 1e-6 * abs(st.level), 0.5 * st.resolution if st.resolution < math.inf else 0.0)
    return st.level + st.profile[slot] + week_correction(st, int(t // DAY), p), max(st.spread[slot], floor)


def learn_one(st: Stream, x: float, t: float, p: Params) -> Stream:
    """Learn ``x`` (at local wall-clock time ``t``, seconds) into the baseline."""
    if not st.profile:
        st.profile, st.spread, st.visits = [0.0] * p.slots, [0.0] * p.slots, [0] * p.slots
        st.calib, st.calib_max = [0] * (NE * NB), [0.0] * NE
    if not st.week:  # (also a state stored before the day-of-week correction existed)
        st.week, st.week_visits = [0.0] * 7, [0] * 7
    zs = _residuals(st, x, t, p)  # as scored, before anything below changes
    slot = zs[4]
    if st.n >= 10:  # the first residuals measure nothing yet
        keep = 1.0 - p.calib_alpha
        h = st.calib
        for i in range(NE * NB):
            h[i] = int(h[i] * keep)
        for e in range(NE):
            h[e * NB + _bin(zs[e])] += UNIT
            st.calib_max[e] = max(zs[e], st.calib_max[e] * p.max_fade)
        st.calib_n = int(st.calib_n * keep) + UNIT
    d = int(t // DAY)
    new_day = d > st.day
    if new_day:
        if 0 < st.day_n < st.n:  # a whole day (not the stream's first, partial one) ends
            _fold_day(st, p)
        st.day, st.day_sum, st.day_n = d, 0.0, 0
    st.day_sum += x
    st.day_n += 1
    raw = x
    x -= week_correction(st, d, p)
    if st.n == 0:
        st.level = st.prev = x
    first = 1.0 / (st.n + 1)
    a, a_scale = max(p.level_alpha, first), max(p.scale_alpha, first)
    dev = x - st.level
    st.level_dev += a_scale * (abs(dev) - st.level_dev)
    st.level += a * dev
    step = abs(x - st.prev)
    if step > 0.0 and (not new_day or x == raw):  # the sensor's quantum from readings deseasonalised alike
        st.resolution = min(st.resolution, step)
    st.step += a_scale * (step - st.step)
    st.run = zs[3]
    offset = x - st.level
    v = st.visits[slot]
    a_slot = max(p.profile_alpha, 1.0 / (v + 1))
    if v == 0:
        st.profile[slot] = offset
    st.spread[slot] += a_slot * (abs(x - st.level - st.profile[slot]) - st.spread[slot])
    st.profile[slot] += a_slot * (offset - st.profile[slot])
    st.visits[slot] = min(v + 1, 127)  # one msgpack byte; past ~20 visits the slot learns at profile_alpha anyway
    st.prev = x
    st.n += 1
    return st


def _fold_day(st: Stream, p: Params) -> None:
    """Learn the day that just ended into its weekday's offset. The level and the previous reading
    are kept in the deseasonalised scale: if the correction of that day changes (the offsets learn,
    the gate opens or closes), they move by the change, so no step is seen where none was."""
    before = week_correction(st, st.day, p)
    m = st.day_sum / st.day_n
    w = (st.day + 3) % 7
    v = st.week_visits[w]
    seen = sum(st.week_visits)
    if seen == 0:
        st.week_base = m
    resid = m - st.week_base - st.week[w]
    if seen > 0:
        st.week_dev += max(p.week_dev_alpha, 1.0 / seen) * (abs(resid) - st.week_dev)
    old = st.week[w]
    st.week[w] += max(p.week_alpha, 1.0 / (v + 1)) * (m - st.week_base - old)
    st.week_base += p.week_base_alpha * (m - old - st.week_base)
    st.week_visits[w] = min(v + 1, 127)
    moved = week_correction(st, st.day, p) - before
    st.level -= moved
    st.prev -= moved


def report_once(st: Stream, score: float, p: Params) -> float:
    """The score to report for a ranking: an anomaly is reported once, at its start.

    A reading no more surprising than the (fading) last report is an echo of it and
    keeps ``echo_damp`` of its score; a more surprising one is reported in full.
    """
    s = p.score_half * score / (1.0 - score) if score < 1.0 else math.inf
    fading = st.peak * p.report_decay
    st.peak = max(fading, s)
    return score if s > fading else score * p.echo_damp
