"""The simulation: every actor's days merged into one stream of MQTT messages in event time.

`Simulation.messages()` yields `Message` objects ordered by timestamp (ties
broken by actor and sequence, so the order is itself deterministic). The
ground truth (scenarios and notices) is known before the first message of a
finite run; an endless run (``duration=None``, the live demo) plans a few
incidents a day as it goes.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from domain.devices import Device, DeviceType
from domain.events import Event
from domain.topics import topic_for
from gateway.validate import Limits, Rejection, validate_message
from simulators.behaviour import (
    Actor,
    EntranceActor,
    FireDoorActor,
    HubActor,
    LeakActor,
    LiftActor,
    MeterActor,
    PressureActor,
    Record,
    TankPumpActor,
    battery_level,
)
from simulators.clock import DAY, SECOND, day_rng, from_ms, iso, to_ms
from simulators.fleet import Fleet
from simulators.scenarios import (
    Book,
    Compiler,
    Notice,
    Placement,
    Scenario,
    ScenarioError,
    ScenarioFile,
    auto_placements,
    daily_placements,
    file_placements,
    parse_hhmm,
)

GROUND_TRUTH_VERSION = 1


class Message:
    """One MQTT message as a device would publish it."""

    __slots__ = ("deliver_ms", "device", "device_id", "payload", "stream", "topic", "ts_ms", "type")

    def __init__(self, topic: str, payload: bytes, device: Device, ts_ms: int, type_: str, stream: str) -> None:
        self.topic = topic
        self.payload = payload
        self.device = device
        self.device_id = device.device_id
        self.ts_ms = ts_ms
        self.type = type_
        self.stream = stream
        self.deliver_ms = ts_ms  # when it leaves the device (later than ts_ms when stored and forwarded)

    @property
    def ts(self) -> dt.datetime:
        return from_ms(self.ts_ms)

    def __repr__(self) -> str:
        return f"Message({self.topic!r}, {self.payload!r})"


def _build_actors(fleet: Fleet, seed: int, day0: int) -> list[Actor]:
    actors: list[Actor] = []
    by_id = fleet.by_id

    def init_rng(key: str) -> random.Random:
        return random.Random(f"{seed}:init:{key}")

    units_by_community: dict[str, list[str]] = {}
    for b in fleet.buildings:
        units = [u.unit_id for u in b.units]
        units_by_community.setdefault(b.community_id, []).extend(units)
        for lift in b.lifts:
            actors.append(LiftActor(by_id[lift], b, len(b.lifts)))
        for m in b.meters:
            actors.append(MeterActor(by_id[m], day0, init_rng(m)))
        for p in (b.inlet_pressure, *b.riser_pressure, *b.unit_pressure):
            actors.append(PressureActor(by_id[p], init_rng(p)))
        for lk in b.leak_sensors:
            actors.append(LeakActor(by_id[lk]))
        actors.append(TankPumpActor(by_id[b.tank], by_id[b.pump], len(b.units), init_rng(b.tank)))
        for e in b.entrances:
            actors.append(EntranceActor(by_id[e], units, scale=len(units) * 0.9))
        for f in b.fire_doors:
            actors.append(FireDoorActor(by_id[f]))
        for h in b.hubs:
            actors.append(HubActor(by_id[h], seed))
    for cid, (gate, garage) in fleet.community_gates.items():
        units = units_by_community.get(cid, [])
        actors.append(EntranceActor(by_id[gate], units, scale=len(units) * 0.6))
        actors.append(EntranceActor(by_id[garage], units, scale=len(units) * 0.25))
    return actors


def default_start(days: float, *, utc_offset_hours: int = 8, now: dt.datetime | None = None) -> dt.datetime:
    """Local midnight ``ceil(days)`` days ago: a finite run then ends before now, so the
    gateway's future-timestamp check accepts every message."""
    now_ms = to_ms(now or dt.datetime.now(dt.UTC))
    off = utc_offset_hours * 3_600_000
    day = (now_ms + off) // DAY - math.ceil(days)
    return from_ms(day * DAY - off)


