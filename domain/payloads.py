"""The MQTT payload contract (version 1), one schema per device family and stream.

Every payload is a JSON object with:

- ``id``: unique per device (1-64 characters). A repeated delivery of the same
  ``id`` (with the same ``ts``) is stored once and raises no second alert.
- ``ts``: event time, RFC 3339 with a UTC offset or integer epoch milliseconds.
- ``type``: selects the schema below within the (device type, stream).
- ``device_id`` (optional): when present it must equal the topic's device id.

Unknown extra fields are ignored (firmware may add fields before the contract
does); wrong types, values out of range and missing required fields are
rejected with a message naming the field. The schemas are msgspec structs
because the gateway decodes every message with them (the hot path).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta

from domain.devices import DeviceType, Stream

CONTRACT_VERSION = 1

MessageId = Annotated[str, Meta(min_length=1, max_length=64)]
Timestamp = Union[int, dt.datetime]
Percent = Annotated[float, Meta(ge=0, le=100)]
NonNegative = Annotated[float, Meta(ge=0)]
Floor = Annotated[int, Meta(ge=-10, le=300)]
Name = Annotated[str, Meta(min_length=1, max_length=64)]

# GB/T 24476 lift fault codes as numbered in field implementations (DOMAIN.md).
ELEVATOR_FAULT_CODES: dict[int, str] = {
    1: "overrun at top",
    2: "overrun at bottom",
    3: "overspeed",
    4: "door opens while running",
    5: "car moves with door open",
    6: "stopped outside the door zone",
    7: "passenger trapped at floor level",
    8: "passenger trapped between floors",
    9: "power cut",
    10: "safety circuit open",
    11: "door fails to open",
    12: "door fails to close",
    13: "door-lock circuit open",
    14: "stuck landing button",
    15: "abnormal speed",
    21: "alarm button pressed by a passenger",
}
FaultCode = Literal[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 21]
ServiceMode = Literal["normal", "inspection", "fire_return", "firefighter", "emergency_power"]


class Payload(msgspec.Struct, kw_only=True, tag_field="type"):
    """Fields every payload carries."""

    id: MessageId
    ts: Timestamp
    device_id: str | None = None


# --- every device type, status stream -----------------------------------------------


class Heartbeat(Payload, tag="heartbeat"):
    battery: Percent | None = None
    rssi_dbm: Annotated[int, Meta(ge=-150, le=0)] | None = None


class Online(Payload, tag="online"):
    pass


class Offline(Payload, tag="offline"):
    """Published by the broker as the device's last will, or by a clean shutdown."""


class SensorBattery(Payload, tag="sensor_battery"):
    """Battery of a sensor behind a hub (an elderly resident's door or motion sensor)."""

    sensor: Name
    battery: Percent


STATUS = Union[Heartbeat, Online, Offline, SensorBattery]


# --- elevator -----------------------------------------------------------------------


class ElevatorFault(Payload, tag="fault"):
    """A GB/T 24476 fault raised (``active``) or cleared by the lift controller."""

    code: FaultCode
    active: bool = True
    floor: Floor | None = None


class AlarmButton(Payload, tag="alarm_button"):
    floor: Floor | None = None


class ServiceModeChange(Payload, tag="service_mode"):
    """Inspection, fire return... while not ``normal`` no fault pages anybody."""

    mode: ServiceMode


class ElevatorStatus(Payload, tag="status"):
    """Raw running status, sent periodically and on every change."""

    floor: Floor
    moving: bool
    door: Literal["open", "closed", "opening", "closing"]
    door_zone: bool
    occupied: bool
    direction: Literal["up", "down", "idle"] = "idle"
    speed_mps: Annotated[float, Meta(ge=0, le=20)] = 0.0
    load_pct: Annotated[float, Meta(ge=0, le=200)] | None = None
    vibration_mg: NonNegative | None = None


class ElevatorTrip(Payload, tag="trip"):
    """One completed run, for statistics and the door-cycle trend."""

    from_floor: Floor
    to_floor: Floor
    duration_s: NonNegative
    door_cycles: Annotated[int, Meta(ge=0, le=1000)] = 1
    door_reopens: Annotated[int, Meta(ge=0, le=1000)] = 0


