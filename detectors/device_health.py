"""Every device: heartbeat / last seen, last-will offline, battery low, sensor stuck.

Conditions (all Level 3 work orders, DOMAIN.md "Every device"):

- ``offline``: the one condition that *is* about silence, so the one decided
  against receive time: no message received for three missed heartbeats
  (`offline_after`: ``offline_missed_beats`` x the device's own heartbeat period,
  learned as the median of its last 8 heartbeat gaps in whole minutes, never
  below ``offline_after_s`` = 15 min nor above ``offline_max_s``: a battery meter
  that reports every half hour is not offline after 15 minutes) (the engine
  keeps each device's receive time and fires the deadline to the second), or a
  last-will ``offline`` not followed by anything within ``offline_grace_s``.
  Late data can also show a gap: two consecutive messages of the device more
  than that apart in *event* time (a device that was off while
  its data arrived later, or a whole log delivered at once) is the same
  incident, opened at the earlier message + the limit and cleared at
  the later one. Either way the times are the device's own (event time): the
  incident is identical however the data was delivered. Clears on the next
  message.
- ``battery_low`` (and ``battery_low.<sensor>`` for sensors behind a hub):
  below ``battery_low_pct``; clears at ``battery_ok_pct`` (hysteresis).
- ``sensor_stuck``: a reading in ``stuck_fields`` unchanged for
  ``stuck_after_s`` and ``stuck_min_readings``; clears when it moves.
- ``telemetry_anomaly.<field>`` (opt-in, ``anomaly_fields``): the learned
  baseline of statistical.py (level, steps and the time-of-day profile of the
  community's local clock) scores each reading before learning it, plus two
  rules from the physics (jumps the process cannot make: an erratic sensor; a
  lasting offset from the usual for the hour: a drifted sensor). Nothing is
  decided while a stream is younger than ``anomaly_learn_s`` (its daily pattern
  is not known yet). See telemetry_health.py.
"""

from __future__ import annotations

import functools
from array import array

import msgspec

from domain.events import Event
from detectors import statistical, telemetry_health
from detectors.base import Changes, Ctx, Raised, clear, earliest, raise_
from detectors.config import Thresholds


class HealthState(msgspec.Struct, array_like=True):
    last_seen: float = 0.0  # receive time of the last message (epoch s)
    will_at: float | None = None  # last-will "offline" received at
    # field -> [value, since, readings]
    stuck: dict[str, list[float]] = msgspec.field(default_factory=dict)
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)
    stats: dict[str, statistical.StreamState] = msgspec.field(default_factory=dict)
    # field -> its alarm and the rules' memory (telemetry_health.FieldWatch)
    alarms: dict[str, telemetry_health.FieldWatch] = msgspec.field(default_factory=dict)
    last_ts: float = 0.0  # event time of the last message applied (in event-time order)
    back_ts: float = 0.0  # event time of the message that ended the last receive-time offline
    beat_ts: float = 0.0  # event time of the latest heartbeat
    beats: bytes = b""  # uint32 seconds between its last BEAT_HISTORY heartbeats, newest last


BEAT_HISTORY = 8


def offline_after(st: HealthState, th: Thresholds) -> float:
    """Silence that makes this device offline: ``offline_missed_beats`` of its own heartbeat
    period, never below ``offline_after_s`` (DOMAIN.md's 5-minute heartbeat: 15 min) nor
    above ``offline_max_s``. The period is the median of its last heartbeat gaps (one gap
    that was an outage does not move it), in whole minutes (devices are configured in
    minutes; seconds of jitter are the network)."""
    if not st.beats:
        return th.offline_after_s
    period = _beat_period(st.beats)
    return min(max(th.offline_after_s, th.offline_missed_beats * period), max(th.offline_max_s, th.offline_after_s))


