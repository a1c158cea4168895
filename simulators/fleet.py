"""The community model: communities → buildings → units, and every device they hold.

A building has lifts, a water meter, a pressure sensor and a leak sensor per
unit, a pressure sensor per riser (one riser per unit position on a floor) and
at the building inlet, a roof tank and its pump, entrance readers and
stairwell fire doors. A share of units house an elderly resident living
alone, with one home hub. Each community also has a gate and a garage reader.

Everything is a deterministic function of the seed: the same seed and sizes
give the same device ids, attributes and resident profiles.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from domain.devices import DEVICE_KINDS, Device, DeviceType

# Rated car speed by building height (m/s): low-rise lifts are slow.
HIGH_RISE_FLOORS = 12


@dataclass(frozen=True)
class Unit:
    unit_id: str
    building_id: str
    floor: int
    position: int  # which riser (1..units_per_floor)
    occupants: int


@dataclass(frozen=True)
class Building:
    building_id: str
    community_id: str
    floors: int
    units: tuple[Unit, ...]
    lifts: tuple[str, ...]
    entrances: tuple[str, ...]
    fire_doors: tuple[str, ...]
    meters: tuple[str, ...]
    unit_pressure: tuple[str, ...]
    leak_sensors: tuple[str, ...]
    riser_pressure: tuple[str, ...]
    inlet_pressure: str
    tank: str
    pump: str
    hubs: tuple[str, ...]


@dataclass
class Fleet:
    """A simulated estate. ``devices`` is what the registry is loaded with."""

    seed: int
    utc_offset_hours: int
    community_ids: list[str]
    buildings: list[Building]
    devices: list[Device]
    by_id: dict[str, Device] = field(default_factory=dict)
    community_gates: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {d.device_id: d for d in self.devices}

    def building(self, building_id: str) -> Building:
        for b in self.buildings:
            if b.building_id == building_id:
                return b
        raise KeyError(building_id)

    def devices_of(self, device_type: DeviceType, kind: str | None = None) -> list[Device]:
        return [d for d in self.devices if d.device_type == device_type and (kind is None or d.kind == kind)]

    def counts(self) -> dict[str, int]:
        """Devices per ``type/kind``, for summaries."""
        out: dict[str, int] = {}
        for d in self.devices:
            key = f"{d.device_type}/{d.kind}"
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))


# Named sizes. "demo" is the small community the one-command demo runs; "city"
# reaches more than 10,000 devices.
PRESETS: dict[str, dict[str, Any]] = {
    "building": dict(communities=1, buildings=1, floors=6, units_per_floor=4),
    "demo": dict(communities=1, buildings=3, floors=8, units_per_floor=4),
    "estate": dict(communities=2, buildings=6, floors=18, units_per_floor=4),
    "city": dict(communities=6, buildings=10, floors=18, units_per_floor=4),
}


def _device(kind_type: DeviceType, kind: str, device_id: str, community_id: str, **kw: Any) -> Device:
    assert kind in DEVICE_KINDS[kind_type], (kind_type, kind)
    return Device(device_id=device_id, community_id=community_id, device_type=kind_type, kind=kind, **kw)


def build_fleet(
    seed: int,
    *,
    communities: int = 1,
    buildings: int = 3,
    floors: int = 8,
    units_per_floor: int = 4,
    lifts_per_building: int | None = None,
    elderly_share: float = 0.12,
    utc_offset_hours: int = 8,
    prefix: str = "c",
    preset: str | None = None,
) -> Fleet:
    """Build a deterministic estate. ``buildings`` is per community.

    ``preset`` (one of `PRESETS`) overrides the sizes. Lifts default to one per
    building, two from `HIGH_RISE_FLOORS` floors up.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"preset {preset!r} is not one of {', '.join(PRESETS)}")
        sizes = PRESETS[preset]
        communities, buildings = sizes["communities"], sizes["buildings"]
        floors, units_per_floor = sizes["floors"], sizes["units_per_floor"]
    for name, value, low in (("communities", communities, 1), ("buildings", buildings, 1), ("floors", floors, 2),
                             ("units_per_floor", units_per_floor, 1)):
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}")
    if floors > 99 or units_per_floor > 99:
        raise ValueError("floors and units_per_floor must be at most 99")
    if not 0 <= elderly_share <= 1:
        raise ValueError(f"elderly_share must be within 0..1, got {elderly_share}")
    rng = random.Random(f"fleet:{seed}")
    n_lifts = lifts_per_building or (2 if floors >= HIGH_RISE_FLOORS else 1)
    speed = 1.75 if floors >= HIGH_RISE_FLOORS else 1.0
    devices: list[Device] = []
    all_buildings: list[Building] = []
    gates: dict[str, tuple[str, ...]] = {}
    community_ids: list[str] = []
    for c in range(1, communities + 1):
        cid = f"{prefix}{c:02d}"
        community_ids.append(cid)
        gate_ids = (f"{cid}-gate", f"{cid}-garage")
        gates[cid] = gate_ids
        devices.append(_device(DeviceType.ACCESS, "entrance", gate_ids[0], cid, name="community gate"))
        devices.append(_device(DeviceType.ACCESS, "garage", gate_ids[1], cid, name="garage barrier"))
        for b in range(1, buildings + 1):
            bid = f"{cid}-b{b:02d}"
            units: list[Unit] = []
            for fl in range(1, floors + 1):
                for pos in range(1, units_per_floor + 1):
                    units.append(Unit(f"{bid}-u{fl:02d}{pos:02d}", bid, fl, pos, rng.choice((1, 2, 2, 3, 3, 4))))
            lifts = tuple(f"{bid}-lift{i}" for i in range(1, n_lifts + 1))
            for i, lid in enumerate(lifts, 1):
                devices.append(_device(DeviceType.ELEVATOR, "lift", lid, cid, building_id=bid, name=f"lift {i}",
                                       attributes={"floors": floors, "rated_speed_mps": speed}))
            entrances = (f"{bid}-entrance",)
            fire_doors = (f"{bid}-firedoor-e", f"{bid}-firedoor-w")
            devices.append(_device(DeviceType.ACCESS, "entrance", entrances[0], cid, building_id=bid,
                                   name="lobby entrance"))
            for fd in fire_doors:
                devices.append(_device(DeviceType.ACCESS, "fire_door", fd, cid, building_id=bid,
                                       name=f"stairwell fire door {fd[-1]}"))
            inlet = f"{bid}-inlet-pressure"
            tank, pump = f"{bid}-tank", f"{bid}-pump"
            devices.append(_device(DeviceType.WATER, "pressure", inlet, cid, building_id=bid, name="inlet pressure",
                                   attributes={"location": "inlet", "nominal_kpa": 420.0}))
            devices.append(_device(DeviceType.WATER, "tank", tank, cid, building_id=bid, name="roof tank"))
            devices.append(_device(DeviceType.WATER, "pump", pump, cid, building_id=bid, name="booster pump"))
            risers = tuple(f"{bid}-riser{p}-pressure" for p in range(1, units_per_floor + 1))
            for p, rid in enumerate(risers, 1):
                devices.append(_device(DeviceType.WATER, "pressure", rid, cid, building_id=bid, name=f"riser {p} top",
                                       attributes={"location": "riser", "riser": p, "nominal_kpa": 300.0}))
            meters, upress, leaks, hubs = [], [], [], []
            for u in units:
                # Static head: higher floors see lower pressure.
                nominal = round(400.0 - 3.0 * (u.floor - 1), 1)
                attrs = {"floor": u.floor, "riser": u.position, "occupants": u.occupants}
                mid, pid, lkid = f"{u.unit_id}-meter", f"{u.unit_id}-pressure", f"{u.unit_id}-leak"
                devices.append(_device(DeviceType.WATER, "meter", mid, cid, building_id=bid, unit_id=u.unit_id,
                                       name="water meter", attributes=attrs))
                devices.append(_device(DeviceType.WATER, "pressure", pid, cid, building_id=bid, unit_id=u.unit_id,
                                       name="unit pressure", attributes={**attrs, "location": "unit",
                                                                         "nominal_kpa": nominal}))
                devices.append(_device(DeviceType.WATER, "leak", lkid, cid, building_id=bid, unit_id=u.unit_id,
                                       name="kitchen leak sensor", attributes=attrs))
                meters.append(mid)
                upress.append(pid)
                leaks.append(lkid)
                if rng.random() < elderly_share:
                    hid = f"{u.unit_id}-hub"
                    devices.append(_device(DeviceType.ELDERLY, "home_hub", hid, cid, building_id=bid,
                                           unit_id=u.unit_id, name="elderly home hub",
                                           attributes={"sensors": list(HUB_SENSORS)}))
                    hubs.append(hid)
            all_buildings.append(Building(
                building_id=bid, community_id=cid, floors=floors, units=tuple(units), lifts=lifts,
                entrances=entrances, fire_doors=fire_doors, meters=tuple(meters), unit_pressure=tuple(upress),
                leak_sensors=tuple(leaks), riser_pressure=risers, inlet_pressure=inlet, tank=tank, pump=pump,
                hubs=tuple(hubs),
            ))
    return Fleet(seed=seed, utc_offset_hours=utc_offset_hours, community_ids=community_ids,
                 buildings=all_buildings, devices=devices, community_gates=gates)


