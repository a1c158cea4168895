"""The detector engine: every device's state and clock, the cross-device facts (a wet
floor in the unit, a building losing pressure), silences, timers and paging.

Pure in the sense that matters: no I/O and no clock of its own. Two times enter,
both as arguments: the **event time** of each message (``ev.ts``, the device's
own clock) and the **receive time** (``ev.received_at``, or the ``now`` of
`advance`), which is the wall clock of whoever drives the engine.

- Each device runs on its own event time. A message is applied once the
  device's data is complete up to its time: after ``allowed_lateness_s`` (its
  reorder window), in event-time order. A device's timers fire at their
  deadline in its event time, either when a later message of it is applied or,
  while it is silent, when its clock has run on with the wall clock (from its
  newest message, for at most ``silent_clock_s``).
- Conditions that span devices (a building's supply interruption) are
  evaluated at their community's **watermark**: the event time up to which
  every live, on-time device of the community has reported.
- Only silence itself (``offline``) is judged against receive time.
- Late data is evaluated in event time like any other; what it opens pages
  nobody unless it is Level 1 or still true once the device's data is current
  (`IncidentChange.pages`).

The runtime (database) and the evaluation (simulator) both drive this class.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from domain.devices import Device, DeviceType
from domain.events import Event
from domain.incidents import IncidentChange
from detectors import access, building, device_health, elderly, elevator, water
from detectors.base import Changes, Ctx, Raised, change, clear, utc
from detectors.config import DetectorConfig, Thresholds
from detectors.timers import LastSeen, TimerQueue

log = logging.getLogger(__name__)

DEFAULT_KIND = {DeviceType.ELEVATOR: "lift", DeviceType.WATER: "meter", DeviceType.ACCESS: "entrance", DeviceType.ELDERLY: "home_hub"}
FAMILIES = {
    DeviceType.ELEVATOR: elevator,
    DeviceType.WATER: water,
    DeviceType.ACCESS: access,
    DeviceType.ELDERLY: elderly,
}
WILL = "will"  # timer key suffix: a last-will "offline" waiting out its grace
BUILDING_CHECK_S = 2.0  # buildings are evaluated at the watermark at most this often (wall seconds)
PENDING_MAX = 256  # a device's reorder window never holds more messages than this


class DeviceClock(msgspec.Struct, array_like=True):
    """Where a device is in its own event time."""

    newest_ts: float = 0.0  # the newest event time received from the device
    newest_rx: float = 0.0  # when that message was received
    state_time: float = 0.0  # the event time its detectors have reached (messages applied, timers fired)
    pending: list[Event] = msgspec.field(default_factory=list)  # received, not applied yet (event-time order)


class DeviceState(msgspec.Struct, array_like=True):
    health: device_health.HealthState = msgspec.field(default_factory=device_health.HealthState)
    elevator: elevator.ElevatorState | None = None
    water: water.WaterState | None = None
    access: access.AccessState | None = None
    elderly: elderly.ElderlyState | None = None
    clock: DeviceClock = msgspec.field(default_factory=DeviceClock)

    def family(self, device_type: DeviceType) -> msgspec.Struct:
        attr, make = _FAMILY_STATE[device_type]
        found = getattr(self, attr)
        if found is None:
            found = make()
            setattr(self, attr, found)
        return found


_FAMILY_STATE = {
    DeviceType.ELEVATOR: ("elevator", elevator.ElevatorState),
    DeviceType.WATER: ("water", water.WaterState),
    DeviceType.ACCESS: ("access", access.AccessState),
    DeviceType.ELDERLY: ("elderly", elderly.ElderlyState),
}
_UNKNOWN = object()


class CommunityState(msgspec.Struct, array_like=True):
    watermark: float = 0.0  # event time up to which every live, on-time device has reported


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
_decode_building = msgspec.msgpack.Decoder(building.BuildingState).decode
_decode_community = msgspec.msgpack.Decoder(CommunityState).decode


def horizon(c: DeviceClock, now: float, th: Thresholds) -> float:
    """The event time up to which a device's data is taken as complete at receive time
    ``now``: its newest message's time, run on with the wall clock while it is silent
    (for at most ``silent_clock_s``), less its reorder window."""
    if not c.newest_rx:
        return c.state_time
    quiet = min(max(now - c.newest_rx, 0.0), th.silent_clock_s)
    return max(c.state_time, c.newest_ts + quiet - th.allowed_lateness_s)


def _ts(ev: Event) -> float:
    return ev.ts.timestamp()


class Engine:
    def __init__(self, config: DetectorConfig | None = None, devices: dict[str, Device] | None = None) -> None:
        self.config = config or DetectorConfig()
        self.devices: dict[str, Device] = {}
        self.members: dict[str, set[str]] = {}  # community -> its devices (for the watermark)
        for device in (devices or {}).values():
            self.add_device(device)
        self.states: dict[str, DeviceState] = {}
        self.buildings: dict[str, building.BuildingState] = {}
        self.communities: dict[str, CommunityState] = {}
        self.unit_wet: dict[tuple[str | None, str | None], set[str]] = {}
        self.pressure_drop_at: dict[str, float] = {}
        self.silences: dict[str, list[Silence]] = {}
        self.timers = TimerQueue()  # per device: wall time its next event-time deadline is due
        self.last_seen = LastSeen()  # per device: receive time, for offline
        self._releases: deque[tuple[float, str]] = deque()  # (wall time, device) a reorder window ends
        self._unpaged: set[str] = set()  # devices with a condition known only from late data
        self._active: dict[str, set[str]] = {}  # community -> buildings to evaluate at its watermark
        self._next_building_check = 0.0
        self._due: dict[str, float | None] = {}  # each device's next event-time deadline (derived, cached)
        self._th: dict[str, Thresholds] = {}
        self.dirty: set[str] = set()
        self.clock = 0.0  # receive time: the latest message received or `advance`

    # --- registry and silences ---------------------------------------------------------

    def add_device(self, device: Device) -> None:
        self.devices[device.device_id] = device
        self.members.setdefault(device.community_id, set()).add(device.device_id)

    def device_for(self, ev: Event) -> Device:
        device = self.devices.get(ev.device_id)
        if device is None:  # not registered (auto policy, or a registry not reloaded yet)
            device = Device(device_id=ev.device_id, community_id=ev.community_id, device_type=ev.device_type,
                            kind=DEFAULT_KIND[ev.device_type])
            self.add_device(device)
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

    def _thresholds(self, device: Device) -> Thresholds:
        th = self._th.get(device.device_id)
        if th is None:
            th = self._th[device.device_id] = self.config.for_device(device)
        return th

    def _ctx(self, device: Device, ts: float, th: Thresholds | None = None) -> Ctx:
        return Ctx(device, th or self._thresholds(device), self.silenced(device, ts) if self.silences else False)

    def _next_due(self, device: Device, st: DeviceState) -> float | None:
        """The device's next event-time deadline (cached until its state changes)."""
        due = self._due.get(device.device_id, _UNKNOWN)
        if due is _UNKNOWN:
            due = FAMILIES[device.device_type].next_deadline(st.family(device.device_type),
                                                             Ctx(device=device, th=self._thresholds(device)))
            self._due[device.device_id] = due
        return due  # type: ignore[return-value]

    # --- arrival -------------------------------------------------------------------------

    def on_event(self, ev: Event) -> Changes:
        """One validated message, at its receive time; returns the incident changes it
        causes now (its own, once its reorder window allows, and those of its timers)."""
        device = self.device_for(ev)
        did = device.device_id
        ts, rx = _ts(ev), ev.received_at.timestamp()
        now = self.clock = max(self.clock, rx)
        st = self.states.get(did)
        if st is None:
            st = self.states[did] = DeviceState()
        ctx = self._ctx(device, ts)
        th = ctx.th
        had_will = st.health.will_at is not None
        c = st.clock
        device_now = c.newest_ts + (rx - c.newest_rx) if c.newest_rx else ts
        out = device_health.arrive(st.health, ctx, ev, rx, device_now)
        if ev.type == "offline":
            self.timers.set((did, WILL), rx + th.offline_grace_s)
        elif had_will:
            self.timers.set((did, WILL), None)
        if ts >= c.newest_ts:
            c.newest_ts, c.newest_rx = ts, rx
        # (a message may take the reorder window to arrive: silence is counted from then)
        self.last_seen.touch(did, rx, device_health.offline_after(st.health, th) + th.allowed_lateness_s)
        instant = getattr(FAMILIES[device.device_type], "instant", None)
        if instant is not None:  # Level 1 on one message (SOS, fall, entrapment code): no reorder wait
            now_changes = instant(st.family(device.device_type), ctx, ev)
            if now_changes:
                self._due.pop(did, None)
                age = now - ts
                if age > self.config.page_late_s:  # it pages all the same, with its age shown
                    now_changes = [msgspec.structs.replace(c, detail={**c.detail, "late_s": round(age, 1)})
                                   for c in now_changes]
                out += now_changes
        pending = c.pending
        if not pending or ts >= _ts(pending[-1]):
            pending.append(ev)
        else:
            bisect.insort(pending, ev, key=_ts)
        if th.allowed_lateness_s > 0:
            self._releases.append((rx + th.allowed_lateness_s, did))
        out += self._poll(device, st, now, th)
        self.dirty.add(did)
        return out

    def advance(self, now: float) -> Changes:
        """Receive time moves on to ``now``: reorder windows end, silent devices' clocks
        run on, offline deadlines pass, communities' watermarks advance."""
        now = self.clock = max(self.clock, now)
        out: Changes = []
        releases = self._releases
        while releases and releases[0][0] <= now:
            _, did = releases.popleft()
            st = self.states.get(did)
            if st is not None and st.clock.pending:
                out += self._poll(self.devices[did], st, now)
        for key, _ in list(self.timers.pop_due(now)):
            if isinstance(key, tuple):
                out += self._will_expired(key[0])
            else:
                st = self.states.get(key)  # type: ignore[arg-type]
                if st is not None:
                    out += self._poll(self.devices[key], st, now)  # type: ignore[index]
        for did, received, limit in list(self.last_seen.expired(now)):
            out += self._silent(did, received, limit)
        if self._active and now >= self._next_building_check:
            self._next_building_check = now + BUILDING_CHECK_S
            out += self._evaluate_buildings(now)
        return out

    def resume(self, now: float) -> None:
        """Receive time jumped from ``self.clock`` to ``now`` because the receiver was away
        (a restart, a broker or database outage, a shard taken over), not because devices
        were silent: every device's silence and clock are measured without that gap, so
        neither offline nor a silent device's timers fire for it; the backlog that follows
        is applied in event time."""
        gap = now - self.clock
        if gap <= 0 or not self.clock:
            self.clock = max(self.clock, now)
            return
        self.clock = now
        self.last_seen = LastSeen()
        self.timers = TimerQueue()
        self._due.clear()
        for did, st in self.states.items():
            c, h = st.clock, st.health
            if c.newest_rx:
                c.newest_rx += gap
            if h.last_seen:
                h.last_seen += gap
            if h.will_at is not None:
                h.will_at += gap
        self._schedule_all()
        self._schedule_releases()  # the windows' ends moved with the devices' receive times

    def next_timer(self) -> float | None:
        """The earliest receive time at which `advance` has something to do (approximate
        for offline: the caller advances at least once a second)."""
        found = [t for t in (self.timers.peek(), self._releases[0][0] if self._releases else None) if t is not None]
        return min(found) if found else None

    # --- one device -----------------------------------------------------------------------

    def _poll(self, device: Device, st: DeviceState, now: float, th: Thresholds | None = None) -> Changes:
        """Apply what the device's reorder window releases and fire its timers up to its horizon."""
        th = th or self._thresholds(device)
        c = st.clock
        h = horizon(c, now, th)
        out: Changes = []
        pending = c.pending
        while pending:
            first = pending[0]
            ts = _ts(first)
            if ts > h and len(pending) <= PENDING_MAX:
                break
            del pending[0]
            out += self._apply(device, st, first, ts, th)
        due = self._next_due(device, st)
        if due is not None and due <= h:
            out += self._fire(device, st, h)
            due = self._next_due(device, st)
        self._reschedule(device, st, th, due)
        if out or device.device_id in self._unpaged:
            out = self._settle(device, st, out, now, h)
        self.dirty.add(device.device_id)
        return out

    def _apply(self, device: Device, st: DeviceState, ev: Event, ts: float, th: Thresholds) -> Changes:
        """One message in the device's event-time order (``ts``: its event time)."""
        c = st.clock
        if ts < c.state_time:
            # Too late: the device's detectors are already past this time (it was silent
            # and its clock ran on). Applied at the device's time, so no condition can end
            # before it began.
            ev = msgspec.structs.replace(ev, ts=utc(c.state_time))
            ts = c.state_time
        due = self._next_due(device, st)
        out = self._fire(device, st, ts) if due is not None and due <= ts else []
        ctx = self._ctx(device, ts, th)
        before = device_health.offline_after(st.health, ctx.th) if ev.type == "heartbeat" else None
        _, more = device_health.on_event(st.health, ctx, ev)
        out += more
        if before is not None and st.health.last_seen:
            limit = device_health.offline_after(st.health, ctx.th)
            if limit != before:  # its heartbeat rhythm changed (rare): so does its offline limit, from its last message
                # (placed behind devices heard from within the reorder window since: expiry checked <= 2 s late)
                self.last_seen.touch(device.device_id, st.health.last_seen, limit + ctx.th.allowed_lateness_s)
        fam = st.family(device.device_type)
        if device.device_type == DeviceType.WATER:
            out += self._water_event(device, fam, ctx, ev)  # type: ignore[arg-type]
        else:
            _, more = FAMILIES[device.device_type].on_event(fam, ctx, ev)
            out += more
        c.state_time = max(c.state_time, ts)
        self._due.pop(device.device_id, None)
        return out

    def _fire(self, device: Device, st: DeviceState, limit: float) -> Changes:
        """Every event-time deadline of the device up to ``limit``, each at its own time."""
        module = FAMILIES[device.device_type]
        fam = st.family(device.device_type)
        th = self._thresholds(device)
        out: Changes = []
        last = -math.inf
        due = self._next_due(device, st)
        for _ in range(256):
            if due is None or due > limit or due <= last:
                break  # none, not yet, or one its tick could not resolve (the next message re-evaluates it)
            ctx = self._ctx(device, due)
            if device.device_type == DeviceType.WATER:
                ctx.facts = self._water_facts(device)
                _, more = water.on_tick(fam, ctx, due)  # type: ignore[arg-type]
                out += more + self._building_touch(device, fam, due)  # type: ignore[arg-type]
            else:
                _, more = module.on_tick(fam, ctx, due)
                out += more
            st.clock.state_time = max(st.clock.state_time, due)
            last = due
            due = module.next_deadline(fam, Ctx(device=device, th=th))
        self._due[device.device_id] = due
        return out

    def _reschedule(self, device: Device, st: DeviceState, th: Thresholds, due: Any = _UNKNOWN) -> None:
        """The receive time at which the device's next deadline comes due if it stays silent
        (``due``: its next deadline, when the caller has it)."""
        if due is _UNKNOWN:
            due = self._next_due(device, st)
        c = st.clock
        wake = None
        if due is not None and due > c.state_time and c.newest_rx:
            lead = due - c.newest_ts + th.allowed_lateness_s  # wall seconds after its newest message
            if lead <= th.silent_clock_s:
                wake = math.ceil(c.newest_rx + max(lead, 0.0))  # a whole second: jitter moves nothing
        self.timers.set(device.device_id, wake)

    def _will_expired(self, did: str) -> Changes:
        st, device = self.states.get(did), self.devices.get(did)
        if st is None or device is None or st.health.will_at is None or "offline" in st.health.raised:
            return []
        th = self.config.for_device(device)
        c = st.clock
        at = c.newest_ts + (st.health.will_at + th.offline_grace_s - c.newest_rx)  # in the device's own time
        self.dirty.add(did)
        return device_health.go_offline(st.health, self._ctx(device, at), at, "last-will offline")

    def _silent(self, did: str, received: float, limit: float) -> Changes:
        """No message received for ``limit``: offline, stamped in the device's own time."""
        st, device = self.states.get(did), self.devices.get(did)
        if st is None or device is None or "offline" in st.health.raised or st.health.last_seen > received:
            return []
        c = st.clock
        th = self.config.for_device(device)
        silence = limit - th.allowed_lateness_s
        at = c.newest_ts + (received + silence - c.newest_rx)  # in the device's own time
        self.dirty.add(did)
        return device_health.go_offline(st.health, self._ctx(device, at), at, f"no message for {silence:.0f} s")

    # --- paging ---------------------------------------------------------------------------

    def _settle(self, device: Device, st: DeviceState, out: Changes, now: float, h: float) -> Changes:
        """Who is told: a change older than ``page_late_s`` when it was decided (late data)
        pages only if it is Level 1, or if the condition still holds and the device's data
        is current; otherwise it is a past incident. A condition held back that way pages
        as soon as the device is current again and it still holds."""
        late = self.config.page_late_s
        current = h >= now - late
        fam = st.family(device.device_type)
        for i, c in enumerate(out):
            if c.kind == "cleared" or c.scope != "device" or c.scope_id != device.device_id:
                continue
            age = now - c.ts.timestamp()
            if age <= late:
                continue
            entry = st.health.raised.get(c.condition) or fam.raised.get(c.condition)  # type: ignore[attr-defined]
            if int(c.tier) == 1 or (current and entry is not None):
                out[i] = msgspec.structs.replace(c, detail={**c.detail, "late_s": round(age, 1)})
                continue
            out[i] = msgspec.structs.replace(c, pages=False, detail={**c.detail, "late_s": round(age, 1), "past": entry is None})
            if entry is not None:
                entry.paged = False
                self._unpaged.add(device.device_id)
        if current and device.device_id in self._unpaged:
            out += self._page_held(device, st, h)
        return out

    def _page_held(self, device: Device, st: DeviceState, h: float) -> Changes:
        out: Changes = []
        fam = st.family(device.device_type)
        ctx = Ctx(device=device, th=self.config.for_device(device))
        for raised in (st.health.raised, fam.raised):  # type: ignore[attr-defined]
            for cond, entry in raised.items():
                if not entry.paged:
                    entry.paged = True
                    out.append(change("updated", ctx, cond, entry.tier, max(h, entry.since),
                                      "Still true at the newest data (it arrived late): paging now",
                                      severity=entry.severity, detail={"since": entry.since, "late": True}))
        self._unpaged.discard(device.device_id)
        return out

    # --- water: cross-device facts -------------------------------------------------------

    def _water_facts(self, device: Device) -> dict:
        facts: dict = {}
        if device.unit_id is not None and self.unit_wet.get((device.building_id, device.unit_id)):
            facts["unit_wet"] = True
        if device.building_id is not None:
            drop = self.pressure_drop_at.get(device.building_id)
            if drop is not None:
                facts["pressure_drop_at"] = drop
            if building.grouped(self.buildings.get(device.building_id), self._thresholds(device).building_pressure_min_devices):
                facts["building_grouped"] = True
        return facts

    def _water_event(self, device: Device, fam: water.WaterState, ctx: Ctx, ev: Event) -> Changes:
        ts = _ts(ev)
        if ev.type == "pressure" and device.building_id is not None:
            if water.pressure_dropped(fam, ctx, float(ev.fields["pressure_kpa"])):
                self.pressure_drop_at[device.building_id] = ts
        if ev.type == "leak":
            key = (device.building_id, device.unit_id)
            wet = self.unit_wet.setdefault(key, set())
            (wet.add if ev.fields["wet"] else wet.discard)(device.device_id)
        ctx.facts = self._water_facts(device)
        _, out = water.on_event(fam, ctx, ev)
        return out + self._building_touch(device, fam, ts)

    def _building_touch(self, device: Device, fam: water.WaterState, ts: float) -> Changes:
        """Keep the building's low intervals in step with this device's pressure state."""
        bid = device.building_id
        if bid is None:
            return []
        b = self.buildings.get(bid)
        low = fam.p_since is not None and fam.p_kind == "low"
        if b is None:
            if not low:
                return []
            b = self.buildings[bid] = building.BuildingState(device.community_id, bid)
        if low:
            b.set_low(device.device_id, fam.p_since)  # type: ignore[arg-type]
        elif device.device_id in b.low:
            b.set_ok(device.device_id, ts)
        else:
            return []
        self._active.setdefault(device.community_id, set()).add(bid)
        self.dirty.add(f"building:{bid}")
        return []

    def watermark(self, community_id: str, now: float) -> float:
        """The community's watermark at receive time ``now``: the lowest horizon of its
        devices that are live (heard from within ``silent_clock_s``) and on time (their
        newest message no more than ``watermark_lateness_s`` later than the most punctual
        device's: one hub uploading a backlog does not hold the others back, while a whole
        community's backlog, drained after an outage, moves the watermark as it drains).
        Never moves back."""
        cs = self.communities.get(community_id)
        if cs is None:
            cs = self.communities[community_id] = CommunityState()
        live: list[tuple[float, DeviceClock, Thresholds]] = []
        for did in self.members.get(community_id, ()):
            st = self.states.get(did)
            if st is None:
                continue
            c = st.clock
            th = self._thresholds(self.devices[did])
            if c.newest_rx and now - c.newest_rx <= th.silent_clock_s:
                live.append((c.newest_rx - c.newest_ts, c, th))
        if live:
            punctual = min(lag for lag, _, _ in live) + self.config.watermark_lateness_s
            low = min(horizon(c, now, th) for lag, c, th in live if lag <= punctual)
            if low > cs.watermark:
                cs.watermark = low
                self.dirty.add(f"community:{community_id}")
        return cs.watermark

    def _evaluate_buildings(self, now: float) -> Changes:
        out: Changes = []
        for cid in list(self._active):
            mark = self.watermark(cid, now)
            for bid in list(self._active[cid]):
                b = self.buildings[bid]
                th = self._building_thresholds(b)
                some = self.devices.get(next(iter(b.low))) if b.low else None

                def suppressed(t: float, some: Device | None = some) -> bool:
                    return some is not None and self.silenced(some, t)

                changes = building.evaluate(b, mark, min_devices=th.building_pressure_min_devices,
                                            confirm_s=th.building_pressure_confirm_s, suppressed=suppressed)
                if changes:
                    self.dirty.add(f"building:{bid}")
                    for ch in changes:
                        out.append(ch)
                        if ch.kind == "opened":
                            out += self._fold(ch.device_ids, ch.ts.timestamp())
                if not b.pending():
                    self._active[cid].discard(bid)
            if not self._active[cid]:
                del self._active[cid]
        return out

    def _building_thresholds(self, b: building.BuildingState) -> Thresholds:
        for did in b.low:
            device = self.devices.get(did)
            if device is not None:
                return self.config.for_device(device)
        return self.config.defaults

    def _fold(self, device_ids: Iterable[str], at: float) -> Changes:
        """Per-device pressure incidents of a building fold into its supply interruption."""
        out: Changes = []
        for other in device_ids:
            ost, odev = self.states.get(other), self.devices.get(other)
            if ost is None or ost.water is None or odev is None:
                continue
            if "pressure_out_of_band" in ost.water.raised:
                octx = Ctx(device=odev, th=self._thresholds(odev))
                out += clear(ost.water.raised, octx, "pressure_out_of_band", at, "Folded into the building's supply interruption")
                self._due.pop(other, None)
                self.dirty.add(other)
        return out

    # --- snapshots -------------------------------------------------------------------------

    def dump(self, key: str) -> bytes:
        if key.startswith("building:"):
            return _encode(self.buildings[key.removeprefix("building:")])
        if key.startswith("community:"):
            return _encode(self.communities[key.removeprefix("community:")])
        return _encode(self.states[key])

    def keys(self) -> list[str]:
        """Every snapshot key of this engine's state."""
        return (list(self.states) + [f"building:{b}" for b in self.buildings]
                + [f"community:{c}" for c in self.communities])

    def load(self, key: str, blob: bytes) -> None:
        if key.startswith("building:"):
            b = _decode_building(blob)
            self.buildings[b.building_id] = b
            return
        if key.startswith("community:"):
            self.communities[key.removeprefix("community:")] = _decode_community(blob)
            return
        self.states[key] = _decode_state(blob)

    def rebuild_derived(self) -> None:
        """After loading snapshots: unit wet sets, receive-time liveness, timers, reorder
        windows, conditions waiting to page and the buildings to evaluate."""
        self.unit_wet.clear()
        self._due.clear()
        for did, st in self.states.items():
            device = self.devices.get(did)
            if device is None:
                continue
            if st.water is not None and st.water.wet_since is not None:
                self.unit_wet.setdefault((device.building_id, device.unit_id), set()).add(did)
            fam = st.family(device.device_type)
            if any(not r.paged for raised in (st.health.raised, fam.raised) for r in raised.values()):  # type: ignore[attr-defined]
                self._unpaged.add(did)
        self._schedule_all()
        self._schedule_releases()
        for bid, b in self.buildings.items():
            if b.pending():
                self._active.setdefault(b.community_id, set()).add(bid)

    def _schedule_releases(self) -> None:
        """When each message held in a reorder window is released, from the states alone.

        A snapshot is written in the transaction that stored its batch, so it holds the
        messages that batch left waiting in their devices' windows; the times those
        windows end live only in ``_releases``. Rebuilt here after a restore (a shard
        taken over, a restart) and after `resume` moved the devices' receive times:
        at the receive time the window of the device's newest message ends (every
        older one is released by then). Without it a window open at the takeover was
        polled once, at the snapshot's clock, before it ended, and never again: the
        messages waited for the device's next one, and a lift's last alarm press,
        with nothing after it, was never counted."""
        due = []
        for did, st in self.states.items():
            c = st.clock
            device = self.devices.get(did)
            if c.pending and device is not None:
                due.append((c.newest_rx + self._thresholds(device).allowed_lateness_s, did))
        due.sort()
        self._releases = deque(due)

    def _schedule_all(self) -> None:
        """Receive-time liveness and every device's timer, from the states."""
        for did, st in self.states.items():
            device = self.devices.get(did)
            if device is None:
                continue
            th = self.config.for_device(device)
            if st.health.last_seen:
                self.last_seen.touch(did, st.health.last_seen, device_health.offline_after(st.health, th) + th.allowed_lateness_s)
            if st.health.will_at is not None:
                self.timers.set((did, WILL), st.health.will_at + th.offline_grace_s)
            self._reschedule(device, st, th)

    def state_sizes(self) -> list[int]:
        return [len(_encode(st)) for st in self.states.values()]


def as_epoch(now: dt.datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("tick time must be timezone-aware (UTC)")
    return now.timestamp()


__all__ = ["Engine", "DeviceState", "DeviceClock", "Silence", "IncidentChange", "Raised", "as_epoch", "horizon"]