class Simulation:
    """A deterministic simulated run over a fleet.

    ``start``: first instant (aware datetime; default `default_start`).
    ``duration``: length of the run, None for an endless run.
    ``auto_incidents``: place ``per_type`` of every scenario type (faults and, with
    ``hard_negatives``, the hard negatives) over the run; an endless run instead
    places ``daily_incidents`` random ones per day.
    ``placements`` / ``scenario_file``: scripted incidents.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        seed: int | None = None,
        start: dt.datetime | None = None,
        duration: dt.timedelta | None = dt.timedelta(days=1),
        heartbeat_s: float = 300.0,
        auto_incidents: bool = True,
        per_type: int = 1,
        hard_negatives: bool = True,
        daily_incidents: int = 3,
        placements: list[Placement] | None = None,
        scenario_file: ScenarioFile | None = None,
    ) -> None:
        if heartbeat_s < 1:
            raise ValueError(f"heartbeat_s must be at least 1 second, got {heartbeat_s}")
        if duration is not None and duration <= dt.timedelta(0):
            raise ValueError(f"duration must be positive, got {duration}")
        self.fleet = fleet
        self.seed = fleet.seed if seed is None else seed
        self.offset = fleet.utc_offset_hours * 3_600_000
        days = duration / dt.timedelta(days=1) if duration is not None else 1.0
        if start is None:
            start = default_start(days, utc_offset_hours=fleet.utc_offset_hours) if duration is not None \
                else dt.datetime.now(dt.UTC)
        self.start_ms = to_ms(start)
        self.end_ms = self.start_ms + int(duration.total_seconds() * 1000) if duration is not None else None
        self.first_day = (self.start_ms + self.offset) // DAY
        self.last_day = (self.end_ms - 1 + self.offset) // DAY if self.end_ms is not None else None
        self.heartbeat_ms = int(heartbeat_s * SECOND)
        self.daily_incidents = daily_incidents if auto_incidents else 0
        self.book = Book(fleet, self.seed)
        local_end = self.end_ms + self.offset if self.end_ms is not None else None
        self.compiler = Compiler(self.book, self.start_ms + self.offset, local_end)
        self._planned_through = self.first_day - 1
        self._placed = 0
        scripted: list[Placement] = list(placements or [])
        if scenario_file is not None:
            scripted += file_placements(scenario_file)
        for p in scripted:
            self._place(p, check_window=True)
        if self.last_day is not None:
            if auto_incidents:
                n_days = self.last_day - self.first_day + 1
                for p in auto_placements(self.seed, self.first_day, n_days, per_type=per_type,
                                         include_hard_negatives=hard_negatives):
                    self._place(p)
            self._planned_through = self.last_day
        self.actors = _build_actors(fleet, self.seed, self.first_day)
        self._topics: dict[str, dict[str, str]] = {
            d.device_id: {s: topic_for(d.community_id, d.device_type, d.device_id, s)
                          for s in ("event", "telemetry", "status")}
            for d in fleet.devices
        }
        self._hb_phase = {d.device_id: int(random.Random(f"{self.seed}:hb:{d.device_id}").random() * self.heartbeat_ms)
                          for d in fleet.devices}

    # --- planning -----------------------------------------------------------------------

    def _place(self, p: Placement, check_window: bool = False) -> Scenario | None:
        self._placed += 1
        rng = random.Random(f"{self.seed}:place:{self._placed}:{p.type}")
        if p.at is not None:
            if not isinstance(p.at, dt.datetime) or p.at.tzinfo is None:
                raise ScenarioError(f"incident {p.type}: 'at' must be a datetime with a UTC offset, "
                                    f"e.g. 2026-11-16T08:00:00+08:00, got {p.at!r}")
            at: int | None = to_ms(p.at) + self.offset
            day = at // DAY
        else:
            day = self.first_day + p.day
            at = day * DAY + parse_hhmm(p.time, f"incident {p.type}: 'time'") if p.time is not None else None
        if check_window:
            when = at if at is not None else day * DAY
            local_start = self.start_ms + self.offset
            if when < local_start - DAY or (self.end_ms is not None and when >= self.end_ms + self.offset):
                raise ScenarioError(f"incident {p.type} at {iso(when - self.offset)} is outside the run "
                                    f"({iso(self.start_ms)} .. {iso(self.end_ms) if self.end_ms else 'endless'})")
        return self.compiler.place(p.type, day, at, p.target, p.minutes, rng, optional=not check_window)

    def _ensure_planned(self, day: int) -> None:
        while self._planned_through < day:
            self._planned_through += 1
            for p in daily_placements(self.seed, self._planned_through - self.first_day, self.daily_incidents):
                self._place(p)

    # --- ground truth -------------------------------------------------------------------

    @property
    def scenarios(self) -> list[Scenario]:
        return list(self.book.scenarios)

    @property
    def notices(self) -> list[Notice]:
        return list(self.book.notices)

    def ground_truth(self) -> dict[str, Any]:
        return {
            "version": GROUND_TRUTH_VERSION,
            "seed": self.seed,
            "start": iso(self.start_ms),
            "end": iso(self.end_ms) if self.end_ms is not None else None,
            "utc_offset_hours": self.fleet.utc_offset_hours,
            "devices": len(self.fleet.devices),
            "device_counts": self.fleet.counts(),
            "scenarios": [s.to_json() for s in sorted(self.book.scenarios, key=lambda s: (s.start_ms, s.id))],
            "notices": [n.to_json() for n in sorted(self.book.notices, key=lambda n: (n.start_ms, n.id))],
            "outages": [{"device_id": d, "start_ms": s, "end_ms": e} for d, s, e in sorted(self.outages())],
        }

    def write_ground_truth(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.ground_truth(), indent=1, ensure_ascii=False) + "\n")
        return p

    # --- messages -----------------------------------------------------------------------

    def _effects(self, device_id: str, start: int, end: int) -> list[Any]:
        return self.book.effects_between(device_id, start, end)

    def _heartbeat_stream(self, index: int) -> Iterator[tuple[int, int, int, Record]]:
        """Every device's heartbeats, generated lazily in time order (they are most of the
        traffic; keeping them out of the actors' day lists keeps memory to one heap entry
        per device). Offline windows silence them; battery effects override the level."""
        devices = self.fleet.devices
        step = self.heartbeat_ms
        off = self.offset
        start_ms, end_ms = self.start_ms, self.end_ms
        book = self.book
        seed = self.seed

        def jittered(t: int, i: int) -> int:
            # Up to 2 s of jitter from a cheap integer hash: deterministic, no RNG state.
            return t + ((t // step) * 2654435761 + i * 40503 + seed * 97) % 2000

        heap: list[tuple[int, int, int]] = []  # (beat time, device index, grid time)
        for i, dev in enumerate(devices):
            phase = self._hb_phase[dev.device_id]
            t = start_ms - (start_ms - phase) % step
            if jittered(t, i) < start_ms:
                t += step
            heap.append((jittered(t, i), i, t))
        heapq.heapify(heap)
        seq = 0
        while heap:
            beat, i, t = heap[0]
            if end_ms is not None and beat >= end_ms:
                return
            dev = devices[i]
            did = dev.device_id
            local = beat + off
            day = local // DAY
            self._ensure_planned(day if self.last_day is not None else day + 1)
            pct = round(battery_level(did, day), 1)
            silent = False
            if did in book.effects:
                for e in book.effects[did]:
                    if e.start <= local < e.end:
                        if e.kind == "battery":
                            pct = float(e.params["pct"])
                        elif e.kind == "suppress" and e.params["types"] is None:
                            silent = True
            if not silent:
                seq += 1
                yield (beat, index, seq, (local, did, "status", "heartbeat", {"battery": pct}))
            heapq.heapreplace(heap, (jittered(t + step, i), i, t + step))

    def _actor_stream(self, index: int, actor: Actor) -> Iterator[tuple[int, int, int, Record]]:
        d = self.first_day
        off = self.offset
        start_ms, end_ms = self.start_ms, self.end_ms
        book = self.book
        while self.last_day is None or d <= self.last_day:
            # Endless runs plan a day ahead, so notices exist before their day starts.
            self._ensure_planned(d if self.last_day is not None else d + 1)
            day_start = d * DAY
            day_end = day_start + DAY
            # Only what falls inside the run is kept (a short run of a big fleet stays small).
            lo = max(day_start, start_ms + off)
            hi = min(day_end, end_ms + off) if end_ms is not None else day_end
            rng = day_rng(self.seed, actor.key, d)
            records = [r for r in actor.day(d, day_start, rng, self._effects) if lo <= r[0] < hi]
            for dev in actor.devices:
                did = dev.device_id
                if did not in book.effects and did not in book.injections:
                    continue
                sup = [e for e in book.effects_between(did, day_start, day_end) if e.kind == "suppress"]
                if sup:
                    records = [r for r in records if r[1] != did or not any(
                        e.start <= r[0] < e.end and (e.params["types"] is None or r[3] in e.params["types"])
                        for e in sup)]
                records.extend(r for r in book.injections.get(did, ()) if lo <= r[0] < hi)
            records.sort(key=lambda r: r[0])
            for seq, r in enumerate(records):
                yield (r[0] - off, index, seq, r)
            d += 1

    def messages(self) -> Iterator[Message]:
        """Every message of the run in event-time order (endless when the run is)."""
        encode = msgspec.json.encode
        topics = self._topics
        by_id = self.fleet.by_id
        last: dict[str, tuple[int, int]] = {}
        streams = [self._actor_stream(i, a) for i, a in enumerate(self.actors)]
        streams.append(self._heartbeat_stream(len(self.actors)))
        for utc, _, _, (_, did, stream, type_, fields) in heapq.merge(*streams):
            prev = last.get(did)
            k = prev[1] + 1 if prev is not None and prev[0] == utc else 0
            last[did] = (utc, k)
            mid = f"{utc:x}" if k == 0 else f"{utc:x}-{k}"
            body = {"id": mid, "ts": utc, "type": type_}
            body.update(fields)
            yield Message(topics[did][stream], encode(body), by_id[did], utc, type_, stream)

    def outages(self) -> list[tuple[str, int, int]]:
        """(device, start, end) UTC epoch ms: uplinks down, what they record is sent at the end."""
        return [(d, s - self.offset, e - self.offset) for d, s, e in self.book.outages]

    def deliveries(self) -> Iterator[Message]:
        """Every message in the order it leaves its device: as `messages`, except that a
        device whose uplink is down (an ``uplink_store_and_forward`` scenario) keeps what
        it records and sends it when the link is back, oldest first (``deliver_ms``)."""
        outages: dict[str, list[tuple[int, int]]] = {}
        for d, s, e in self.outages():
            outages.setdefault(d, []).append((s, e))
        if not outages:
            yield from self.messages()
            return
        held: list[tuple[int, int, Message]] = []
        seq = 0
        for m in self.messages():
            while held and held[0][0] <= m.ts_ms:
                yield heapq.heappop(held)[2]
            for s, e in outages.get(m.device_id, ()):
                if s <= m.ts_ms < e:
                    seq += 1
                    m.deliver_ms = e
                    heapq.heappush(held, (e, seq, m))
                    break
            else:
                yield m
        while held:
            yield heapq.heappop(held)[2]

    def events(self, *, received_delay: dt.timedelta = dt.timedelta(0)) -> Iterator[Event]:
        """The run as the gateway would hand it on: every message validated into a domain `Event`
        (``received_at`` = event time + ``received_delay``). Raises if a message is rejected."""
        limits = Limits()
        for m in self.messages():
            result = validate_message(m.topic, m.payload, m.ts + received_delay, limits)
            if isinstance(result, Rejection):
                raise ValueError(f"simulated message rejected by the gateway: {result.reason}: {result.detail}")
            yield result

    @property
    def progress_span(self) -> tuple[int, int | None]:
        """(start, end) in epoch ms, for progress bars."""
        return self.start_ms, self.end_ms


def simulate(fleet: Fleet, *, days: float = 1.0, **kwargs: Any) -> Simulation:
    """Shorthand: a finite run of ``days`` days."""
    return Simulation(fleet, duration=dt.timedelta(days=days), **kwargs)


def measure(fleet: Fleet, days: float = 7.0, **kwargs: Any) -> tuple[int, float]:
    """(messages, seconds) to generate a run: the figure quoted in the README."""
    sim = simulate(fleet, days=days, **kwargs)
    t0 = time.perf_counter()
    n = sum(1 for _ in sim.messages())
    return n, time.perf_counter() - t0


__all__ = ["DeviceType", "Message", "Simulation", "default_start", "measure", "simulate"]
