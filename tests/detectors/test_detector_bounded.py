"""Bounded state: the engine's timers, its offline clock and the runtime's recent-key
deduplication do not grow with traffic, only with devices (issue: a 10-minute soak grew
the gateway linearly when every event pushed a timer entry)."""

from __future__ import annotations

import tracemalloc

from domain.devices import DeviceType
from detectors.runtime import RECENT_KEYS, RecentKeys
from detectors.timers import SLACK, TimerQueue
from dtables import at, device, engine, event

LIFT = device("lift1", DeviceType.ELEVATOR, "lift")
DOOR = device("door1", DeviceType.ACCESS, "entrance")
METER = device("meter1", DeviceType.WATER, "meter", unit="u1")


def test_one_pending_deadline_per_key_however_often_it_moves() -> None:
    q = TimerQueue()
    for i in range(100_000):
        q.set(("d", i % 3), 1000.0 + i)  # three keys, each deadline moved ~33,000 times
        assert q.entries <= 2 * len(q) + SLACK
    assert len(q) == 3
    assert list(q.pop_due(10**9)) == [(("d", 1), 100_997.0), (("d", 2), 100_998.0), (("d", 0), 100_999.0)]  # the last of each
    assert q.peek() is None


def test_engine_timers_stay_per_device_under_steady_traffic() -> None:
    """Two hours of a lift riding, a door in use and a meter drawing water, one message a
    second each, with the default reorder window and offline rule: every message moves some
    deadline; the engine keeps at most one per (device, condition)."""
    eng = engine(LIFT, DOOR, METER, offline_after_s=900.0, allowed_lateness_s=2.0, silent_clock_s=360.0)
    t0 = at(8)
    peak = 0
    for k in range(2 * 3600):
        t = t0 + k
        eng.advance(t)
        phase = k % 40
        eng.on_event(event(LIFT, "status", t, floor=1 + phase // 10, moving=phase % 10 < 5, door="closed" if phase % 10 < 8 else "open",
                           door_zone=phase % 10 >= 5, occupied=phase < 30))
        eng.on_event(event(DOOR, "door" if k % 2 else "access", t + 0.1, **({"state": "open" if k % 4 == 1 else "closed"} if k % 2 else
                                                                        {"result": "granted", "credential": f"r-{k % 50}", "method": "card"})))
        eng.on_event(event(METER, "flow", t + 0.2, flow_lpm=6.0 if phase < 20 else 0.0))
        peak = max(peak, eng.timers.entries, len(eng._releases))
    assert len(eng.timers) <= 3 * 2  # a device's next deadline and its last-will timer at most
    assert peak <= 2 * 6 + SLACK + 3 * 3  # not ~65,000 (one per message)
    assert len(eng.last_seen) == 3


def test_recent_keys_are_bounded_in_bytes() -> None:
    """Two generations of 64-bit hashes: at most 2 x per_generation entries whatever the
    traffic; the documented budget (runtime.RecentKeys: ~72 B an entry, about 8 MB at the
    default 50,000 a generation) holds as measured by tracemalloc."""
    per_generation = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keys = RecentKeys(per_generation)
        peak_entries = 0
        for i in range(300_000):  # fifteen generations of traffic
            assert keys.add((f"dev-{i % 997}", f"msg-{i}"))
            peak_entries = max(peak_entries, len(keys))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert peak_entries <= 2 * per_generation
    assert used <= 2 * per_generation * 80  # ~72 B an entry (an int and its set slot)
    assert not keys.add((f"dev-{299_990 % 997}", "msg-299990"))  # a recent key is still recognised
    assert keys.add(("dev-1", "msg-1"))  # one fifteen generations old is not: the database's unique key stops it
    assert RECENT_KEYS * 2 * 80 <= 8.5 * 2**20  # the default: about 8 MB
