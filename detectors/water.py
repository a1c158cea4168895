"""Water supply: bursts, continuous-flow and night-flow leaks (with learned
per-dwelling limits), wet leak sensors, pressure out of band, building-wide
supply interruption, tanks and pumps.

Conditions and tiers:

- ``burst`` (Level 1): meter flow >= ``burst_flow_lpm`` (beyond any household
  draw) reached by a single jump of >= ``burst_jump_lpm`` (no fixture delivers
  that alone: a pipe gave way) and lasting ``burst_confirm_s``; reached by draws
  adding up, it must last ``burst_sustained_s``. A pressure drop in the building
  or a wet sensor in the unit, when seen, is added to the incident's detail.
- ``continuous_flow`` (Level 2): flow never back to zero. The home rule (>= 20
  min and >= 23 L) applies to a *trickle* run (at least ``trickle_share`` of
  its time below ``trickle_lpm``: the signature of a leak under normal draws);
  a run of high flow (a long shower) only counts after ``fixture_run_s``.
  Both limits adapt: after ``continuous_flow_learn_runs`` normal runs of each
  kind, the limit is 1.3 x the longest of them (capped). Severity +1 every
  ``leak_severity_step_s``; at ``flood_volume_l`` in one run it escalates to
  Level 1 (a leak that keeps flowing becomes a flood).
- ``night_flow`` (Level 3 work order): the minimum night flow (lowest reading
  02:00-04:00 local) above the dwelling's learned night baseline (median +
  max(margin, 4 x MAD) of past normal nights; ``night_flow_fixed_lpm`` while
  learning) for ``night_flow_nights`` consecutive nights.
- ``water_leak`` (Level 2): a leak sensor wet; escalates to Level 1 when still
  wet after ``leak_flood_s``.
- ``pressure_out_of_band`` (Level 3 work order): one device outside
  [``pressure_low_kpa``, ``pressure_high_kpa``] for ``pressure_confirm_s``.
  When ``building_pressure_min_devices`` devices of a building are low together
  (each for ``building_pressure_confirm_s``), the building gets ONE
  ``supply_interruption`` (Level 2, `detectors.building`, decided at the
  community's watermark) and per-device incidents fold into it.
- ``tank_low`` / ``tank_high`` / ``pump_fault`` (Level 2).
"""

from __future__ import annotations

import datetime as dt
import functools
from array import array
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from domain.events import Event
from detectors.base import Changes, Ctx, Raised, clear, earliest, raise_

RUN_HISTORY = 16
NIGHT_HISTORY = 14
LEARN_RUN_MIN_S = 5 * 60.0  # shorter runs say nothing about a dwelling's long uses
MAX_GAP_S = 15 * 60.0  # a reading older than this is not integrated across the gap
PRESSURE_DROP_LOOKBACK_S = 300.0


class WaterState(msgspec.Struct, array_like=True):
    last_ts: float = 0.0
    flow: float = 0.0
    run_start: float | None = None
    run_vol: float = 0.0
    run_trickle_s: float = 0.0  # time of the run spent below trickle_lpm
    trickle_runs: bytes = b""  # uint16 minutes of past normal trickle-dominated runs
    fixture_runs: bytes = b""  # uint16 minutes of past normal high-flow runs
    spike_since: float | None = None
    spike_sudden: bool = False  # reached by one jump (a pipe giving way), not by draws adding up
    night_end: float | None = None  # end of the night window being watched (epoch s)
    night_min: float = -1.0  # lowest reading in it (-1: none yet)
    nights: bytes = b""  # float32 minimum night flow of past normal nights
    night_exceed: int = 0
    p_since: float | None = None
    p_kind: str = ""
    p_avg: float = 0.0
    p_fired: bool = False
    wet_since: float | None = None
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)


def _learned(runs: bytes, floor: float, ctx: Ctx) -> float:
    th = ctx.th
    if len(runs) < 2 * th.continuous_flow_learn_runs:  # uint16 each
        return floor
    return _learned_limit(runs, floor, th.continuous_flow_max_learned_s)


@functools.lru_cache(maxsize=8192)
def _learned_limit(runs: bytes, floor: float, max_learned_s: float) -> float:
    """(The runs change when a run ends; the limit is asked at every reading.)"""
    return min(max(floor, 1.3 * max(array("H", runs)) * 60.0), max(floor, max_learned_s))


