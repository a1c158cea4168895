"""`steward eval`: a labelled simulator run through the detectors, scored.

The simulation (``simulators``) yields MQTT messages in event time with the
ground truth known up front. Each message goes through the gateway's own
validation (``received_at`` = its timestamp: an accelerated run), the engine's
timers are advanced to it, then the engine steps; incident changes go into an
`IncidentBook` with the store's exact rules. Notices (away, planned shutdown,
inspection, door hold) become silences, as staff would enter them.

Scoring, per scenario type:

- a scenario is *detected* when an incident of one of its expected conditions
  opens (or escalates) on one of its devices (or its building) between
  ``start - LEAD`` and ``end``; latency = first such change - start (event time,
  0 when the evidence came just before the labelled start);
- precision = incidents of the type's conditions that match a scenario of the
  type / (those + unexplained incidents of the same conditions);
- a *false alarm* is an opened (or reopened) incident explained by no real
  scenario (none on its devices/building active from its first effect - LEAD
  to ``end + AFTERMATH``); one on a hard negative's devices during it is also
  counted as that hard negative alarmed;
- rates: false alarms per 1,000 device-days over the whole run, elderly false
  alarms per 50 resident-days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from domain.devices import DeviceType
from domain.incidents import IncidentChange
from gateway.validate import Limits, validate_message
from detectors.config import DetectorConfig, Thresholds
from detectors.engine import DeviceState, Engine, Silence
from detectors.store import IncidentBook

LEAD_S = 120.0  # evidence may precede the labelled start (an alarm press 1 s before the fault code)
AFTERMATH_S = 4 * 3600.0  # consequences after a scenario's end (a floor still wet, a tank refilling)
HARD_NEGATIVE_AFTER_S = 1800.0

# Which conditions detect which scenario type.
EXPECTED: dict[str, tuple[str, ...]] = {
    "lift_entrapment_raw": ("entrapment",),
    "lift_alarm_presses": ("entrapment",),
    "lift_wear": ("door_wear", "vibration_trend", "fault_rate"),
    "pump_fault": ("pump_fault",),
    "reader_tamper": ("tamper",),
    "water_burst": ("burst",),
    "continuous_flow_leak": ("continuous_flow",),
    "night_flow_rise": ("night_flow",),
    "supply_loss": ("supply_interruption",),
    "door_held_open": ("door_held_open",),
    "fire_door_propped": ("door_held_open",),
    "door_forced": ("door_forced",),
    "brute_force": ("repeated_denied",),
    "unusual_hour_access": ("unusual_hour_access",),
    "tailgating": ("tailgating",),
    "elderly_sos": ("sos",),
    "elderly_fall": ("fall",),
    "elderly_inactivity": ("inactivity",),
    "elderly_night_wandering": ("night_wandering",),
    "elderly_long_bathroom_night": ("long_bathroom_stay",),
    "device_offline": ("offline",),
    "battery_low": ("battery_low",),
    "hub_sensor_battery_low": ("battery_low.",),
    "stuck_sensor": ("sensor_stuck",),
}


def expected_conditions(scenario_type: str) -> tuple[str, ...]:
    if scenario_type.startswith("lift_fault_"):
        code = int(scenario_type.rsplit("_", 1)[1])
        if code in (7, 8):
            return ("entrapment",)
        if code == 21:
            return ("passenger_alarm",)
        return (f"fault.{code}",)
    return EXPECTED.get(scenario_type, ())


def _matches(condition: str, expected: tuple[str, ...]) -> bool:
    return any(condition == e or (e.endswith(".") and condition.startswith(e)) for e in expected)


@dataclass
class Opening:
    """One alert as staff would see it: an incident opened or reopened."""

    incident_id: int
    condition: str
    scope_id: str
    device_ids: tuple[str, ...]
    building_id: str | None
    tier: int
    ts: float
    title: str


@dataclass
class Outcome:
    scenario: Any
    detected_at: float | None = None
    tier: int | None = None


@dataclass
class Report:
    devices: int
    hubs: int
    days: float
    messages: int
    rejected: int
    seconds: float
    outcomes: list[Outcome]
    openings: list[Opening]
    false_alarms: list[Opening]
    hard_negative_alarms: dict[str, list[Opening]]
    state_bytes: list[int]
    by_type: dict[str, dict[str, Any]] = field(default_factory=dict)
    masked: list[Any] = field(default_factory=list)
    warmup_days: int = 0

    @property
    def device_days(self) -> float:
        return self.devices * self.days


def silences_from_notices(notices: list[Any]) -> list[Silence]:
    kinds = {"water_shutdown": "water", "inspection": "elevator", "door_hold": "access", "away": None}
    return [
        Silence(scope=n.scope, scope_id=n.scope_id, starts_at=n.start_ms / 1000, ends_at=n.end_ms / 1000,
                device_type=kinds.get(n.type), reason=n.type)
        for n in notices
    ]


def zone_for_offset(hours: int) -> str:
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # POSIX sign: Etc/GMT-8 is UTC+8


def run(
    *,
    seed: int = 7,
    days: int = 2,
    warmup_days: int = 2,
    devices: int | None = None,
    preset: str | None = "demo",
    per_type: int = 1,
    elderly_extra: int = 0,
    start: dt.datetime | None = None,
    config: DetectorConfig | None = None,
    progress: Callable[[float], None] | None = None,
) -> Report:
    """Simulate ``warmup_days`` of normal traffic (the detectors learn; nothing is
    scored) then ``days`` with ``per_type`` scenarios of every type, and score those."""
    from simulators import build_fleet, fleet_for_devices
    from simulators.clock import DAY
    from simulators.engine import Simulation
    from simulators.scenarios import auto_placements

    if days < 1 or warmup_days < 0:
        raise ValueError("days must be at least 1 and warmup_days at least 0")
    fleet = fleet_for_devices(seed, devices) if devices else build_fleet(seed, preset=preset)
    offset_ms = fleet.utc_offset_hours * 3_600_000
    start = start or dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) - dt.timedelta(hours=fleet.utc_offset_hours)
    first_day = (int(start.timestamp() * 1000) + offset_ms) // DAY
    # Placement days count from the run's first day: shift them past the warm-up.
    planned = auto_placements(seed, first_day + warmup_days, days, per_type=per_type)
    if elderly_extra:  # enough residents not getting up (and lie-ins) to measure a sensitivity
        planned += auto_placements(seed + 1, first_day + warmup_days, days, per_type=elderly_extra,
                                   types=["elderly_inactivity"])
        planned += auto_placements(seed + 2, first_day + warmup_days, days, per_type=max(1, elderly_extra // 2),
                                   types=["late_sleep_after_late_night"])
    placements = [dataclasses.replace(p, day=p.day + warmup_days) for p in planned]
    sim = Simulation(fleet, seed=seed, start=start, duration=dt.timedelta(days=warmup_days + days),
                     auto_incidents=False, placements=placements)
    scored_from = start.timestamp() + warmup_days * 86400.0
    if config is None:
        config = DetectorConfig(defaults=Thresholds(timezone=zone_for_offset(fleet.utc_offset_hours)))
    engine = Engine(config, {d.device_id: d for d in fleet.devices})
    engine.set_silences(silences_from_notices(sim.notices))
    book = IncidentBook(reopen_window=dt.timedelta(seconds=config.reopen_window_s))
    openings: list[Opening] = []  # new alerts (opened or reopened incidents)
    touches: list[Opening] = []  # every raise, also into an open incident (detections)
    limits = Limits()
    messages = rejected = 0
    t0 = time.perf_counter()
    last_progress = 0.0

    def record(changes: list[IncidentChange]) -> None:
        for stored in book.record(changes):
            c = stored.change
            if c.kind == "cleared":
                continue
            o = Opening(stored.incident_id, c.condition, c.scope_id, c.device_ids,
                        c.scope_id if c.scope == "building" else c.detail.get("building_id"), int(c.tier), c.ts.timestamp(), c.title)
            touches.append(o)
            if c.kind == "opened":
                openings.append(o)

    first = sim.start_ms / 1000
    span = max(1.0, (warmup_days + days) * 86400)
    next_tick = first
    for msg in sim.messages():
        ts = msg.ts_ms / 1000
        messages += 1
        if ts >= next_tick:  # the runtime ticks about once a second
            record(engine.advance(ts))
            next_tick = ts + 1.0
        ev = validate_message(msg.topic, msg.payload, msg.ts, limits)
        if not hasattr(ev, "fields"):
            rejected += 1
            continue
        record(engine.on_event(ev))  # type: ignore[arg-type]
        if progress is not None and ts - last_progress > 3600:
            last_progress = ts
            progress(min(1.0, (ts - first) / span))
    end = sim.end_ms / 1000 if sim.end_ms else first + span
    record(engine.advance(end))
    seconds = time.perf_counter() - t0
    if progress is not None:
        progress(1.0)

    hubs = sum(1 for d in fleet.devices if d.device_type == DeviceType.ELDERLY)
    scenarios = [s for s in sim.scenarios if s.start_ms / 1000 < end]
    report = score(scenarios, [o for o in openings if o.ts >= scored_from], book, fleet,
                   silences_from_notices(sim.notices), touches=[o for o in touches if o.ts >= scored_from],
                   effects_from=_effects_from(sim, scenarios))
    report.devices, report.hubs, report.days = len(fleet.devices), hubs, days
    report.messages, report.rejected, report.seconds = messages, rejected, seconds
    report.state_bytes = engine.state_sizes()
    report.warmup_days = warmup_days
    return report


def _effects_from(sim: Any, scenarios: list[Any]) -> dict[str, float]:
    """When each scenario's devices start to behave differently (epoch s): a scenario's
    effects may begin before its labelled start (the routine of a resident who will not
    get up is suppressed from 90 minutes before the usual wake-up)."""
    offset = sim.fleet.utc_offset_hours * 3_600_000
    out: dict[str, float] = {}
    for sc in scenarios:
        first = sc.start_ms
        for d in sc.devices:
            for e in sim.book.effects_between(d, sc.start_ms + offset - 3 * 3_600_000, sc.end_ms + offset):
                first = min(first, e.start - offset)
        out[sc.id] = first / 1000
    return out


def _devices_of(sc: Any, fleet: Any) -> set[str]:
    out = set(sc.devices)
    if sc.family == "water" and sc.building_id and sc.type in ("supply_loss", "planned_water_shutdown"):
        out.add(sc.building_id)
    return out


def _touches(o: Opening, devices: set[str]) -> bool:
    return o.scope_id in devices or any(d in devices for d in o.device_ids)


def _masked(sc: Any, silences: list[Silence], fleet: Any) -> bool:
    """A scenario placed on a device that staff had silenced at the time (the simulator
    may put two scenarios on one lift): the silence wins, so it cannot count as a miss."""
    start, end = sc.start_ms / 1000, sc.end_ms / 1000
    scopes = set(sc.devices) | {fleet.by_id[d].building_id for d in sc.devices if d in fleet.by_id}
    return any(s.scope_id in scopes and s.starts_at < end and s.ends_at > start for s in silences)


def score(scenarios: list[Any], openings: list[Opening], book: IncidentBook, fleet: Any,
          silences: list[Silence] | None = None, touches: list[Opening] | None = None,
          effects_from: dict[str, float] | None = None) -> Report:
    # Detections use every change (an escalation to the expected tier counts at its time).
    outcomes: list[Outcome] = []
    by_device: dict[str, list[Opening]] = defaultdict(list)
    for o in openings:
        for d in {o.scope_id, *o.device_ids}:
            by_device[d].append(o)
    touched: dict[str, list[Opening]] = defaultdict(list)
    for o in touches if touches is not None else openings:
        for d in {o.scope_id, *o.device_ids}:
            touched[d].append(o)
    explained: set[int] = set()
    matched_by_type: dict[str, set[int]] = defaultdict(set)
    hard: dict[str, list[Opening]] = {}
    masked: list[Any] = []
    for sc in scenarios:
        start, end = sc.start_ms / 1000, sc.end_ms / 1000
        devices = _devices_of(sc, fleet)
        near = {id(o): o for d in devices for o in by_device.get(d, ())}.values()
        if sc.hard_negative:
            hard[sc.id] = sorted((o for o in near if start - LEAD_S <= o.ts <= end + HARD_NEGATIVE_AFTER_S), key=lambda o: o.ts)
            continue
        explain_from = min(start, (effects_from or {}).get(sc.id, start)) - LEAD_S
        for o in near:
            if explain_from <= o.ts <= end + AFTERMATH_S:
                explained.add(id(o))
        if silences and _masked(sc, silences, fleet):
            masked.append(sc)
            continue
        expected = expected_conditions(sc.type)
        near_all = {id(o): o for d in devices for o in touched.get(d, ())}.values()
        hits = sorted((o for o in near_all if _matches(o.condition, expected) and start - LEAD_S <= o.ts <= end), key=lambda o: o.ts)
        out = Outcome(sc)
        if hits:
            out.detected_at, out.tier = hits[0].ts, hits[0].tier
            for h in near:
                if _matches(h.condition, expected) and start - LEAD_S <= h.ts <= end:
                    matched_by_type[sc.type].add(id(h))
        outcomes.append(out)
    # A hard negative is alarmed by what no real scenario on the same device explains (the
    # simulator may put a real fault on the same lift during an inspection).
    hard = {sid: [o for o in alarms if id(o) not in explained] for sid, alarms in hard.items()}
    false_alarms = [o for o in openings if id(o) not in explained]
    fa_by_condition = Counter(o.condition for o in false_alarms)

    by_type: dict[str, dict[str, Any]] = {}
    for sc_type in sorted({o.scenario.type for o in outcomes}):
        rows = [o for o in outcomes if o.scenario.type == sc_type]
        detected = [o for o in rows if o.detected_at is not None]
        lat = sorted(max(0.0, o.detected_at - o.scenario.start_ms / 1000) for o in detected)  # type: ignore[operator]
        expected = expected_conditions(sc_type)
        tp = len(detected)  # event-level: one true alert per detected scenario
        fp = sum(n for cond, n in fa_by_condition.items() if _matches(cond, expected))
        tier = rows[0].scenario.expected_tier
        by_type[sc_type] = {
            "tier": int(tier) if tier is not None else None,
            "n": len(rows),
            "detected": len(detected),
            "recall": len(detected) / len(rows),
            "precision": tp / (tp + fp) if tp + fp else None,
            "p50_s": _pct(lat, 0.5),
            "p95_s": _pct(lat, 0.95),
            "tier_ok": sum(1 for o in detected if o.tier is not None and tier is not None and o.tier <= int(tier)),
        }
    return Report(devices=0, hubs=0, days=0, messages=0, rejected=0, seconds=0, outcomes=outcomes, openings=openings,
                  false_alarms=false_alarms, hard_negative_alarms=hard, state_bytes=[], by_type=by_type, masked=masked)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    k = min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))
    return values[k]


def summary(report: Report) -> dict[str, Any]:
    hubs_days = report.hubs * report.days
    elderly_fa = [o for o in report.false_alarms if o.scope_id.endswith("-hub")]
    hard_total = len(report.hard_negative_alarms)
    hard_alarmed = sum(1 for v in report.hard_negative_alarms.values() if v)
    level1 = [t for t in report.by_type.values() if t["tier"] == 1]
    sizes = report.state_bytes
    return {
        "devices": report.devices,
        "days": report.days,
        "device_days": report.device_days,
        "messages": report.messages,
        "rejected": report.rejected,
        "seconds": round(report.seconds, 1),
        "warmup_days": report.warmup_days,
        "scenarios": len(report.outcomes),
        "masked_by_notice": len(report.masked),
        "detected": sum(1 for o in report.outcomes if o.detected_at is not None),
        "level1_recall": (sum(t["detected"] for t in level1) / sum(t["n"] for t in level1)) if level1 else None,
        "false_alarms": len(report.false_alarms),
        "false_alarms_per_1000_device_days": 1000 * len(report.false_alarms) / report.device_days if report.device_days else None,
        "hard_negatives": hard_total,
        "hard_negatives_alarmed": hard_alarmed,
        "elderly_resident_days": hubs_days,
        "elderly_false_alarms": len(elderly_fa),
        "elderly_false_alarms_per_50_resident_days": 50 * len(elderly_fa) / hubs_days if hubs_days else None,
        "state_bytes_mean": round(statistics.fmean(sizes), 1) if sizes else None,
        "state_bytes_max": max(sizes) if sizes else None,
        "state_devices": len(sizes),
    }


def to_json(report: Report) -> bytes:
    return msgspec.json.encode({"summary": summary(report), "by_type": report.by_type})


# --- state size on a large fleet -------------------------------------------------------------


def saturate(state: Any) -> None:
    """Fill every bounded history of a device state to its cap (the worst case a long-lived
    device reaches), with two raised conditions: what the 2 KB budget must hold."""
    import numpy as np

    from detectors import elderly, elevator, water
    from detectors.base import Raised

    st = state
    st.health.raised = {"battery_low": Raised(3, 1, 1.8e9), "offline": Raised(3, 1, 1.8e9)}
    st.health.stuck = {"pressure_kpa": [331.5, 1.8e9, 120.0]}
    if st.water is not None:
        st.water.trickle_runs = st.water.fixture_runs = np.full(water.RUN_HISTORY, 25, dtype=np.uint16).tobytes()
        st.water.nights = np.full(water.NIGHT_HISTORY, 0.05, dtype=np.float32).tobytes()
        st.water.raised = {"continuous_flow": Raised(2, 3, 1.8e9), "night_flow": Raised(3, 1, 1.8e9)}
    if st.elderly is not None:
        st.elderly.hist = np.full(24 * elderly.HISTORY_DAYS, 600, dtype=np.uint16).tobytes()
        st.elderly.today = st.elderly.limits = np.full(24, 600, dtype=np.uint16).tobytes()
        st.elderly.nights = np.full(2 * elderly.HISTORY_NIGHTS, 400, dtype=np.uint16).tobytes()
        st.elderly.baths = np.full(elderly.HISTORY_BATHS, 600, dtype=np.uint16).tobytes()
        st.elderly.raised = {"inactivity": Raised(2, 1, 1.8e9), "long_bathroom_stay": Raised(2, 1, 1.8e9)}
    if st.elevator is not None:
        st.elevator.fault_days = bytes(range(elevator.FAULT_HISTORY_DAYS))
        st.elevator.presses = [1.8e9, 1.8e9 + 40]
        st.elevator.pending = {10: 1.8e9, 13: 1.8e9}
        st.elevator.raised = {"fault.10": Raised(2, 1, 1.8e9), "door_wear": Raised(3, 1, 1.8e9)}
    if st.access is not None:
        st.access.hours = np.full(24, 5000, dtype=np.uint16).tobytes()
        st.access.denied = [1.8e9 + i for i in range(4)]
        st.access.raised = {"door_held_open": Raised(3, 1, 1.8e9), "repeated_denied": Raised(2, 1, 1.8e9)}


@dataclass
class StateSizes:
    devices: int
    hours: float
    messages: int
    measured_mean: float
    measured_max: int
    saturated_mean: float
    saturated_max: int
    by_type: dict[str, float]


def state_sizes(*, devices: int = 10_000, hours: float = 2.0, seed: int = 7) -> StateSizes:
    """Run ``hours`` of a ``devices``-device fleet's traffic through one engine and measure
    each device's snapshot (msgpack) size; then the same with every history full."""
    from simulators import fleet_for_devices
    from simulators.engine import Simulation

    from detectors.engine import _decode_state, _encode

    fleet = fleet_for_devices(seed, devices)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    sim = Simulation(fleet, seed=seed, start=start, duration=dt.timedelta(hours=hours), auto_incidents=False)
    engine = Engine(DetectorConfig(defaults=Thresholds(timezone=zone_for_offset(fleet.utc_offset_hours))),
                    {d.device_id: d for d in fleet.devices})
    limits = Limits()
    n = 0
    for msg in sim.messages():
        n += 1
        engine.advance(msg.ts_ms / 1000)
        ev = validate_message(msg.topic, msg.payload, msg.ts, limits)
        if hasattr(ev, "fields"):
            engine.on_event(ev)  # type: ignore[arg-type]
    for d in fleet.devices:  # a device that sent nothing yet still gets its (empty) state
        engine.states.setdefault(d.device_id, DeviceState())
        engine.states[d.device_id].family(d.device_type)
    measured = engine.state_sizes()
    saturated: list[int] = []
    per_type: dict[str, list[int]] = defaultdict(list)
    for device_id, st in engine.states.items():
        copy = _decode_state(_encode(st))
        saturate(copy)
        size = len(_encode(copy))
        saturated.append(size)
        per_type[str(engine.devices[device_id].device_type)].append(size)
    return StateSizes(
        devices=len(fleet.devices), hours=hours, messages=n,
        measured_mean=statistics.fmean(measured), measured_max=max(measured),
        saturated_mean=statistics.fmean(saturated), saturated_max=max(saturated),
        by_type={k: round(statistics.fmean(v), 1) for k, v in sorted(per_type.items())},
    )
