"""Tables of events for the detectors: build events in local time and play them."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from typing import Any

from domain.devices import Device, DeviceType, Stream
from domain.events import Event
from domain.incidents import IncidentChange
from detectors.config import DetectorConfig, Thresholds
from detectors.engine import Engine

UTC = dt.timezone.utc
LOCAL = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai, the default thresholds' zone
DAY0 = dt.datetime(2026, 11, 2, tzinfo=LOCAL)  # a Monday
_ids = itertools.count()

STREAM_OF = {
    "fault": "event", "alarm_button": "event", "service_mode": "event", "status": "telemetry", "trip": "telemetry",
    "flow": "telemetry", "pressure": "telemetry", "tank_level": "telemetry", "leak": "event", "pump": "event",
    "access": "event", "door": "event", "tamper": "event", "passage": "event", "motion": "event", "bed": "event", "sos": "event",
    "fall": "event", "heartbeat": "status", "offline": "status", "online": "status", "sensor_battery": "status",
}


def at(hour: float = 0, minute: float = 0, second: float = 0, day: int = 0) -> float:
    """Epoch seconds of a local time on day ``day`` after Monday 2026-11-02."""
    return (DAY0 + dt.timedelta(days=day, hours=hour, minutes=minute, seconds=second)).timestamp()


def device(device_id: str, device_type: DeviceType, kind: str, building: str | None = "b1", unit: str | None = None) -> Device:
    return Device(device_id=device_id, community_id="c1", device_type=device_type, kind=kind, building_id=building, unit_id=unit)


def event(dev: Device, type_: str, t: float, **fields: Any) -> Event:
    ts = dt.datetime.fromtimestamp(t, UTC)
    return Event(community_id=dev.community_id, device_type=dev.device_type, device_id=dev.device_id,
                 stream=Stream(STREAM_OF[type_]), msg_id=f"m{next(_ids)}", type=type_, ts=ts, received_at=ts, fields=fields)


def engine(*devices: Device, **thresholds: Any) -> Engine:
    """An engine for these devices; heartbeat timeouts off unless asked (tables of one family).

    Tables deliver each message on time and in order, so by default no reorder window
    (``allowed_lateness_s=0``) and a silent device's clock runs with every tick
    (``silent_clock_s`` unbounded); the event-time tests set both."""
    thresholds.setdefault("offline_after_s", 10**9)
    thresholds.setdefault("allowed_lateness_s", 0.0)
    thresholds.setdefault("silent_clock_s", 10.0**9)
    return Engine(DetectorConfig(defaults=Thresholds(**thresholds)), {d.device_id: d for d in devices})


Step = tuple  # (t, device, type, fields) or (t, "tick")


def play_changes(eng: Engine, steps: Iterable[Step]) -> list[IncidentChange]:
    """Feed events and ticks in order (timers fire before each step, as in the runtime)."""
    out: list[IncidentChange] = []
    for step in steps:
        t = step[0]
        out += eng.advance(t)
        if step[1] != "tick":
            _, dev, type_, fields = step
            out += eng.on_event(event(dev, type_, t, **fields))
    return out


def play(eng: Engine, steps: Iterable[Step]) -> list[tuple[float, str, str, int]]:
    """(ts, kind, condition, tier) of every change the steps cause."""
    return [(c.ts.timestamp(), c.kind, c.condition, int(c.tier)) for c in play_changes(eng, steps)]


def kinds(changes: list[tuple[float, str, str, int]]) -> list[tuple[str, str, int]]:
    return [(k, c, tier) for _, k, c, tier in changes]
