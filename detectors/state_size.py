"""Detector state size: what one device's snapshot weighs, measured on a simulated
fleet and with every bounded history full (the worst case a long-lived device
reaches). The budget is 2 KB a device (`steward eval --state-devices N`)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from gateway.validate import Limits, validate_message
from detectors.config import DetectorConfig, Thresholds
from detectors.engine import DeviceState, Engine
from detectors.evaluation import zone_for_offset


def saturate(state: Any, last: Any = None) -> None:
    """Fill every bounded history of a device state to its cap (the worst case a long-lived
    device reaches), with two raised conditions and ``last`` (an event) four times in its
    reorder window: what the 2 KB budget must hold."""
    import numpy as np

    from detectors import access, device_health, elderly, elevator, water
    from detectors.base import Raised

    st = state
    st.health.raised = {"battery_low": Raised(3, 1, 1.8e9), "offline": Raised(3, 1, 1.8e9)}
    st.health.stuck = {"pressure_kpa": [331.5, 1.8e9, 120.0]}
    st.health.beat_ts = 1.8e9
    st.health.beats = np.full(device_health.BEAT_HISTORY, 1800, dtype=np.uint32).tobytes()
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
        st.elevator.trip_days = np.full(elevator.FAULT_HISTORY_DAYS, 400, dtype=np.uint16).tobytes()
        st.elevator.presses = [1.8e9, 1.8e9 + 40]
        st.elevator.pending = {10: 1.8e9, 13: 1.8e9}
        st.elevator.active = [10, 13]
        st.elevator.shut_since = st.elevator.occupied_since = st.elevator.opening_since = 1.8e9
        st.elevator.raised = {"fault.10": Raised(2, 1, 1.8e9), "door_wear": Raised(3, 1, 1.8e9)}
    if st.access is not None:
        st.access.hours = np.full(24, 5000, dtype=np.uint16).tobytes()
        st.access.denied = [1.8e9 + i for i in range(4)]
        st.access.seen = bytes([0xA5]) * (2 * access.SEEN_BITS // 8)
        st.access.unusual_at = 1.8e9
        st.access.raised = {"door_held_open": Raised(3, 1, 1.8e9), "repeated_denied": Raised(2, 1, 1.8e9)}
    # A reorder window holding a few messages (it drains within seconds; a snapshot
    # taken meanwhile carries them).
    if last is not None:
        st.clock.pending = [last] * 4


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
    measured_max_by_type: dict[str, int]
    saturated_max_by_type: dict[str, int]


def state_sizes(*, devices: int = 10_000, hours: float = 2.0, seed: int = 7, **fleet_shape: Any) -> StateSizes:
    """Run ``hours`` of a ``devices``-device fleet's traffic through one engine and measure
    each device's snapshot (msgpack) size; then the same with every history full.
    ``fleet_shape``: `simulators.fleet_for_devices`'s sizes (floors, units_per_floor, elderly_share)."""
    from simulators import fleet_for_devices
    from simulators.engine import Simulation

    from detectors.engine import _decode_state, _encode

    fleet = fleet_for_devices(seed, devices, **fleet_shape)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    sim = Simulation(fleet, seed=seed, start=start, duration=dt.timedelta(hours=hours), auto_incidents=False)
    engine = Engine(DetectorConfig(defaults=Thresholds(timezone=zone_for_offset(fleet.utc_offset_hours))),
                    {d.device_id: d for d in fleet.devices})
    limits = Limits()
    n = 0
    last: dict[str, Any] = {}
    for msg in sim.messages():
        n += 1
        engine.advance(msg.ts_ms / 1000)
        ev = validate_message(msg.topic, msg.payload, msg.ts, limits)
        if hasattr(ev, "fields"):
            engine.on_event(ev)  # type: ignore[arg-type]
            if ev.type != "heartbeat":  # type: ignore[union-attr]
                last[ev.device_id] = ev  # type: ignore[union-attr]
    for d in fleet.devices:  # a device that sent nothing yet still gets its (empty) state
        engine.states.setdefault(d.device_id, DeviceState())
        engine.states[d.device_id].family(d.device_type)
    measured = engine.state_sizes()
    saturated: list[int] = []
    per_type: dict[str, list[int]] = defaultdict(list)
    measured_by_type: dict[str, int] = defaultdict(int)
    for device_id, st in engine.states.items():
        family = str(engine.devices[device_id].device_type)
        measured_by_type[family] = max(measured_by_type[family], len(_encode(st)))
        copy = _decode_state(_encode(st))
        saturate(copy, last.get(device_id))
        size = len(_encode(copy))
        saturated.append(size)
        per_type[family].append(size)
    return StateSizes(
        devices=len(fleet.devices), hours=hours, messages=n,
        measured_mean=statistics.fmean(measured), measured_max=max(measured),
        saturated_mean=statistics.fmean(saturated), saturated_max=max(saturated),
        by_type={k: round(statistics.fmean(v), 1) for k, v in sorted(per_type.items())},
        measured_max_by_type=dict(sorted(measured_by_type.items())),
        saturated_max_by_type={k: max(v) for k, v in sorted(per_type.items())},
    )
