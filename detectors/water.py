"""Water supply: bursts, continuous-flow and night-flow leaks (with learned
per-dwelling limits), wet leak sensors, pressure out of band, building-wide
supply interruption, tanks and pumps.

Conditions and tiers:

- ``burst`` (Level 1): meter flow >= ``burst_flow_lpm`` for ``burst_confirm_s``
  together with a pressure drop (this device, or any device of the building
  within 2 minutes) or a wet leak sensor in the same unit. A spike without
  either for ``high_flow_confirm_s`` is ``high_flow`` (Level 2).
- ``continuous_flow`` (Level 2): flow never back to zero for the dwelling's
  limit (default the home rule, 20 min and 23 L; after
  ``continuous_flow_learn_runs`` long normal runs the limit becomes 1.3 x the
  longest of them, capped) . Severity +1 every ``leak_severity_step_s``; when
  the run's volume reaches ``flood_volume_l`` it escalates to Level 1.
- ``night_flow`` (Level 2): the average flow in the 02:00-04:00 window above
  the dwelling's learned night baseline (median + max(margin, 4 x MAD) of past
  normal nights; ``night_flow_fixed_lpm`` while learning) for
  ``night_flow_nights`` consecutive nights.
- ``water_leak`` (Level 2): a leak sensor wet; escalates to Level 1 when still
  wet after ``leak_flood_s``.
- ``pressure_out_of_band`` (Level 3 work order): one device outside
  [``pressure_low_kpa``, ``pressure_high_kpa``] for ``pressure_confirm_s``.
  When ``building_pressure_min_devices`` devices of a building are low
  together, the building gets ONE ``supply_interruption`` (Level 2) and the
  per-device incidents are folded into it.
- ``tank_low`` / ``tank_high`` / ``pump_fault`` (Level 2).
"""

from __future__ import annotations

import datetime as dt
from array import array
from dataclasses import dataclass, field

import msgspec
import numpy as np

from domain.events import Event
from domain.incidents import IncidentChange, Tier
from detectors.base import Changes, Ctx, Raised, clear, earliest, raise_, utc

RUN_HISTORY = 16
NIGHT_HISTORY = 14
LEARN_RUN_MIN_S = 5 * 60.0  # shorter runs say nothing about a dwelling's long uses
MAX_GAP_S = 15 * 60.0  # a reading older than this is not integrated across the gap
PRESSURE_DROP_LOOKBACK_S = 120.0


class WaterState(msgspec.Struct, array_like=True):
    last_ts: float = 0.0
    flow: float = 0.0
    run_start: float | None = None
    run_vol: float = 0.0
    runs: bytes = b""  # uint16 minutes of past normal long runs
    spike_since: float | None = None
    spike_stage: int = 0  # 0 confirming, 1 confirmed (burst if evidence), 2 high flow decided
    night_end: float | None = None  # end of the night window being summed (epoch s)
    night_vol: float = 0.0
    night_span: float = 0.0  # seconds of the window covered by readings
    nights: bytes = b""  # float32 average night flow of past normal nights
    night_exceed: int = 0
    p_since: float | None = None
    p_kind: str = ""
    p_avg: float = 0.0
    p_fired: bool = False
    wet_since: float | None = None
    tank_state: str = ""
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)


def continuous_limit_s(st: WaterState, ctx: Ctx) -> float:
    th = ctx.th
    runs = array("H", st.runs)
    if len(runs) < th.continuous_flow_learn_runs:
        return th.continuous_flow_s
    return min(max(th.continuous_flow_s, 1.3 * max(runs) * 60.0), th.continuous_flow_max_learned_s)


def _run_volume(st: WaterState, now: float) -> float:
    return st.run_vol + st.flow * min(max(now - st.last_ts, 0.0), MAX_GAP_S) / 60.0


def _cont_due(st: WaterState, ctx: Ctx) -> float | None:
    """When the running flow will meet both the time and the volume limit, if it keeps up."""
    th = ctx.th
    if st.run_start is None or "continuous_flow" in st.raised or st.flow <= 0:
        return None
    need = max(th.continuous_flow_l - st.run_vol, 0.0)
    due = max(st.run_start + continuous_limit_s(st, ctx), st.last_ts + need / st.flow * 60.0)
    return due if due <= st.last_ts + MAX_GAP_S else None


def _flood_due(st: WaterState, ctx: Ctx) -> float | None:
    cur = st.raised.get("continuous_flow")
    if cur is None or cur.tier == 1 or st.flow <= 0:
        return None
    due = st.last_ts + max(ctx.th.flood_volume_l - st.run_vol, 0.0) / st.flow * 60.0
    return due if due <= st.last_ts + MAX_GAP_S else None