def trickle_limit_s(st: WaterState, ctx: Ctx) -> float:
    return _learned(st.trickle_runs, ctx.th.continuous_flow_s, ctx)


def fixture_limit_s(st: WaterState, ctx: Ctx) -> float:
    return _learned(st.fixture_runs, ctx.th.fixture_run_s, ctx)


def _run_volume(st: WaterState, now: float) -> float:
    return st.run_vol + st.flow * min(max(now - st.last_ts, 0.0), MAX_GAP_S) / 60.0


def _trickle_s(st: WaterState, ctx: Ctx, now: float) -> float:
    extra = min(max(now - st.last_ts, 0.0), MAX_GAP_S) if st.flow < ctx.th.trickle_lpm else 0.0
    return st.run_trickle_s + extra


def _is_leak(st: WaterState, ctx: Ctx, now: float) -> str | None:
    """Which rule the running flow breaks now, if any."""
    th = ctx.th
    if st.run_start is None:
        return None
    duration = now - st.run_start
    if _run_volume(st, now) < th.continuous_flow_l:
        return None
    if duration >= trickle_limit_s(st, ctx) and _trickle_s(st, ctx, now) >= th.trickle_share * duration:
        return "trickle"
    if duration >= fixture_limit_s(st, ctx):
        return "fixture"
    return None


def next_deadline(st: WaterState, ctx: Ctx) -> float | None:
    th = ctx.th
    cands: list[float | None] = [st.night_end]
    if st.run_start is not None and st.last_ts:
        horizon = st.last_ts + MAX_GAP_S  # meters report every minute while water runs
        cur = st.raised.get("continuous_flow")
        if cur is None:
            for due in (st.run_start + trickle_limit_s(st, ctx), st.run_start + fixture_limit_s(st, ctx)):
                if st.last_ts < due <= horizon:
                    cands.append(due)
        else:
            cands.append(cur.since + cur.severity * th.leak_severity_step_s)
            if cur.tier > 1 and st.flow > 0:
                due = st.last_ts + max(th.flood_volume_l - st.run_vol, 0.0) / st.flow * 60.0
                if due <= horizon:
                    cands.append(due)
    if st.spike_since is not None and "burst" not in st.raised:
        cands.append(st.spike_since + _burst_wait(st, ctx))
    if st.p_since is not None and not st.p_fired:
        cands.append(st.p_since + th.pressure_confirm_s)
    leak = st.raised.get("water_leak")
    if st.wet_since is not None and leak is not None and leak.tier > 1:
        cands.append(st.wet_since + th.leak_flood_s)
    return earliest(*cands)


