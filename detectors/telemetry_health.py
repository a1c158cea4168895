"""Device health's numeric anomaly conditions: the learned baseline, decided for the control room.

``telemetry_anomaly.<field>`` (opt-in, ``anomaly_fields``) is one Level 3 work order per
watched field. Three rules feed it; each is argued from what the field measures, not
from the tables that test it:

- **the learned baseline** (statistical.py) scores each reading before learning it;
  readings rarer than the stream's own history open it (one extreme reading, or
  modestly unusual ones adding up: ``statistical.decide``). For a field whose cycle
  does not follow the clock (``anomaly_unclocked_fields``, by default a tank's
  ``level_pct``: a roof tank refills whenever the residents have drawn it down to the
  pump's start level, at a different hour every day) only the clock-free experts
  (level, step) have a say: the time-of-day profile would compare today's filling
  with yesterday's drawing at the same hour.
- **jumps the process cannot make** (every watched field): a physical quantity moves
  at most as fast as its physics lets it (a tank fills at its pump's rate and drains at
  its outlets' rate; a load changes by the riders who step in). The field learns the
  fastest rate it moved in normal readings (the fastest of the learning days, then a
  faster step moves it ``ENVELOPE_GAIN`` of the way: a process does not speed up from
  one reading to the next; half of it is forgotten in ``anomaly_envelope_half_life_s``).
  A step more than ``anomaly_jump_factor`` times that is not the process;
  ``anomaly_jumps`` of them within ``anomaly_jump_window_s``, up and down (a real
  process that outruns its envelope, a tank drained for cleaning, goes one way), is
  an erratic sensor (water in a probe's cable gland, a loose connector). One spike
  out and back is two such steps, so a single glitch is not a work order. Steps are not learned while the sensor is erratic (learn only
  from normal data), and none is judged in the envelope's own first learning days.
- **a lasting offset** (fields with a clock-tied pattern): every reading for
  ``anomaly_run_s`` (and at least ``anomaly_run_readings``) beyond ``anomaly_run_spreads``
  typical deviations, on the same side, of the usual value for its hour (the
  time-of-day profile) is a shift, however ordinary each value would be at another
  hour: a lift's load cell that drifted reads as a loaded car while the car stands
  empty at night (SPC's run rules: a run on one side of the centre line is a shift).
  Each reading is judged against its hour's profile as it stood when the run reached
  that hour, so the baseline learning the run's own readings does not explain the
  fault away within the hour. No run starts during an incident nor for
  ``anomaly_run_rest`` readings after it: the baseline's level (the centre) still
  carries the incident's readings (it forgets them at ``level_alpha`` a reading).
  A run that lasts ``anomaly_run_hold_s`` is a new normal: it stops holding.

The incident clears after ``anomaly_clear_after`` unremarkable readings while no rule
holds.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from detectors import statistical
from detectors.base import Changes, Ctx, clear, raise_
from detectors.config import Thresholds
from domain.events import Event

_PARAMS = statistical.Params()
ENVELOPE_GAIN = 0.05  # after the learning days, a faster step moves the envelope 5 % of the way to it
MIN_DT = 60.0  # readings closer than this are judged as this far apart (a rate needs time to show)


class FieldWatch(msgspec.Struct, array_like=True):
    """Per watched field, next to its statistical.StreamState (the first two fields are the
    former ``(Alarm, since)`` pair, so earlier snapshots still decode)."""

    alarm: statistical.Alarm = msgspec.field(default_factory=statistical.Alarm)
    since: float = 0.0  # event time of the stream's first reading
    last_ts: float = 0.0  # event time of the previous reading
    envelope: float = 0.0  # the fastest normal rate of change (units/s), fading
    jumps: list[float] = msgspec.field(default_factory=list)  # times of the latest impossible steps...
    jump_ups: list[bool] = msgspec.field(default_factory=list)  # ...and their directions
    run: int = 0  # readings in a row beyond the usual for their hour, on one side
    run_side: int = 0  # +1 above, -1 below
    run_from: float = 0.0  # event time of the run's first reading
    envelope_from: float = 0.0  # when the envelope started learning (its own learning days)
    rest: int = 0  # readings to wait after an incident before judging offsets from the level again
    run_slot: int = -1  # the time-of-day slot the run is judged in...
    run_centre: float = 0.0  # ...its usual value and typical deviation when the run reached it
    run_spread: float = 0.0


def check(stats: dict[str, statistical.StreamState], watches: dict[str, FieldWatch], raised: dict, ctx: Ctx,
          ev: Event, ts: float) -> Changes:
    th = ctx.th
    out: Changes = []
    offset = dt.datetime.fromtimestamp(ts, th.zone).utcoffset()
    wall = ts + (offset.total_seconds() if offset else 0.0)  # the profile follows the community's clock
    decision = statistical.Decision(raise_at=th.anomaly_raise_at, slack=th.anomaly_slack,
                                    evidence=th.anomaly_evidence, clear_after=th.anomaly_clear_after)
    for name in th.anomaly_fields:
        value = ev.fields.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        x = float(value)
        base = stats.setdefault(name, statistical.StreamState())
        w = watches.setdefault(name, FieldWatch(since=ts))
        clocked = name not in th.anomaly_unclocked_fields
        experts = statistical.ALL if clocked else statistical.UNCLOCKED
        score = statistical.score_one(base, x, wall, _PARAMS, experts)  # scored before it is learned
        usual = statistical.usual(base, wall, _PARAMS) if clocked else None
        erratic = _jump(w, base, x, ts, th)
        # a new run starts only while the baseline's level is clean: not during an incident nor
        # for `anomaly_run_rest` readings after it (the level still carries its readings)
        fresh = not w.alarm.active and w.rest == 0
        shifted = _run(w, x, ts, wall, base, th, fresh) if clocked else _no_run(w)
        statistical.learn_one(base, x, wall, _PARAMS)
        w.last_ts = max(w.last_ts, ts)
        if ts - w.since < th.anomaly_learn_s:
            continue
        opened, cleared = statistical.decide(w.alarm, score, decision, holds=erratic or shifted)
        w.rest = th.anomaly_run_rest if w.alarm.active else max(0, w.rest - 1)
        cond = f"telemetry_anomaly.{name}"
        if opened:
            why = ("readings jump further than the process ever moved (an erratic sensor)" if erratic else
                   "readings stay off the usual for their hour" if shifted else "readings unlike the stream's history")
            expected = usual[0] if usual is not None else base.level
            detail = {"field": name, "value": value, "score": round(score, 3), "expected": round(expected, 3),
                      "reason": why}
            out += raise_(raised, ctx, cond, 3, ts, f"Unusual {name} readings", work_order=True, detail=detail)
        elif cleared:
            out += clear(raised, ctx, cond, ts, f"{name} back to its usual range")
    return out


def _jump(w: FieldWatch, base: statistical.StreamState, x: float, ts: float, th: Thresholds) -> bool:
    """Is the sensor erratic? Counts steps beyond the process's fastest normal rate and learns it."""
    if base.n > 0 and 0.0 < w.last_ts < ts:
        dt_ = max(ts - w.last_ts, MIN_DT)
        step = x - base.prev
        w.envelope *= 0.5 ** ((ts - w.last_ts) / th.anomaly_envelope_half_life_s)
        if not w.envelope_from:
            w.envelope_from = ts
        learning = ts - w.envelope_from < th.anomaly_learn_s
        quantum = base.resolution if base.resolution < float("inf") else 0.0
        allowed = th.anomaly_jump_factor * max(w.envelope * dt_, 2.0 * quantum)
        if not learning and abs(step) > allowed:
            w.jumps = (w.jumps + [ts])[-th.anomaly_jumps:]
            w.jump_ups = (w.jump_ups + [step > 0])[-th.anomaly_jumps:]
        elif not _recent(w, ts, th) and not w.alarm.active:
            # learn only from normal data; once learned, a faster rate moves the envelope a little
            # (a process does not speed up from one reading to the next; a sensor going erratic
            # must not teach the envelope its own noise before it is caught)
            rate = abs(step) / dt_
            if learning:
                w.envelope = max(w.envelope, rate)
            elif rate > w.envelope:
                w.envelope += ENVELOPE_GAIN * (rate - w.envelope)
    recent = _recent(w, ts, th)
    ups = {up for t, up in zip(w.jumps, w.jump_ups) if ts - t <= th.anomaly_jump_window_s}
    # opens on `anomaly_jumps` within the window, both ways (a real process that outruns its
    # envelope, a tank drained for cleaning, goes one way); once open, holds while any is recent
    return (recent >= th.anomaly_jumps and len(ups) == 2) or (recent > 0 and w.alarm.active)


