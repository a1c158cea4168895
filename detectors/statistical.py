"""The learned baseline for any numeric telemetry stream, as device health uses it.

The maths (four experts calibrated on the stream itself, `score_one` / `learn_one`,
`report_once`) is in `detectors.baseline`, which ``steward score`` imports alone; this
module re-exports it and adds what device health needs on top:

- `StreamState`: the baseline's state as a msgspec struct, stored in device snapshots
  (the fields of `baseline.Stream`, in the same order);
- `Decision` / `Alarm` / `decide`: turning scores into an incident for the control
  room that opens early, rarely and clears (deciding stays separate from scoring).
"""

from __future__ import annotations

import math

import msgspec

from detectors.baseline import (  # noqa: F401 (re-exported)
    ALL,
    DAY,
    EDGES,
    EXPERTS,
    JUMP,
    NB,
    NE,
    UNCLOCKED,
    UNIT,
    Params,
    Stream,
    learn_one,
    report_once,
    score_one,
    slot_of,
    surprise,
    usual,
    week_correction,
)


class StreamState(msgspec.Struct, array_like=True):
    """`baseline.Stream` as stored in a device's snapshot (same fields, same order)."""

    n: int = 0
    level: float = 0.0
    level_dev: float = 0.0  # mean |x - level|
    prev: float = 0.0
    step: float = 0.0  # mean |x - prev|
    resolution: float = math.inf  # smallest non-zero step seen: the sensor's quantum
    run: float = 0.0  # smoothed season residual
    peak: float = 0.0  # report_once: surprise of the last report, fading
    profile: list[float] = msgspec.field(default_factory=list)  # slot offset from the level
    spread: list[float] = msgspec.field(default_factory=list)  # slot mean |residual|
    visits: list[int] = msgspec.field(default_factory=list)  # readings seen per slot (capped)
    calib: list[int | float] = msgspec.field(default_factory=list)  # NE x NB decaying residual histograms (millionths)
    calib_n: int | float = 0  # their common (decayed) mass, in millionths
    calib_max: list[float] = msgspec.field(default_factory=list)  # largest residual per expert, fading
    week: list[float] = msgspec.field(default_factory=list)  # day-of-week offset of the daily mean (Monday first)
    week_visits: list[int] = msgspec.field(default_factory=list)  # whole days folded in per weekday (capped)
    week_base: float = 0.0  # deseasonalised mean of the daily means
    week_dev: float = 0.0  # mean |daily mean - week_base - its weekday's offset|
    day: int = 0  # the local day being summed (days since 1970-01-01)...
    day_sum: float = 0.0  # ...the sum of its readings...
    day_n: int = 0  # ...and their number

    def __post_init__(self) -> None:
        # a snapshot from before the histograms counted in millionths of a reading (floats, in readings)
        if self.calib and any(isinstance(v, float) for v in self.calib):
            self.calib = [int(v * UNIT) for v in self.calib]
            self.calib_n = int(self.calib_n * UNIT)


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """Turning scores into an incident for the control room: few, early, clearing.

    Evidence accumulates like a CUSUM: each reading adds ``score - slack`` (never
    below zero), so a sustained run of modestly unusual readings opens as surely as
    one extreme reading, while isolated ones drain away.
    """

    raise_at: float = 0.62  # one reading this surprising opens at once (S ~ 5: one in 100,000)
    slack: float = 0.4  # readings scoring below this (one in 100) add no evidence
    evidence: float = 0.45  # accumulated excess that opens (e.g. 3 readings at 0.55, 9 at 0.45)
    clear_at: float = 0.4  # clears after `clear_after` readings in a row below this
    clear_after: int = 6


class Alarm(msgspec.Struct, array_like=True):
    active: bool = False
    excess: float = 0.0  # accumulated score above the slack
    calm: int = 0  # consecutive readings < clear_at


def decide(al: Alarm, score: float, d: Decision, holds: bool = False) -> tuple[bool, bool]:
    """Feed one score; returns (opened now, cleared now). ``holds``: another rule says
    the condition is true now (it opens, and nothing clears while it holds)."""
    al.excess = max(0.0, al.excess + score - d.slack)
    al.calm = al.calm + 1 if score < d.clear_at and not holds else 0
    if not al.active and (holds or score >= d.raise_at or al.excess >= d.evidence):
        al.active, al.calm = True, 0
        return True, False
    if al.active and al.calm >= d.clear_after:
        al.active, al.excess = False, 0.0
        return False, True
    return False, False


def state_bytes(st: StreamState) -> int:
    return len(msgspec.msgpack.encode(st))