def on_tick(st: WaterState, ctx: Ctx, now: float) -> tuple[WaterState, Changes]:
    th = ctx.th
    out: Changes = []
    if st.night_end is not None and now >= st.night_end:
        out += _close_night(st, ctx)
    if st.run_start is not None:
        cur = st.raised.get("continuous_flow")
        rule = _is_leak(st, ctx, now) if cur is None else "open"
        if rule is not None:
            vol = _run_volume(st, now)
            severity = 1 if cur is None else 1 + int((now - cur.since) // th.leak_severity_step_s)
            tier = 1 if vol >= th.flood_volume_l else 2
            title = "Flood: water has kept flowing" if tier == 1 else "Continuous-flow leak: flow never returns to zero"
            detail = {"minutes": round((now - st.run_start) / 60, 1), "litres": round(vol, 1)}
            if cur is None:
                detail |= {"rule": rule, "limit_min": round((trickle_limit_s(st, ctx) if rule == "trickle" else fixture_limit_s(st, ctx)) / 60, 1)}
            out += raise_(st.raised, ctx, "continuous_flow", tier, now, title, severity=severity, detail=detail)
    if st.spike_since is not None and "burst" not in st.raised and now >= st.spike_since + _burst_wait(st, ctx):
        evidence = {k: v for k, v in ctx.facts.items() if k in ("unit_wet", "pressure_drop_at")}
        out += raise_(st.raised, ctx, "burst", 1, now, "Pipe burst: water flowing far beyond any household use",
                      detail={"flow_lpm": st.flow, **evidence})
    if st.p_since is not None and not st.p_fired and now >= st.p_since + th.pressure_confirm_s:
        st.p_fired = True
        if not ctx.facts.get("building_grouped"):
            out += raise_(st.raised, ctx, "pressure_out_of_band", 3, now, f"Water pressure {st.p_kind}", work_order=True,
                          detail={"kind": st.p_kind})
    leak = st.raised.get("water_leak")
    if st.wet_since is not None and leak is not None and leak.tier > 1 and now >= st.wet_since + th.leak_flood_s:
        out += raise_(st.raised, ctx, "water_leak", 1, now, "Flooding: leak sensor wet for a long time", severity=2)
    return st, out


def _night_window_end(ts: float, ctx: Ctx) -> float | None:
    """The end (epoch s) of the night window containing ``ts``, or None outside it."""
    th = ctx.th
    # The same for every reading of a quarter of an hour (UTC offsets are whole quarters),
    # and asked at every flow reading: worked out once per quarter.
    return _night_end_of_quarter(int(ts // 900), th.timezone, th.night_start_hour, th.night_end_hour)


@functools.lru_cache(maxsize=4096)
def _night_end_of_quarter(quarter: int, zone: str, start_hour: int, end_hour: int) -> float | None:
    local = dt.datetime.fromtimestamp(quarter * 900, ZoneInfo(zone))
    if not start_hour <= local.hour < end_hour:
        return None
    return local.replace(hour=end_hour, minute=0, second=0, microsecond=0).timestamp()


def _close_night(st: WaterState, ctx: Ctx) -> Changes:
    th = ctx.th
    end = st.night_end or 0.0
    mnf = st.night_min
    st.night_end, st.night_min = None, -1.0
    if mnf < 0:
        return []
    nights = np.frombuffer(st.nights, dtype=np.float32)
    if len(nights) >= th.night_flow_learn_nights:
        base = float(np.median(nights))
        mad = float(np.median(np.abs(nights - base)))
        limit = base + max(th.night_flow_margin_lpm, 4 * 1.4826 * mad)
    else:
        limit = th.night_flow_fixed_lpm
    if mnf > limit:
        st.night_exceed += 1
        if st.night_exceed >= th.night_flow_nights:
            return raise_(st.raised, ctx, "night_flow", 3, end, "Night-flow leak: minimum night flow above the dwelling's baseline",
                          severity=st.night_exceed - th.night_flow_nights + 1, work_order=True,
                          detail={"night_min_lpm": round(mnf, 3), "limit_lpm": round(limit, 3), "nights": st.night_exceed})
        return []
    st.night_exceed = 0
    st.nights = (st.nights + np.float32(mnf).tobytes())[-4 * NIGHT_HISTORY:]
    return clear(st.raised, ctx, "night_flow", end, "Minimum night flow back to baseline", detail={"night_min_lpm": round(mnf, 3)})


def _end_run(st: WaterState, ctx: Ctx, ts: float) -> Changes:
    assert st.run_start is not None
    duration = ts - st.run_start
    out: Changes = []
    trickle = st.run_trickle_s >= ctx.th.trickle_share * duration
    limit = trickle_limit_s(st, ctx) if trickle else fixture_limit_s(st, ctx)
    if "continuous_flow" in st.raised:
        out = clear(st.raised, ctx, "continuous_flow", ts, "Flow back to zero",
                    detail={"minutes": round(duration / 60, 1), "litres": round(st.run_vol, 1)})
    # A run that stopped by itself within twice the limit is this home's usage (a
    # leak does not stop by itself): learn it, even if it raised an incident.
    if LEARN_RUN_MIN_S <= duration <= 2 * limit:
        minutes = array("H", [min(int(duration // 60), 65535)]).tobytes()
        if trickle:
            st.trickle_runs = (st.trickle_runs + minutes)[-2 * RUN_HISTORY:]
        else:
            st.fixture_runs = (st.fixture_runs + minutes)[-2 * RUN_HISTORY:]
    st.run_start, st.run_vol, st.run_trickle_s = None, 0.0, 0.0
    return out


def _burst_wait(st: WaterState, ctx: Ctx) -> float:
    return ctx.th.burst_confirm_s if st.spike_sudden else ctx.th.burst_sustained_s


def _on_flow(st: WaterState, ctx: Ctx, flow: float, ts: float) -> Changes:
    th = ctx.th
    out: Changes = []
    previous = st.flow
    if st.run_start is not None and st.last_ts:
        span = min(max(ts - st.last_ts, 0.0), MAX_GAP_S)
        st.run_vol += st.flow * span / 60.0
        if st.flow < th.trickle_lpm:
            st.run_trickle_s += span
    end = _night_window_end(ts, ctx)
    if end is not None:
        if st.night_end != end:
            st.night_end, st.night_min = end, flow
        else:
            st.night_min = flow if st.night_min < 0 else min(st.night_min, flow)
    st.flow, st.last_ts = flow, ts
    if flow > th.flow_zero_lpm:
        if st.run_start is None:
            st.run_start, st.run_vol, st.run_trickle_s = ts, 0.0, 0.0
    elif st.run_start is not None:
        out += _end_run(st, ctx, ts)
    if flow >= th.burst_flow_lpm:
        if st.spike_since is None:
            st.spike_since, st.spike_sudden = ts, flow - previous >= th.burst_jump_lpm
    elif st.spike_since is not None:
        st.spike_since = None
        out += clear(st.raised, ctx, "burst", ts, "Flow back below the burst level")
    return out


def _on_pressure(st: WaterState, ctx: Ctx, kpa: float, ts: float) -> Changes:
    th = ctx.th
    kind = "low" if kpa < th.pressure_low_kpa else "high" if kpa > th.pressure_high_kpa else ""
    if kind:
        if st.p_since is None or st.p_kind != kind:
            st.p_since, st.p_kind, st.p_fired = ts, kind, False
        return []
    st.p_avg = kpa if st.p_avg == 0 else st.p_avg + 0.05 * (kpa - st.p_avg)
    st.p_since, st.p_kind, st.p_fired = None, "", False
    return clear(st.raised, ctx, "pressure_out_of_band", ts, "Water pressure back in band", detail={"kpa": kpa})


def pressure_dropped(st: WaterState, ctx: Ctx, kpa: float) -> bool:
    """A reading well below this device's own learned pressure (evidence for a burst)."""
    return kpa < ctx.th.pressure_low_kpa or (st.p_avg > 0 and kpa < 0.7 * st.p_avg)


def on_event(st: WaterState, ctx: Ctx, ev: Event) -> tuple[WaterState, Changes]:
    th = ctx.th
    ts = ev.ts.timestamp()
    st, out = on_tick(st, ctx, ts)
    f = ev.fields
    if ev.type == "flow":
        out += _on_flow(st, ctx, float(f["flow_lpm"]), ts)
    elif ev.type == "pressure":
        out += _on_pressure(st, ctx, float(f["pressure_kpa"]), ts)
    elif ev.type == "leak":
        if f["wet"]:
            if st.wet_since is None:
                st.wet_since = ts
            out += raise_(st.raised, ctx, "water_leak", 2, ts, "Leak sensor wet", detail={"sensor": ctx.device.name})
        else:
            st.wet_since = None
            out += clear(st.raised, ctx, "water_leak", ts, "Leak sensor dry again")
    elif ev.type == "tank_level":
        level = float(f["level_pct"])
        if level < th.tank_low_pct:
            out += raise_(st.raised, ctx, "tank_low", 2, ts, f"Water tank low ({level:.0f} %)", detail={"level_pct": level})
        elif level > th.tank_high_pct:
            out += raise_(st.raised, ctx, "tank_high", 2, ts, f"Water tank high ({level:.0f} %)", detail={"level_pct": level})
        else:
            if level >= th.tank_low_pct + 5:
                out += clear(st.raised, ctx, "tank_low", ts, "Tank level back to normal")
            if level <= th.tank_high_pct - 3:
                out += clear(st.raised, ctx, "tank_high", ts, "Tank level back to normal")
    elif ev.type == "pump":
        if f["state"] == "fault":
            out += raise_(st.raised, ctx, "pump_fault", 2, ts, f"Pump fault {f.get('fault_code') or ''}".strip(),
                          detail={"fault_code": f.get("fault_code")})
        else:
            out += clear(st.raised, ctx, "pump_fault", ts, "Pump running normally again")
    st, more = on_tick(st, ctx, ts)
    return st, out + more