def _recent(w: FieldWatch, ts: float, th: Thresholds) -> int:
    return sum(1 for t in w.jumps if ts - t <= th.anomaly_jump_window_s)


def _run(w: FieldWatch, x: float, ts: float, wall: float, base: statistical.StreamState, th: Thresholds,
         fresh: bool) -> bool:
    """Is every reading of the last ``anomaly_run_s`` beyond the usual for its hour, on one side?
    ``fresh``: a new run may start (else only one under way goes on)."""
    if not w.run and not fresh:
        return _no_run(w)
    slot = statistical.slot_of(wall, _PARAMS)
    if not w.run or slot != w.run_slot:
        # the hour as the stream knew it before this run reached it: the baseline learning the
        # run's own readings must not explain the fault away
        usual = statistical.usual(base, wall, _PARAMS)
        if usual is None:
            return _no_run(w)
        w.run_slot, (w.run_centre, w.run_spread) = slot, usual
    band = th.anomaly_run_spreads * w.run_spread
    side = 1 if x > w.run_centre + band else -1 if x < w.run_centre - band else 0
    if not side:
        return _no_run(w)
    if side != w.run_side or not w.run:
        if not fresh:
            return _no_run(w)
        w.run, w.run_side, w.run_from = 0, side, ts
    w.run += 1
    if ts - w.run_from > th.anomaly_run_hold_s:
        return False  # lasting this long, it is the new normal: the baseline has it (the level learns it again)
    return w.run >= th.anomaly_run_readings and ts - w.run_from >= th.anomaly_run_s


def _no_run(w: FieldWatch) -> bool:
    w.run, w.run_side = 0, 0
    return False
