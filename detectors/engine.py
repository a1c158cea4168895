"""The detector engine: every device's state, the cross-device facts (a wet floor in
the unit, a building losing pressure), silences and the timers.

Still pure in the sense that matters: no I/O and no clock. Time enters only as
event time (`on_event`) and as an explicit `advance(now)`; timers fire at their
exact deadline (the incident's ``ts`` is the deadline, not the tick), so "offline
after 300 s" is accurate to the second however often ticks come. The runtime
(database) and the evaluation (simulator) both drive this class.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from domain.devices import Device, DeviceType
from domain.events import Event
from domain.incidents import IncidentChange
from detectors import access, device_health, elderly, elevator, water
from detectors.base import Changes, Ctx, Raised, earliest
from detectors.config import DetectorConfig

log = logging.getLogger(__name__)

DEFAULT_KIND = {DeviceType.ELEVATOR: "lift", DeviceType.WATER: "meter", DeviceType.ACCESS: "entrance", DeviceType.ELDERLY: "home_hub"}
FAMILIES = {
    DeviceType.ELEVATOR: elevator,
    DeviceType.WATER: water,
    DeviceType.ACCESS: access,
    DeviceType.ELDERLY: elderly,
}


class DeviceState(msgspec.Struct, array_like=True):
    health: device_health.HealthState = msgspec.field(default_factory=device_health.HealthState)
    elevator: elevator.ElevatorState | None = None
    water: water.WaterState | None = None
    access: access.AccessState | None = None
    elderly: elderly.ElderlyState | None = None

    def family(self, device_type: DeviceType) -> msgspec.Struct:
        found = getattr(self, device_type.value)
        if found is None:
            found = {
                DeviceType.ELEVATOR: elevator.ElevatorState,
                DeviceType.WATER: water.WaterState,
                DeviceType.ACCESS: access.AccessState,
                DeviceType.ELDERLY: elderly.ElderlyState,
            }[device_type]()
            setattr(self, device_type.value, found)
        return found


class BuildingSnapshot(msgspec.Struct, array_like=True):
    community_id: str
    building_id: str
    raised: Raised | None
    reported: int


@dataclass(frozen=True, slots=True)
class Silence:
    """A maintenance window (or a resident's away notice) silencing a device, a
    building or a community; ``device_type`` narrows it to one family."""

    scope: str  # device | building | community
    scope_id: str
    starts_at: float
    ends_at: float
    device_type: str | None = None
    reason: str = "maintenance"


_encode = msgspec.msgpack.Encoder().encode
_decode_state = msgspec.msgpack.Decoder(DeviceState).decode
_decode_building = msgspec.msgpack.Decoder(BuildingSnapshot).decode


class Engine:
    def __init__(self, config: DetectorConfig | None = None, devices: dict[str, Device] | None = None) -> None:
        self.config = config or DetectorConfig()
        self.devices: dict[str, Device] = dict(devices or {})
        self.states: dict[str, DeviceState] = {}
        self.buildings: dict[str, water.BuildingPressure] = {}
        self.unit_wet: dict[tuple[str | None, str | None], set[str]] = {}
        self.pressure_drop_at: dict[str, float] = {}
        self.silences: dict[str, list[Silence]] = {}
        self._heap: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}
        self.dirty: set[str] = set()
        self.clock = 0.0  # the latest time the engine has seen (event or tick)

    # --- registry and silences ---------------------------------------------------------

    def device_for(self, ev: Event) -> Device:
        device = self.devices.get(ev.device_id)
        if device is None:  # not registered (auto policy, or a registry not reloaded yet)
            device = Device(device_id=ev.device_id, community_id=ev.community_id, device_type=ev.device_type,
                            kind=DEFAULT_KIND[ev.device_type])
            self.devices[ev.device_id] = device
        return device

    def set_silences(self, silences: Iterable[Silence]) -> None:
        self.silences = {}
        for s in silences:
            self.silences.setdefault(s.scope_id, []).append(s)

    def silenced(self, device: Device, ts: float) -> bool:
        if not self.silences:
            return False
        for scope_id in (device.device_id, device.building_id, device.community_id):
            for s in self.silences.get(scope_id or "", ()):
                if s.starts_at <= ts < s.ends_at + self.config.silence_grace_s and (s.device_type is None or s.device_type == device.device_type):
                    return True
        return False

    # --- steps ---------------------------------------------------------------------------

    def _ctx(self, device: Device, ts: float) -> Ctx:
        return Ctx(device=device, th=self.config.for_device(device), suppressed=self.silenced(device, ts))

    def on_event(self, ev: Event) -> Changes:
        """One validated event; returns the incident changes it causes (including
        timers of this device that fell due before it)."""
        device = self.device_for(ev)
        ts = ev.ts.timestamp()
        self.clock = max(self.clock, ts)
        st = self.states.get(ev.device_id)
        if st is None:
            st = self.states[ev.device_id] = DeviceState()
        ctx = self._ctx(device, ts)
        module = FAMILIES[device.device_type]
        fam = st.family(device.device_type)
        _, out = device_health.on_event(st.health, ctx, ev)
        if device.device_type == DeviceType.WATER:
            out += self._water_event(device, st, fam, ctx, ev)  # type: ignore[arg-type]
        else:
            _, more = module.on_event(fam, ctx, ev)
            out += more
        self.dirty.add(ev.device_id)
        self._schedule(device, st, ctx)
        return out

    def advance(self, now: float) -> Changes:
        """Fire every timer due at or before ``now``, each at its own deadline."""
        out: Changes = []
        self.clock = max(self.clock, now)
        while self._heap and self._heap[0][0] <= now:
            due, device_id = heapq.heappop(self._heap)
            if self._scheduled.get(device_id) != due:
                continue  # superseded
            del self._scheduled[device_id]
            if device_id.startswith("building:"):
                out += self._tick_building(device_id.removeprefix("building:"), due)
            else:
                out += self._tick_device(device_id, due)
        return out

    def _tick_device(self, device_id: str, now: float) -> Changes:
        device = self.devices.get(device_id)
        st = self.states.get(device_id)
        if device is None or st is None:
            return []
        ctx = self._ctx(device, now)
        fam = st.family(device.device_type)
        _, out = device_health.on_tick(st.health, ctx, now)
        if device.device_type == DeviceType.WATER:
            ctx.facts = self._water_facts(device, fam)  # type: ignore[arg-type]
            _, more = water.on_tick(fam, ctx, now)  # type: ignore[arg-type]
            out += more + self._building(device, fam, now)  # type: ignore[arg-type]
        else:
            _, more = FAMILIES[device.device_type].on_tick(fam, ctx, now)
            out += more
        self.dirty.add(device_id)
        self._schedule(device, st, ctx, after=now)
        return out

    def _tick_building(self, building_id: str, now: float) -> Changes:
        b = self.buildings.get(building_id)
        if b is None or not b.low:
            return []
        device = self.devices.get(next(iter(b.low)))
        if device is None:
            return []
        th = self.config.for_device(device)
        out = water.building_step(b, th.building_pressure_min_devices, th.building_pressure_confirm_s, now,
                                  suppressed=self.silenced(device, now))
        if out:
            out += self._fold(b, now)
        self._schedule_building(b, th.building_pressure_confirm_s, now)
        return out

    def _schedule_building(self, b: water.BuildingPressure, confirm_s: float, now: float) -> None:
        key = f"building:{b.building_id}"
        pending = [since + confirm_s for since in b.low.values() if since + confirm_s > now]
        if b.raised is not None or not pending:
            self._scheduled.pop(key, None)
            return
        due = min(pending)
        if self._scheduled.get(key) != due:
            self._scheduled[key] = due
            heapq.heappush(self._heap, (due, key))

    def _fold(self, b: water.BuildingPressure, now: float) -> Changes:
        """Per-device pressure incidents of a building fold into its supply interruption."""
        out: Changes = []
        if b.raised is None:
            return out
        for other in list(b.low):
            ost = self.states.get(other)
            odev = self.devices.get(other)
            if ost is None or ost.water is None or odev is None:
                continue
            if "pressure_out_of_band" in ost.water.raised:
                octx = Ctx(device=odev, th=self.config.for_device(odev))
                out += water.clear(ost.water.raised, octx, "pressure_out_of_band", now, "Folded into the building's supply interruption")
                self.dirty.add(other)
        return out

    def _schedule(self, device: Device, st: DeviceState, ctx: Ctx, after: float | None = None) -> None:
        fam = st.family(device.device_type)
        due = earliest(device_health.next_deadline(st.health, ctx), FAMILIES[device.device_type].next_deadline(fam, ctx))
        if due is None:
            self._scheduled.pop(device.device_id, None)
            return
        if after is not None and due <= after:
            # A deadline its tick did not resolve (a silenced condition, a volume not yet
            # reached): the device's next message re-evaluates it.
            self._scheduled.pop(device.device_id, None)
            return
        if self._scheduled.get(device.device_id) != due:
            self._scheduled[device.device_id] = due
            heapq.heappush(self._heap, (due, device.device_id))

    def next_timer(self) -> float | None:
        while self._heap and self._scheduled.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    # --- water: cross-device facts -------------------------------------------------------

    def _water_facts(self, device: Device, st: water.WaterState) -> dict:
        facts: dict = {}
        if self.unit_wet.get((device.building_id, device.unit_id)) and device.unit_id is not None:
            facts["unit_wet"] = True
        if device.building_id is not None:
            drop = self.pressure_drop_at.get(device.building_id)
            if drop is not None:
                facts["pressure_drop_at"] = drop
            b = self.buildings.get(device.building_id)
            if b is not None and water.building_grouped(b, self.config.for_device(device).building_pressure_min_devices):
                facts["building_grouped"] = True
        return facts

    def _water_event(self, device: Device, st: DeviceState, fam: water.WaterState, ctx: Ctx, ev: Event) -> Changes:
        ts = ev.ts.timestamp()
        if ev.type == "pressure" and device.building_id is not None:
            if water.pressure_dropped(fam, ctx, float(ev.fields["pressure_kpa"])):
                self.pressure_drop_at[device.building_id] = ts
        if ev.type == "leak":
            key = (device.building_id, device.unit_id)
            wet = self.unit_wet.setdefault(key, set())
            (wet.add if ev.fields["wet"] else wet.discard)(device.device_id)
        ctx.facts = self._water_facts(device, fam)
        _, out = water.on_event(fam, ctx, ev)
        return out + self._building(device, fam, ts)

    def _building(self, device: Device, fam: water.WaterState, now: float) -> Changes:
        if device.building_id is None:
            return []
        b = self.buildings.get(device.building_id)
        low = fam.p_since is not None and fam.p_kind == "low"
        if b is None:
            if not low:
                return []
            b = self.buildings[device.building_id] = water.BuildingPressure(device.community_id, device.building_id)
        if low:
            b.low[device.device_id] = fam.p_since  # type: ignore[assignment]
        else:
            b.low.pop(device.device_id, None)
        th = self.config.for_device(device)
        was_open = b.raised is not None
        out = water.building_step(b, th.building_pressure_min_devices, th.building_pressure_confirm_s, now,
                                  suppressed=self.silenced(device, now))
        self.dirty.add(f"building:{device.building_id}")
        self._schedule_building(b, th.building_pressure_confirm_s, now)
        if b.raised is not None and (out or not was_open):
            out += self._fold(b, now)
        elif b.raised is not None and fam.raised.get("pressure_out_of_band") is not None:
            out += self._fold(b, now)
        return out

    # --- snapshots -------------------------------------------------------------------------

    def dump(self, key: str) -> bytes:
        if key.startswith("building:"):
            b = self.buildings[key.removeprefix("building:")]
            return _encode(BuildingSnapshot(b.community_id, b.building_id, b.raised, b.reported))
        return _encode(self.states[key])

    def load(self, key: str, blob: bytes) -> None:
        if key.startswith("building:"):
            snap = _decode_building(blob)
            b = self.buildings.setdefault(snap.building_id, water.BuildingPressure(snap.community_id, snap.building_id))
            b.raised, b.reported = snap.raised, snap.reported
            return
        self.states[key] = _decode_state(blob)

    def rebuild_derived(self) -> None:
        """After loading snapshots: unit wet sets, building low sets and the timers."""
        self.unit_wet.clear()
        for device_id, st in self.states.items():
            device = self.devices.get(device_id)
            if device is None:
                continue
            if st.water is not None:
                if st.water.wet_since is not None:
                    self.unit_wet.setdefault((device.building_id, device.unit_id), set()).add(device_id)
                if st.water.p_since is not None and st.water.p_kind == "low" and device.building_id is not None:
                    b = self.buildings.setdefault(device.building_id, water.BuildingPressure(device.community_id, device.building_id))
                    b.low[device_id] = st.water.p_since
            self._schedule(device, st, Ctx(device=device, th=self.config.for_device(device)))
        confirm = self.config.defaults.building_pressure_confirm_s
        for b in self.buildings.values():
            self._schedule_building(b, confirm, self.clock)

    def state_sizes(self) -> list[int]:
        return [len(_encode(st)) for st in self.states.values()]


def as_epoch(now: dt.datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("tick time must be timezone-aware (UTC)")
    return now.timestamp()


__all__ = ["Engine", "DeviceState", "Silence", "IncidentChange", "as_epoch"]