ELEVATOR_EVENT = Union[ElevatorFault, AlarmButton, ServiceModeChange]
ELEVATOR_TELEMETRY = Union[ElevatorStatus, ElevatorTrip]


# --- water --------------------------------------------------------------------------


class WaterFlow(Payload, tag="flow"):
    """A meter reading: instantaneous flow and the register total."""

    flow_lpm: Annotated[float, Meta(ge=0, le=10_000)]
    total_l: NonNegative | None = None


class WaterPressure(Payload, tag="pressure"):
    pressure_kpa: Annotated[float, Meta(ge=0, le=5_000)]


class TankLevel(Payload, tag="tank_level"):
    level_pct: Percent


class LeakSensor(Payload, tag="leak"):
    wet: bool


class PumpState(Payload, tag="pump"):
    state: Literal["running", "stopped", "fault"]
    fault_code: Annotated[str, Meta(max_length=32)] | None = None


WATER_EVENT = Union[LeakSensor, PumpState]
WATER_TELEMETRY = Union[WaterFlow, WaterPressure, TankLevel]


# --- door access --------------------------------------------------------------------


class AccessAttempt(Payload, tag="access"):
    """A credential presented at a reader. ``credential`` is an opaque id, never a secret."""

    result: Literal["granted", "denied"]
    credential: Annotated[str, Meta(min_length=1, max_length=64)]
    method: Literal["card", "face", "pin", "qr", "app", "key", "button"] = "card"
    role: Literal["resident", "visitor", "courier", "staff", "unknown"] = "unknown"


class DoorState(Payload, tag="door"):
    state: Literal["open", "closed"]


class Tamper(Payload, tag="tamper"):
    active: bool = True


class Passage(Payload, tag="passage"):
    """People counted through the doorway by an anti-tailgating sensor, once per opening."""

    count: Annotated[int, Meta(ge=0, le=50)]
    direction: Literal["in", "out"] = "in"


ACCESS_EVENT = Union[AccessAttempt, DoorState, Tamper, Passage]


# --- elderly resident living alone (one home hub per resident) ------------------------


class Motion(Payload, tag="motion"):
    room: Name


class HomeDoor(Payload, tag="door"):
    door: Name
    state: Literal["open", "closed"]


class Bed(Payload, tag="bed"):
    occupied: bool


class Sos(Payload, tag="sos"):
    pass


class Fall(Payload, tag="fall"):
    confidence: Annotated[float, Meta(ge=0, le=1)] | None = None


ELDERLY_EVENT = Union[Motion, HomeDoor, Bed, Sos, Fall]


# One decoder per (device type, stream); a pair missing here is rejected as unknown.
SCHEMAS: dict[tuple[DeviceType, Stream], object] = {
    (DeviceType.ELEVATOR, Stream.EVENT): ELEVATOR_EVENT,
    (DeviceType.ELEVATOR, Stream.TELEMETRY): ELEVATOR_TELEMETRY,
    (DeviceType.WATER, Stream.EVENT): WATER_EVENT,
    (DeviceType.WATER, Stream.TELEMETRY): WATER_TELEMETRY,
    (DeviceType.ACCESS, Stream.EVENT): ACCESS_EVENT,
    (DeviceType.ELDERLY, Stream.EVENT): ELDERLY_EVENT,
    **{(device_type, Stream.STATUS): STATUS for device_type in DeviceType},
}

DECODERS: dict[tuple[DeviceType, Stream], msgspec.json.Decoder] = {
    key: msgspec.json.Decoder(schema) for key, schema in SCHEMAS.items()
}

# The one numeric reading of a type that roll-ups and charts use by default.
PRIMARY_VALUE: dict[type[Payload], str] = {
    Heartbeat: "battery",
    SensorBattery: "battery",
    ElevatorStatus: "speed_mps",
    ElevatorTrip: "duration_s",
    WaterFlow: "flow_lpm",
    WaterPressure: "pressure_kpa",
    TankLevel: "level_pct",
    Fall: "confidence",
}

COMMON_FIELDS = frozenset({"id", "ts", "device_id"})
