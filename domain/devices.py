"""Device families and the MQTT streams they publish on."""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class DeviceType(enum.StrEnum):
    ELEVATOR = "elevator"
    WATER = "water"
    ACCESS = "access"
    ELDERLY = "elderly"


class Stream(enum.StrEnum):
    EVENT = "event"
    TELEMETRY = "telemetry"
    STATUS = "status"


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A registered device. ``kind`` refines the family (a water ``meter`` or ``leak``
    sensor, an access ``entrance`` or ``fire_door``); detectors use it with
    ``building_id``/``unit_id`` to group devices into one incident."""

    device_id: str
    community_id: str
    device_type: DeviceType
    kind: str
    building_id: str | None = None
    unit_id: str | None = None
    name: str = ""
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


# The kinds each family knows; the registry refuses others.
DEVICE_KINDS: dict[DeviceType, frozenset[str]] = {
    DeviceType.ELEVATOR: frozenset({"lift"}),
    DeviceType.WATER: frozenset({"meter", "pressure", "leak", "tank", "pump"}),
    DeviceType.ACCESS: frozenset({"entrance", "fire_door", "garage", "unit_door"}),
    DeviceType.ELDERLY: frozenset({"home_hub"}),
}