@functools.lru_cache(maxsize=8192)
def _beat_period(beats: bytes) -> int:
    """(Its heartbeat gaps change at a heartbeat; the limit is asked at every message.)"""
    gaps = sorted(array("I", beats))
    return max(60, round(gaps[len(gaps) // 2] / 60) * 60)


def next_deadline(st: HealthState, ctx: Ctx) -> float | None:
    """No event-time timers: offline runs on receive time (`arrive` / the engine)."""
    return None


def go_offline(st: HealthState, ctx: Ctx, at: float, why: str) -> Changes:
    return raise_(st.raised, ctx, "offline", 3, at, f"Device offline: {ctx.device.name or ctx.device.device_id}",
                  work_order=True, detail={"reason": why, "last_seen": st.last_seen})


def arrive(st: HealthState, ctx: Ctx, ev: Event, received: float, device_now: float) -> Changes:
    """A message was received (any order, any lateness): liveness only. ``device_now`` is
    the receive time in the device's own time frame (its newest event time run on to now)."""
    st.last_seen = max(st.last_seen, received)
    if ev.type == "offline":
        st.will_at = received
        return []
    st.will_at = None
    cur = st.raised.get("offline")
    if cur is None:
        return []
    ts = ev.ts.timestamp()
    st.back_ts = max(st.back_ts, ts)
    # It was unreachable until now. Its message's own time says so when it comes live; a
    # device that buffered meanwhile sends its oldest data first, so then the receive time
    # (in the device's frame) is when it was heard from again.
    back = ts if device_now - ts <= ctx.th.allowed_lateness_s else device_now
    return clear(st.raised, ctx, "offline", max(back, cur.since), "Device back online")


def on_event(st: HealthState, ctx: Ctx, ev: Event) -> tuple[HealthState, Changes]:
    """A message applied in the device's event-time order."""
    th = ctx.th
    ts = ev.ts.timestamp()
    out: Changes = []
    if ev.type in ("offline", "online"):
        return st, out
    gap_from = st.last_ts
    st.last_ts = max(st.last_ts, ts)
    limit = offline_after(st, th)
    if gap_from and ts - gap_from > limit and ts > st.back_ts and "offline" not in st.raised:
        why = f"no message for {ts - gap_from:.0f} s (seen in event time: the data came late)"
        out += go_offline(st, ctx, gap_from + limit, why)
        out += clear(st.raised, ctx, "offline", ts, "Device back online")
    if ev.type == "heartbeat" and ts > st.beat_ts:
        if st.beat_ts:
            gap = min(int(ts - st.beat_ts), 2**32 - 1)
            st.beats = (st.beats + array("I", [gap]).tobytes())[-4 * BEAT_HISTORY:]
        st.beat_ts = ts

    battery = ev.fields.get("battery")
    if battery is not None and ev.type in ("heartbeat", "sensor_battery"):
        sensor = ev.fields.get("sensor")
        cond = f"battery_low.{sensor}" if sensor else "battery_low"
        what = f"sensor {sensor}" if sensor else "device"
        if battery < th.battery_low_pct:
            out += raise_(st.raised, ctx, cond, 3, ts, f"Battery low ({what}, {battery:.0f} %)", work_order=True,
                          detail={"battery": battery, "sensor": sensor})
        elif battery >= th.battery_ok_pct:
            out += clear(st.raised, ctx, cond, ts, "Battery replaced", detail={"battery": battery})

    for name in th.stuck_fields:
        value = ev.fields.get(name)
        if value is None:
            continue
        track = st.stuck.get(name)
        if track is None or abs(track[0] - value) > 1e-9:
            st.stuck[name] = [float(value), ts, 1.0]
            out += clear(st.raised, ctx, "sensor_stuck", ts, "Sensor reading moves again", detail={"field": name})
            continue
        track[2] += 1
        if ts - track[1] >= th.stuck_after_s and track[2] >= th.stuck_min_readings:
            out += raise_(st.raised, ctx, "sensor_stuck", 3, ts, f"Sensor stuck at {value} ({name})", work_order=True,
                          detail={"field": name, "value": value, "since": track[1], "readings": int(track[2])})
    if th.anomaly_fields:
        out += telemetry_health.check(st.stats, st.alarms, st.raised, ctx, ev, ts)
    return st, out


__all__ = ["HealthState", "arrive", "on_event", "go_offline", "next_deadline", "offline_after", "earliest"]
