"""Normal traffic: deterministic from the seed, in event-time order, and accepted by the gateway."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter

import pytest

from domain.devices import DEVICE_KINDS
from gateway.validate import Limits, Rejection, validate_message
from simulators import build_fleet, fleet_for_devices, simulate
from simulators.clock import DAY, HOUR, to_ms

CST = dt.timezone(dt.timedelta(hours=8))
MONDAY = dt.datetime(2026, 11, 16, tzinfo=CST)


def digest(sim) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for m in sim.messages():
        h.update(m.topic.encode())
        h.update(m.payload)
        n += 1
    return h.hexdigest(), n


def test_same_seed_gives_the_same_traffic_and_another_seed_does_not() -> None:
    a = digest(simulate(build_fleet(7, preset="building"), days=0.5, start=MONDAY, heartbeat_s=900))
    b = digest(simulate(build_fleet(7, preset="building"), days=0.5, start=MONDAY, heartbeat_s=900))
    c = digest(simulate(build_fleet(8, preset="building"), days=0.5, start=MONDAY, heartbeat_s=900))
    assert a == b
    assert a[0] != c[0]
    assert a[1] > 5_000


def test_ground_truth_is_deterministic() -> None:
    one = simulate(build_fleet(3, preset="demo"), days=2, start=MONDAY).ground_truth()
    two = simulate(build_fleet(3, preset="demo"), days=2, start=MONDAY).ground_truth()
    assert one == two


def test_a_whole_day_of_the_demo_community_passes_the_gateway() -> None:
    fleet = build_fleet(11, preset="demo")
    sim = simulate(fleet, days=1, start=MONDAY)
    limits = Limits()
    registered = {d.device_id for d in fleet.devices}
    seen_ids: set[tuple[str, str]] = set()
    rejections: Counter[str] = Counter()
    types: Counter[tuple[str, str]] = Counter()
    last = 0
    count = 0
    for m in sim.messages():
        count += 1
        assert m.ts_ms >= last, "messages must come in event-time order"
        last = m.ts_ms
        result = validate_message(m.topic, m.payload, m.ts + dt.timedelta(seconds=1), limits)
        if isinstance(result, Rejection):
            rejections[f"{result.reason}: {result.detail}"] += 1
            continue
        assert result.device_id == m.device_id in registered
        assert result.ts == m.ts
        assert (result.device_id, result.msg_id) not in seen_ids, "a device must never reuse a message id"
        seen_ids.add((result.device_id, result.msg_id))
        types[(m.device.kind, result.type)] += 1
    assert rejections == Counter(), rejections.most_common(5)
    assert to_ms(MONDAY) <= sim.start_ms and last < sim.start_ms + DAY
    assert count > 100_000
    # Every family shows its normal traffic.
    for key in [("lift", "trip"), ("lift", "status"), ("meter", "flow"), ("pressure", "pressure"),
                ("tank", "tank_level"), ("pump", "pump"), ("leak", "leak"), ("entrance", "access"),
                ("entrance", "door"), ("fire_door", "door"), ("home_hub", "motion"), ("home_hub", "bed"),
                ("home_hub", "door"), ("home_hub", "sensor_battery")]:
        assert types[key] > 0, key
    # Every device sends a heartbeat with a battery level (unless a scenario took it offline).
    beating = {d for (d, _) in seen_ids}
    assert len(beating) >= len(registered) - 1


def test_registry_records_use_known_kinds_and_reach_ten_thousand_devices() -> None:
    fleet = fleet_for_devices(1, 10_000)
    assert len(fleet.devices) >= 10_000
    assert len({d.device_id for d in fleet.devices}) == len(fleet.devices)
    for d in fleet.devices:
        assert d.kind in DEVICE_KINDS[d.device_type]
        assert len(d.device_id) <= 64
    assert build_fleet(1, preset="city").devices.__len__() >= 10_000


def lift_trips_by_hour(sim) -> Counter[int]:
    by_hour: Counter[int] = Counter()
    for m in sim.messages():
        if m.type == "trip":
            by_hour[((m.ts_ms + 8 * HOUR) % DAY) // HOUR] += 1
    return by_hour


def test_lift_traffic_has_morning_and_evening_peaks_and_a_quiet_night() -> None:
    fleet = build_fleet(5, communities=1, buildings=1, floors=18, units_per_floor=4)
    sim = simulate(fleet, days=1, start=MONDAY, auto_incidents=False, heartbeat_s=3600)
    by_hour = lift_trips_by_hour(sim)
    night = sum(by_hour[h] for h in (2, 3, 4))
    assert by_hour[7] + by_hour[8] > 5 * max(1, night)
    assert by_hour[18] + by_hour[19] > 5 * max(1, night)
    assert by_hour[8] > by_hour[14]


def test_water_pressure_sags_at_the_morning_peak() -> None:
    fleet = build_fleet(5, preset="building")
    sim = simulate(fleet, days=1, start=MONDAY, auto_incidents=False, heartbeat_s=3600)
    night, peak = [], []
    import json

    for m in sim.messages():
        if m.type == "pressure" and m.device.attributes.get("location") == "unit":
            hour = ((m.ts_ms + 8 * HOUR) % DAY) // HOUR
            value = json.loads(m.payload)["pressure_kpa"]
            (night if hour in (2, 3) else peak if hour == 7 else []).append(value)
    assert sum(peak) / len(peak) < sum(night) / len(night) - 20


@pytest.mark.parametrize("preset", ["building", "demo"])
def test_presets_build(preset: str) -> None:
    fleet = build_fleet(1, preset=preset)
    assert fleet.devices and fleet.counts()["elevator/lift"] >= 1


def test_ten_thousand_devices_simulate_with_bounded_memory() -> None:
    import resource

    fleet = fleet_for_devices(7, 10_000)
    sim = simulate(fleet, days=1 / 48, start=MONDAY, auto_incidents=False)  # 30 minutes
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    senders: set[str] = set()
    n = 0
    for m in sim.messages():
        n += 1
        senders.add(m.device_id)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(fleet.devices) >= 10_000
    assert senders == {d.device_id for d in fleet.devices}, "every device sends within 30 minutes (heartbeats)"
    assert n > 6 * len(fleet.devices) * 0.9
    assert grown_mb < 400, f"peak memory grew by {grown_mb:.0f} MB"
