"""How a message log reaches the detectors: on time, shuffled within the allowed
lateness, in one late burst, with devices that store and forward, or behind a
receiver outage drained afterwards. Each mode turns messages (in event-time
order, with ``ts_ms`` and ``device_id``) into ``(receive time, message)`` pairs
in receive order, deterministically from a seed, streaming (memory bounded by
what is held back).

`drive` feeds such a delivery to an `Engine` the way the runtime does (ticks
about once a second of receive time) and collects the incident changes. The
property test (tests/detectors/test_detector_delivery.py) and `steward eval`'s
late run use it.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.incidents import IncidentChange
from gateway.validate import Limits, validate_message

Delivery = Iterator[tuple[float, Any]]


class LogMessage(Protocol):
    ts_ms: int
    device_id: str
    topic: str
    payload: bytes


def _jitter(m: LogMessage, seed: int) -> float:
    """A deterministic number in [0, 1) per message."""
    return (zlib.crc32(f"{seed}:{m.device_id}:{m.ts_ms}".encode()) & 0xFFFFFF) / 0x1000000


def live(messages: Iterable[LogMessage], delay_s: float = 0.0) -> Delivery:
    for m in messages:
        yield m.ts_ms / 1000 + delay_s, m


def _reorder(timed: Iterable[tuple[float, float, int, Any]]) -> Delivery:
    """(event time, receive time, seq, message) in event-time order, each received no
    earlier than its event time, into receive order: a message can be let out once the
    input has moved past its receive time."""
    heap: list[tuple[float, int, Any]] = []
    for ts, rx, seq, m in timed:
        while heap and heap[0][0] <= ts:
            rx0, _, m0 = heapq.heappop(heap)
            yield rx0, m0
        heapq.heappush(heap, (rx, seq, m))
    while heap:
        rx0, _, m0 = heapq.heappop(heap)
        yield rx0, m0


def shuffled(messages: Iterable[LogMessage], lateness_s: float, seed: int = 0) -> Delivery:
    """Each message arrives up to ``lateness_s`` after its event time (uniform), so
    messages of one device as well as of different ones come out of order."""

    def timed() -> Iterator[tuple[float, float, int, Any]]:
        for seq, m in enumerate(messages):
            ts = m.ts_ms / 1000
            yield ts, ts + lateness_s * _jitter(m, seed), seq, m

    return _reorder(timed())


def late_burst(messages: Iterable[LogMessage], at_s: float, rate_per_s: float = 20_000.0) -> Delivery:
    """The whole log received at once, long after it happened, in its own order."""
    for i, m in enumerate(messages):
        yield at_s + i / rate_per_s, m


@dataclass
class Outage:
    """A device's uplink down from ``start`` to ``end`` (epoch s): what it records meanwhile
    is stored and forwarded when the link is back, oldest first."""

    device_id: str
    start: float
    end: float


@dataclass
class Backlog:
    """The receiver away from ``start`` to ``end``: everything published meanwhile waits in
    the broker and is drained from ``end`` at ``rate_per_s``, oldest first."""

    start: float
    end: float
    rate_per_s: float = 2_000.0


@dataclass
class FieldDelivery:
    """What the field does to a log: jitter within ``lateness_s``, devices storing and
    forwarding through uplink outages, and receiver outages drained afterwards."""

    lateness_s: float = 2.0
    outages: list[Outage] = field(default_factory=list)
    backlogs: list[Backlog] = field(default_factory=list)
    seed: int = 0

    def deliver(self, messages: Iterable[LogMessage]) -> Delivery:
        by_device: dict[str, list[Outage]] = {}
        for o in self.outages:
            by_device.setdefault(o.device_id, []).append(o)
        backlogs = sorted(self.backlogs, key=lambda b: b.start)

        def timed() -> Iterator[tuple[float, float, int, Any]]:
            seq = 0
            for m in messages:
                ts = m.ts_ms / 1000
                rx = ts + self.lateness_s * _jitter(m, self.seed)
                for o in by_device.get(m.device_id, ()):
                    if o.start <= ts < o.end:
                        rx = o.end + (ts - o.start) * 1e-4  # uploaded oldest first
                seq += 1
                yield ts, rx, seq, m

        ordered = _reorder(timed())
        if not backlogs:
            return ordered
        return _drain(ordered, backlogs)


def _drain(ordered: Delivery, backlogs: list[Backlog]) -> Delivery:
    """Receiver outages: what arrives during one waits and is delivered first in, first
    out from its end, one message per 1/rate, together with whatever arrives while the
    drain catches up."""
    step = 1.0 / max(b.rate_per_s for b in backlogs)
    last = float("-inf")
    for rx, m in ordered:
        for b in backlogs:
            if b.start <= rx < b.end:
                rx = b.end
                break
        rx = max(rx, last + step)
        last = rx
        yield rx, m


def restart_points(n_messages: int, count: int) -> list[int]:
    """Where `drive` restarts the engine from a snapshot: ``count`` points spread over the log."""
    return [n_messages * (k + 1) // (count + 1) for k in range(count)]


@dataclass
class Driven:
    changes: list[IncidentChange]
    messages: int
    rejected: int


def drive(
    engine: Any,
    delivery: Delivery,
    *,
    until_s: float | None = None,
    tick_s: float = 1.0,
    restarts: Iterable[int] = (),
    replay_s: float = 60.0,
    on_changes: Callable[[list[IncidentChange]], None] | None = None,
    resume: Iterable[float] = (),
    progress: Callable[[float], None] | None = None,
) -> Driven:
    """Feed a delivery to ``engine`` as the runtime would: validate each message at its
    receive time, advance the engine about once a ``tick_s`` of receive time, and after
    the last message keep advancing to ``until_s``.

    ``restarts``: message counts after which the process "crashes": a new engine is made
    from the snapshot taken ``replay_s`` of receive time earlier, the messages received
    since are replayed without recording their changes (they were stored with their
    events), and the run goes on; ``engine`` is then the last one (``drive.engine``).
    ``resume``: receive times at which the receiver comes back from an outage.
    """
    from detectors.engine import Engine

    limits = Limits()
    out: list[IncidentChange] = []
    restarts = sorted(restarts)
    resumes = sorted(resume)
    next_tick = None
    n = rejected = 0
    snapshot: dict[str, bytes] | None = None
    snapshot_clock = 0.0
    since_snapshot: list[Any] = []
    snapshot_at = -1.0

    def record(changes: list[IncidentChange]) -> None:
        if changes:
            out.extend(changes)
            if on_changes is not None:
                on_changes(changes)

    next_progress = 0.0
    for rx, m in delivery:
        if progress is not None and rx >= next_progress:
            progress(rx)
            next_progress = rx + 3600.0
        if resumes and rx >= resumes[0]:
            engine.resume(resumes.pop(0))
        if next_tick is None or rx >= next_tick:
            record(engine.advance(rx))
            next_tick = rx + tick_s
        ev = validate_message(m.topic, m.payload, _utc(rx), limits)
        n += 1
        if not hasattr(ev, "fields"):
            rejected += 1
            continue
        record(engine.on_event(ev))
        if restarts:
            if rx - snapshot_at >= replay_s:  # a checkpoint
                snapshot = {k: engine.dump(k) for k in engine.keys()}
                snapshot_clock, snapshot_at, since_snapshot = engine.clock, rx, []
            else:
                since_snapshot.append(ev)
            if n >= restarts[0]:
                restarts.pop(0)
                fresh = Engine(engine.config, engine.devices)
                fresh.silences = engine.silences
                for key, blob in (snapshot or {}).items():
                    fresh.load(key, blob)
                fresh.clock = snapshot_clock
                fresh.rebuild_derived()
                for old in sorted(since_snapshot, key=lambda e: (e.ts, e.received_at)):  # REPLAY_SQL's order
                    fresh.on_event(old)
                engine = fresh
                engine.resume(rx)
    if until_s is not None:
        t = (next_tick or until_s) if next_tick is not None else until_s
        while t <= until_s:
            record(engine.advance(t))
            t += max(tick_s, 1.0)
        record(engine.advance(until_s))
    drive.engine = engine  # type: ignore[attr-defined]
    return Driven(out, n, rejected)


def _utc(t: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc)