def next_deadline(st: WaterState, ctx: Ctx) -> float | None:
    th = ctx.th
    cands: list[float | None] = [st.night_end, _cont_due(st, ctx), _flood_due(st, ctx)]
    cur = st.raised.get("continuous_flow")
    if cur is not None and st.run_start is not None:
        cands.append(cur.since + cur.severity * th.leak_severity_step_s)
    if st.spike_since is not None:
        if st.spike_stage == 0:
            cands.append(st.spike_since + th.burst_confirm_s)
        elif st.spike_stage == 1:
            cands.append(st.spike_since + th.high_flow_confirm_s)
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
        limit = continuous_limit_s(st, ctx)
        vol = _run_volume(st, now)
        cur = st.raised.get("continuous_flow")
        if now >= st.run_start + limit and vol >= th.continuous_flow_l:
            severity = 1 if cur is None else 1 + int((now - cur.since) // th.leak_severity_step_s)
            tier = 1 if vol >= th.flood_volume_l else 2
            title = "Flood: water has kept flowing" if tier == 1 else "Continuous-flow leak: flow never returns to zero"
            out += raise_(st.raised, ctx, "continuous_flow", tier, now, title, severity=severity,
                          detail={"minutes": round((now - st.run_start) / 60, 1), "litres": round(vol, 1),
                                  "limit_min": round(limit / 60, 1)})
    if st.spike_since is not None:
        if st.spike_stage == 0 and now >= st.spike_since + th.burst_confirm_s:
            st.spike_stage = 1
        if st.spike_stage == 1 and now >= st.spike_since + th.high_flow_confirm_s:
            st.spike_stage = 2
            if "burst" not in st.raised and not _burst_evidence(st, ctx):
                out += raise_(st.raised, ctx, "high_flow", 2, now, "Abnormally high water flow", detail={"flow_lpm": st.flow})
        if st.spike_stage >= 1 and "burst" not in st.raised and _burst_evidence(st, ctx):
            out += raise_(st.raised, ctx, "burst", 1, now, "Pipe burst: flow spike with pressure drop / wet floor",
                          detail={"flow_lpm": st.flow, **{k: v for k, v in ctx.facts.items() if k != "building_grouped"}})
            out += clear(st.raised, ctx, "high_flow", now, "Folded into the burst incident")
    if st.p_since is not None and not st.p_fired and now >= st.p_since + th.pressure_confirm_s:
        st.p_fired = True
        if not ctx.facts.get("building_grouped"):
            out += raise_(st.raised, ctx, "pressure_out_of_band", 3, now, f"Water pressure {st.p_kind}", work_order=True,
                          detail={"kind": st.p_kind})
    leak = st.raised.get("water_leak")
    if st.wet_since is not None and leak is not None and leak.tier > 1 and now >= st.wet_since + th.leak_flood_s:
        out += raise_(st.raised, ctx, "water_leak", 1, now, "Flooding: leak sensor wet for a long time", severity=2)
    return st, out


def _burst_evidence(st: WaterState, ctx: Ctx) -> bool:
    if ctx.facts.get("unit_wet"):
        return True
    if st.p_since is not None and st.p_kind == "low":
        return True
    drop_at = ctx.facts.get("pressure_drop_at")
    return drop_at is not None and st.spike_since is not None and drop_at >= st.spike_since - PRESSURE_DROP_LOOKBACK_S


def _night_window(ts: float, ctx: Ctx) -> float | None:
    """The end (epoch s) of the night window containing ``ts``, or None outside it."""
    th = ctx.th
    local = dt.datetime.fromtimestamp(ts, th.zone)
    if not th.night_start_hour <= local.hour < th.night_end_hour:
        return None
    end = local.replace(hour=th.night_end_hour, minute=0, second=0, microsecond=0)
    return end.timestamp()


def _close_night(st: WaterState, ctx: Ctx) -> Changes:
    th = ctx.th
    end = st.night_end or 0.0
    window_s = (th.night_end_hour - th.night_start_hour) * 3600.0
    covered = st.night_span >= 0.5 * window_s
    avg = st.night_vol / (st.night_span / 60.0) if st.night_span > 0 else 0.0
    st.night_end, st.night_vol, st.night_span = None, 0.0, 0.0
    if not covered:
        return []
    nights = np.frombuffer(st.nights, dtype=np.float32)
    if len(nights) >= th.night_flow_learn_nights:
        base = float(np.median(nights))
        mad = float(np.median(np.abs(nights - base)))
        limit = base + max(th.night_flow_margin_lpm, 4 * 1.4826 * mad)
    else:
        limit = th.night_flow_fixed_lpm
    if avg > limit:
        st.night_exceed += 1
        if st.night_exceed >= th.night_flow_nights:
            return raise_(st.raised, ctx, "night_flow", 2, end, "Night-flow leak: night flow above the dwelling's baseline",
                          severity=st.night_exceed - th.night_flow_nights + 1,
                          detail={"night_lpm": round(avg, 3), "limit_lpm": round(limit, 3), "nights": st.night_exceed})
        return []
    st.night_exceed = 0
    st.nights = (st.nights + np.float32(avg).tobytes())[-4 * NIGHT_HISTORY:]
    return clear(st.raised, ctx, "night_flow", end, "Night flow back to baseline", detail={"night_lpm": round(avg, 3)})


def _on_flow(st: WaterState, ctx: Ctx, flow: float, ts: float) -> Changes:
    th = ctx.th
    out: Changes = []
    gap = ts - st.last_ts if st.last_ts else 0.0
    seg = st.flow * min(max(gap, 0.0), MAX_GAP_S) / 60.0  # litres since the previous reading
    if st.run_start is not None:
        st.run_vol += seg
    end = _night_window(ts, ctx)
    if end is not None:
        if st.night_end is None:
            st.night_end = end
        elif st.last_ts and _night_window(st.last_ts, ctx) == end:
            st.night_vol += seg
            st.night_span += min(max(gap, 0.0), MAX_GAP_S)
    st.flow, st.last_ts = flow, ts
    if flow > th.flow_zero_lpm:
        if st.run_start is None:
            st.run_start, st.run_vol = ts, 0.0
    elif st.run_start is not None:
        duration = ts - st.run_start
        if "continuous_flow" in st.raised:
            out += clear(st.raised, ctx, "continuous_flow", ts, "Flow back to zero",
                         detail={"minutes": round(duration / 60, 1), "litres": round(st.run_vol, 1)})
        elif duration >= LEARN_RUN_MIN_S:
            st.runs = (st.runs + array("H", [min(int(duration // 60), 65535)]).tobytes())[-2 * RUN_HISTORY:]
        st.run_start, st.run_vol = None, 0.0
    if flow >= th.burst_flow_lpm:
        if st.spike_since is None:
            st.spike_since, st.spike_stage = ts, 0
    elif st.spike_since is not None:
        st.spike_since, st.spike_stage = None, 0
        out += clear(st.raised, ctx, "burst", ts, "Flow back below the burst level")
        out += clear(st.raised, ctx, "high_flow", ts, "Flow back to normal")
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
            if level <= th.tank_high_pct - 5:
                out += clear(st.raised, ctx, "tank_high", ts, "Tank level back to normal")
    elif ev.type == "pump":
        if f["state"] == "fault":
            out += raise_(st.raised, ctx, "pump_fault", 2, ts, f"Pump fault {f.get('fault_code') or ''}".strip(),
                          detail={"fault_code": f.get("fault_code")})
        else:
            out += clear(st.raised, ctx, "pump_fault", ts, "Pump running normally again")
    st, more = on_tick(st, ctx, ts)
    return st, out + more


# --- one incident for a building whose devices lose pressure together ------------------


@dataclass
class BuildingPressure:
    community_id: str
    building_id: str
    low: dict[str, float] = field(default_factory=dict)  # device -> low since
    raised: Raised | None = None
    reported: int = 0  # devices in the incident when last reported


def building_grouped(b: BuildingPressure, th_min: int) -> bool:
    return b.raised is not None or len(b.low) >= th_min


def building_step(b: BuildingPressure, min_devices: int, confirm_s: float, now: float, suppressed: bool = False) -> Changes:
    """Open, grow or clear the building's ``supply_interruption`` incident."""
    key = f"{b.building_id}:supply_interruption"

    def mk(kind: str, tier: int, sev: int, title: str) -> IncidentChange:
        return IncidentChange(
            kind=kind,  # type: ignore[arg-type]
            dedup_key=key, community_id=b.community_id, scope="building", scope_id=b.building_id,
            condition="supply_interruption", tier=Tier(tier), ts=utc(now), title=title,
            device_ids=tuple(sorted(b.low)), severity=sev, detail={"devices_low": len(b.low)},
        )

    confirmed = [d for d, since in b.low.items() if now - since >= confirm_s]
    if b.raised is None:
        if len(confirmed) >= min_devices and not suppressed:
            b.raised, b.reported = Raised(2, 1, now), len(b.low)
            return [mk("opened", 2, 1, f"Water supply interruption: {len(b.low)} devices of building {b.building_id} lost pressure")]
        return []
    if not b.low:
        b.raised, b.reported = None, 0
        return [mk("cleared", 2, 1, "Water pressure restored in the building")]
    if len(b.low) >= 2 * b.reported:
        b.reported = len(b.low)
        b.raised.severity += 1
        return [mk("updated", 2, b.raised.severity, f"Water supply interruption spreading: {len(b.low)} devices")]
    return []
