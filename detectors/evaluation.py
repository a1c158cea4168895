"""`steward eval`: a labelled simulator run through the detectors, scored
(`detectors.scoring`), then the same log delivered late and shuffled.

The simulation (``simulators``) yields MQTT messages in event time with the
ground truth known up front. The **live run** delivers each message at its own
time (devices whose uplink drops store and forward, as labelled by the
simulator), through the gateway's validation, to an `Engine` driven like the
runtime (`detectors.delivery.drive`); incident changes go into an
`IncidentBook` with the store's exact rules. Notices (away, planned shutdown,
inspection, door hold, pressure test) become silences, as staff would enter
them. The **late run** delivers the same log the way a bad day in the field
does: every message up to the allowed lateness (2 s) late and out of order,
more devices storing and forwarding through uplink outages of 5-60 minutes, and
the receiver itself away for half an hour every few days with the backlog
drained afterwards. Its incidents are compared with the live run's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import msgspec

from domain.devices import DeviceType
from domain.incidents import IncidentChange
from detectors.config import DetectorConfig, Thresholds
from detectors.delivery import Backlog, FieldDelivery, Outage, drive
from detectors.engine import Engine, Silence
from detectors.scoring import (  # noqa: F401  (the names `steward eval` and the tests use)
    EXPECTED,
    Opening,
    Outcome,
    Report,
    expected_conditions,
    late_summary,
    score,
    summary,
)
from detectors.store import IncidentBook

def silences_from_notices(notices: list[Any]) -> list[Silence]:
    return [
        Silence(scope=n.scope, scope_id=n.scope_id, starts_at=n.start_ms / 1000, ends_at=n.end_ms / 1000,
                device_type=n.device_family, reason=n.type)
        for n in notices
    ]


def zone_for_offset(hours: int) -> str:
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # POSIX sign: Etc/GMT-8 is UTC+8


def sim_outages(sim: Any) -> list[Outage]:
    """The uplink outages the simulator placed (store and forward), in UTC seconds."""
    off = sim.fleet.utc_offset_hours * 3_600_000
    return [Outage(d, (s - off) / 1000, (e - off) / 1000) for d, s, e in sim.book.outages]


def late_field(sim: Any, seed: int, scored_from: float) -> FieldDelivery:
    """A bad day in the field: the simulator's own outages, plus uplink outages of 5-60
    minutes on one device in thirty each scored day (hubs, lift terminals, readers and
    meters; stored and forwarded), every message up to 2 s late, and the receiver away
    for 30 minutes every third day (its backlog drained at 2,000 msg/s)."""
    rng = random.Random(f"{seed}:late")
    start, end = sim.start_ms / 1000, sim.end_ms / 1000
    kinds = {"home_hub", "lift", "entrance", "meter"}
    candidates = [d.device_id for d in sim.fleet.devices if d.kind in kinds]
    outages = list(sim_outages(sim))
    day = scored_from
    while day < end:
        for device in rng.sample(candidates, max(1, len(candidates) // 30)):
            t = day + rng.uniform(0, 86400 - 3600)
            outages.append(Outage(device, t, t + rng.uniform(300, 3600)))
        day += 86400
    backlogs = []
    t = start + 86400 + rng.uniform(0, 86400)
    while t < end - 3600:
        backlogs.append(Backlog(t, t + 1800, rate_per_s=2000.0))
        t += 3 * 86400
    return FieldDelivery(lateness_s=2.0, outages=outages, backlogs=backlogs, seed=seed)


@dataclass
class Detected:
    openings: list[Opening]
    touches: list[Opening]
    messages: int
    rejected: int
    seconds: float
    state_bytes: list[int]


def _family(fleet: Any, change: IncidentChange) -> str:
    if change.scope == "building":
        return "water"
    device = fleet.by_id.get(change.scope_id)
    return device.device_type.value if device is not None else ""


def last_heard(messages: Any, outages: list[Outage], found: dict[tuple[str, float, float], float]) -> Any:
    """Pass a log through, noting in ``found`` each outage's device's last message before
    the outage began (event time): the receiver hears nothing from then until the outage
    ends, which is what the offline rule judges."""
    by_device: dict[str, list[Outage]] = defaultdict(list)
    for o in outages:
        by_device[o.device_id].append(o)
    for m in messages:
        mine = by_device.get(m.device_id)
        if mine:
            t = m.ts_ms / 1000
            for o in mine:
                if t < o.start:
                    found[(o.device_id, o.start, o.end)] = t
        yield m


def detect(sim: Any, config: DetectorConfig, delivery: FieldDelivery, *, resume: list[float] | None = None,
           progress: Callable[[float], None] | None = None, heard: dict[tuple[str, float, float], float] | None = None) -> Detected:
    """Run a simulation's log, delivered as ``delivery`` says, through one engine (``heard``:
    fill in each of the delivery's outages' last message before it, see `last_heard`)."""
    fleet = sim.fleet
    engine = Engine(config, {d.device_id: d for d in fleet.devices})
    engine.set_silences(silences_from_notices(sim.notices))
    book = IncidentBook(reopen_window=dt.timedelta(seconds=config.reopen_window_s))
    openings: list[Opening] = []  # new alerts (opened or reopened incidents)
    touches: list[Opening] = []  # every raise, also into an open incident (detections)

    def record(changes: list[IncidentChange]) -> None:
        for stored in book.record(changes):
            c = stored.change
            if c.kind == "cleared":
                continue
            o = Opening(stored.incident_id, c.condition, c.scope_id, c.device_ids,
                        c.scope_id if c.scope == "building" else c.detail.get("building_id"), int(c.tier), c.ts.timestamp(),
                        c.title, emitted=engine.clock, pages=c.pages, family=_family(fleet, c))
            touches.append(o)
            if c.kind == "opened":
                openings.append(o)

    first = sim.start_ms / 1000
    span = max(1.0, (sim.end_ms - sim.start_ms) / 1000)
    t0 = time.perf_counter()
    log = sim.messages() if heard is None else last_heard(sim.messages(), delivery.outages, heard)
    driven = drive(engine, delivery.deliver(log), until_s=sim.end_ms / 1000, on_changes=record,
                   resume=resume or [], progress=(lambda rx: progress(min(1.0, (rx - first) / span))) if progress else None)
    return Detected(openings, touches, driven.messages, driven.rejected, time.perf_counter() - t0, engine.state_sizes())


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
    late: bool = True,
) -> Report:
    """Simulate ``warmup_days`` of normal traffic (the detectors learn; nothing is
    scored) then ``days`` with ``per_type`` scenarios of every type, and score those;
    with ``late``, the same log delivered late and shuffled is scored too."""
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

    def simulation() -> Any:  # the same log every time (deterministic from the seed)
        return Simulation(fleet, seed=seed, start=start, duration=dt.timedelta(days=warmup_days + days),
                          auto_incidents=False, placements=placements)

    sim = simulation()
    scored_from = start.timestamp() + warmup_days * 86400.0
    if config is None:
        config = DetectorConfig(defaults=Thresholds(timezone=zone_for_offset(fleet.utc_offset_hours)))
    share = 0.5 if late else 1.0
    live = detect(sim, config, FieldDelivery(lateness_s=0.0, outages=sim_outages(sim)),
                  progress=(lambda f: progress(f * share)) if progress else None)
    report = _report(sim, live, fleet, scored_from, days, warmup_days)
    if late:
        sim2 = simulation()
        field = late_field(sim2, seed, scored_from)
        heard: dict[tuple[str, float, float], float] = {}
        late_run = detect(sim2, config, field, resume=[b.end for b in field.backlogs],
                          progress=(lambda f: progress(0.5 + 0.5 * f)) if progress else None, heard=heard)
        extra = [o for o in field.outages if o not in sim_outages(sim2)]
        report.late = _report(sim2, late_run, fleet, scored_from, days, warmup_days, extra_outages=extra,
                              offline_after=config.defaults.offline_after_s, heard=heard)
        report.late_delivery = {"lateness_s": field.lateness_s, "uplink_outages": len(extra),
                                "receiver_outages": len(field.backlogs)}
        report.identical = compare(live, late_run, scored_from, extra, config.defaults.offline_after_s, heard)
    if progress is not None:
        progress(1.0)
    return report


def _report(sim: Any, found: Detected, fleet: Any, scored_from: float, days: int, warmup_days: int,
            extra_outages: list[Outage] | None = None, offline_after: float = 900.0,
            heard: dict[tuple[str, float, float], float] | None = None) -> Report:
    end = sim.end_ms / 1000
    scenarios = [s for s in sim.scenarios if s.start_ms / 1000 < end]
    for k, o in enumerate(extra_outages or []):  # the late run's own uplink outages are labelled too
        # What the receiver judges is the silence: from the device's last message before the
        # outage (a meter quiet for 4 minutes, then 14 minutes of outage: 18 minutes) to its end.
        long = o.end - (heard or {}).get((o.device_id, o.start, o.end), o.start) >= offline_after
        scenarios.append(SimpleNamespace(
            id=f"L{k:04d}-uplink", type="device_offline" if long else "uplink_store_and_forward", family="device",
            devices=[o.device_id], building_id=None, start_ms=int(o.start * 1000), end_ms=int(o.end * 1000),
            hard_negative=not long, expected_tier=3 if long else None))
    report = score(scenarios, [o for o in found.openings if o.ts >= scored_from], fleet,
                   silences_from_notices(sim.notices), touches=[o for o in found.touches if o.ts >= scored_from],
                   effects_from=_effects_from(sim, [s for s in scenarios if hasattr(s, "detail")]))
    report.devices, report.days, report.warmup_days = len(fleet.devices), days, warmup_days
    report.hubs = sum(1 for d in fleet.devices if d.device_type == DeviceType.ELDERLY)
    report.messages, report.rejected, report.seconds = found.messages, found.rejected, found.seconds
    report.state_bytes = found.state_bytes
    counts: dict[str, int] = defaultdict(int)
    for d in fleet.devices:
        counts[d.device_type.value] += 1
    report.family_devices = dict(counts)
    return report


def compare(live: Detected, late: Detected, scored_from: float, outages: list[Outage], offline_after: float,
            heard: dict[tuple[str, float, float], float] | None = None) -> dict[str, Any]:
    """Incidents of the late run against the live run's (opened or reopened, scored days):
    the same (scope, condition, event time), or a difference the delivery explains (offline
    during an uplink outage longer than the offline limit), or not."""
    a = {o.key: o for o in live.openings if o.ts >= scored_from}
    b = {o.key: o for o in late.openings if o.ts >= scored_from}
    long = [o for o in outages if o.end - (heard or {}).get((o.device_id, o.start, o.end), o.start) >= offline_after]

    def explained(o: Opening) -> bool:
        return o.condition == "offline" and any(x.device_id == o.scope_id and x.start <= o.ts <= x.end + 60 for x in long)

    only_live = [a[k] for k in a.keys() - b.keys()]
    only_late = [b[k] for k in b.keys() - a.keys()]
    return {
        "live": len(a),
        "late": len(b),
        "same": len(a.keys() & b.keys()),
        "only_live": [f"{o.condition}@{o.scope_id}" for o in only_live if not explained(o)],
        "only_late": [f"{o.condition}@{o.scope_id}" for o in only_late if not explained(o)],
        "explained_by_outages": sum(1 for o in only_late + only_live if explained(o)),
    }


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


def to_json(report: Report) -> bytes:
    return msgspec.json.encode({"summary": summary(report), "by_type": report.by_type, "late": late_summary(report)})
