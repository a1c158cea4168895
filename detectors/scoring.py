"""What `steward eval` reports, from labelled scenarios and the incidents raised.

- a scenario is *detected* when an incident of one of its expected conditions
  opens (or escalates) on one of its devices (or its building) between
  ``start - LEAD`` and ``end``; **latency** = that change's event time - start
  (0 when the evidence came just before the labelled start); the **notice
  delay** is how long after that event time the engine knew (receive time of
  the message or tick that decided it);
- a *false alarm* is an opened (or reopened) incident explained by no real
  scenario (none on its devices/building active from its first effect - LEAD to
  ``end + AFTERMATH``): counted per 1,000 device-days overall, **per family**
  (devices of that family) and **per tier**, with **Level 1** listed apart;
- a *hard negative alarmed* is one with any unexplained incident on its devices
  during it (+30 min);
- a scenario on a device that a notice silenced at the same time is *masked*.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from detectors.engine import Silence

LEAD_S = 120.0  # evidence may precede the labelled start (an alarm press 1 s before the fault code)
AFTERMATH_S = 4 * 3600.0  # consequences after a scenario's end (a floor still wet, a tank refilling)
HARD_NEGATIVE_AFTER_S = 1800.0
FAMILY_OF_KIND = {"elevator": "elevator", "water": "water", "access": "access", "elderly": "elderly"}

# Which conditions detect which scenario type.
EXPECTED: dict[str, tuple[str, ...]] = {
    "lift_entrapment_raw": ("entrapment",),
    "lift_alarm_presses": ("entrapment",),
    "lift_entrapment_door": ("entrapment",),
    "lift_entrapment_silent": ("entrapment",),
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
    """One alert as staff would see it: an incident opened or reopened (or, in ``touches``,
    any raise of a condition)."""

    incident_id: int
    condition: str
    scope_id: str
    device_ids: tuple[str, ...]
    building_id: str | None
    tier: int
    ts: float  # event time the condition became true
    title: str
    emitted: float | None = None  # receive time the engine decided it
    pages: bool = True
    family: str = ""

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.scope_id, self.condition, round(self.ts, 3))


@dataclass
class Outcome:
    scenario: Any
    detected_at: float | None = None
    tier: int | None = None
    noticed_at: float | None = None


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
    family_devices: dict[str, int] = field(default_factory=dict)
    hard_negative_types: dict[str, str] = field(default_factory=dict)  # scenario id -> type
    late: Report | None = None  # the same log delivered late and shuffled
    late_delivery: dict[str, Any] = field(default_factory=dict)
    identical: dict[str, Any] = field(default_factory=dict)

    @property
    def device_days(self) -> float:
        return self.devices * self.days


def _devices_of(sc: Any) -> set[str]:
    out = set(sc.devices)
    if sc.family == "water" and sc.building_id and sc.type in ("supply_loss", "planned_water_shutdown",
                                                                "pressure_test_notice"):
        out.add(sc.building_id)
    return out


def _masked(sc: Any, silences: list[Silence], fleet: Any) -> bool:
    """A scenario placed on a device that staff had silenced at the time (the simulator
    may put two scenarios on one lift): the silence wins, so it cannot count as a miss."""
    start, end = sc.start_ms / 1000, sc.end_ms / 1000
    scopes = set(sc.devices) | {fleet.by_id[d].building_id for d in sc.devices if d in fleet.by_id}
    return any(s.scope_id in scopes and s.starts_at < end and s.ends_at > start for s in silences)


def score(scenarios: list[Any], openings: list[Opening], fleet: Any,
          silences: list[Silence] | None = None, touches: list[Opening] | None = None,
          effects_from: dict[str, float] | None = None) -> Report:
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
    hard: dict[str, list[Opening]] = {}
    hard_types: dict[str, str] = {}
    masked: list[Any] = []
    for sc in scenarios:
        start, end = sc.start_ms / 1000, sc.end_ms / 1000
        devices = _devices_of(sc)
        near = {id(o): o for d in devices for o in by_device.get(d, ())}.values()
        if sc.hard_negative:
            hard[sc.id] = sorted((o for o in near if start - LEAD_S <= o.ts <= end + HARD_NEGATIVE_AFTER_S), key=lambda o: o.ts)
            hard_types[sc.id] = sc.type
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
            out.detected_at, out.tier, out.noticed_at = hits[0].ts, hits[0].tier, hits[0].emitted
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
        delay = sorted(max(0.0, o.noticed_at - o.detected_at) for o in detected  # type: ignore[operator]
                       if o.noticed_at is not None)
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
            "notice_p95_s": _pct(delay, 0.95),
            "tier_ok": sum(1 for o in detected if o.tier is not None and tier is not None and o.tier <= int(tier)),
        }
    return Report(devices=0, hubs=0, days=0, messages=0, rejected=0, seconds=0, outcomes=outcomes, openings=openings,
                  false_alarms=false_alarms, hard_negative_alarms=hard, state_bytes=[], by_type=by_type, masked=masked,
                  hard_negative_types=hard_types)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    k = min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))
    return values[k]


def summary(report: Report) -> dict[str, Any]:
    hubs_days = report.hubs * report.days
    elderly_fa = [o for o in report.false_alarms if o.family == "elderly"]
    hard_total = len(report.hard_negative_alarms)
    hard_alarmed = sum(1 for v in report.hard_negative_alarms.values() if v)
    level1 = [t for t in report.by_type.values() if t["tier"] == 1]
    level1_fa = [o for o in report.false_alarms if o.tier == 1]
    sizes = report.state_bytes
    per = 1000 / report.device_days if report.device_days else None
    by_family = {}
    for fam, n in sorted(report.family_devices.items()):
        count = sum(1 for o in report.false_alarms if o.family == fam)
        days = n * report.days
        by_family[fam] = {"false_alarms": count, "device_days": days,
                          "per_1000_device_days": round(1000 * count / days, 2) if days else None}
    by_tier = {str(t): {"false_alarms": c, "per_1000_device_days": round(c * per, 2) if per else None}
               for t, c in sorted(Counter(o.tier for o in report.false_alarms).items())}
    level1_detected = [o for o in report.outcomes if o.scenario.expected_tier == 1]
    within_10 = sum(1 for o in level1_detected if o.detected_at is not None
                    and o.detected_at - o.scenario.start_ms / 1000 <= 10.0)
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
        "level1_within_10s": within_10,
        "level1_scenarios": len(level1_detected),
        "level1_false_alarms": len(level1_fa),
        "false_alarms": len(report.false_alarms),
        "false_alarms_paging": sum(1 for o in report.false_alarms if o.pages),
        "false_alarms_per_1000_device_days": len(report.false_alarms) * per if per else None,
        "false_alarms_by_family": by_family,
        "false_alarms_by_tier": by_tier,
        "hard_negatives": hard_total,
        "hard_negatives_alarmed": hard_alarmed,
        "hard_negatives_alarmed_types": sorted({report.hard_negative_types.get(sid, sid)
                                                for sid, v in report.hard_negative_alarms.items() if v}),
        "elderly_resident_days": hubs_days,
        "elderly_false_alarms": len(elderly_fa),
        "elderly_false_alarms_per_50_resident_days": 50 * len(elderly_fa) / hubs_days if hubs_days else None,
        "state_bytes_mean": round(statistics.fmean(sizes), 1) if sizes else None,
        "state_bytes_max": max(sizes) if sizes else None,
        "state_devices": len(sizes),
    }


def late_summary(report: Report) -> dict[str, Any] | None:
    if report.late is None:
        return None
    s = summary(report.late)
    return {
        "delivery": report.late_delivery,
        "identical": report.identical,
        "detected": s["detected"],
        "scenarios": s["scenarios"],
        "level1_recall": s["level1_recall"],
        "level1_false_alarms": s["level1_false_alarms"],
        "false_alarms": s["false_alarms"],
        "false_alarms_paging": s["false_alarms_paging"],
        "false_alarms_per_1000_device_days": s["false_alarms_per_1000_device_days"],
        "hard_negatives_alarmed": s["hard_negatives_alarmed"],
        "hard_negatives": s["hard_negatives"],
    }