# The sensors behind an elderly resident's hub (names used in `sensor_battery`).
HUB_SENSORS = ("motion_bedroom", "motion_bathroom", "motion_kitchen", "motion_living_room", "motion_hall",
               "door_entrance", "door_bathroom", "bed", "sos_button", "fall_sensor")


def devices_per_building(floors: int, units_per_floor: int, elderly_share: float = 0.12) -> float:
    units = floors * units_per_floor
    lifts = 2 if floors >= HIGH_RISE_FLOORS else 1
    return lifts + 3 + 3 + units_per_floor + units * (3 + elderly_share)


def fleet_for_devices(seed: int, devices: int, *, floors: int = 18, units_per_floor: int = 4,
                      buildings_per_community: int = 10, **kw: Any) -> Fleet:
    """A fleet of at least ``devices`` devices, in communities of ``buildings_per_community`` buildings."""
    if devices < 1:
        raise ValueError(f"devices must be positive, got {devices}")
    per_building = devices_per_building(floors, units_per_floor, kw.get("elderly_share", 0.12))
    n_buildings = max(1, math.ceil(devices / per_building))
    communities = max(1, math.ceil(n_buildings / buildings_per_community))
    per = math.ceil(n_buildings / communities)
    fleet = build_fleet(seed, communities=communities, buildings=per, floors=floors,
                        units_per_floor=units_per_floor, **kw)
    while len(fleet.devices) < devices:  # the elderly share is random: top up with one more building each
        per += 1
        fleet = build_fleet(seed, communities=communities, buildings=per, floors=floors,
                            units_per_floor=units_per_floor, **kw)
    return fleet
