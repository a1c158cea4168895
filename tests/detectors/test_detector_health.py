"""Every device: heartbeat timers accurate to the second, last will, battery, stuck sensors."""

from __future__ import annotations

from domain.devices import DeviceType
from dtables import at, device, engine, kinds, play

METER = device("m1", DeviceType.WATER, "meter", unit="u1")
PRESSURE = device("p1", DeviceType.WATER, "pressure", unit="u1")
T = at(10)


def hb(t: float, battery: float = 80.0) -> tuple:
    return (t, METER, "heartbeat", {"battery": battery})


def test_offline_at_the_exact_second_whatever_the_tick_rate() -> None:
    for tick_every in (1.0, 7.0, 600.0):
        eng = engine(METER, offline_after_s=900)
        steps = [hb(T), hb(T + 300)] + [(T + 300 + k * tick_every, "tick") for k in range(1, int(1200 / tick_every) + 1)]
        got = play(eng, steps)
        assert got == [(T + 1200, "opened", "offline", 3)], tick_every


def test_back_online_clears_and_heartbeats_keep_it_quiet() -> None:
    eng = engine(METER, offline_after_s=900)
    steps = [hb(T + k * 300) for k in range(10)] + [(T + 4000, "tick"), hb(T + 4000)]
    assert kinds(play(eng, steps)) == [("opened", "offline", 3), ("cleared", "offline", 3)]


def test_last_will_then_grace() -> None:
    eng = engine(METER, offline_after_s=900, offline_grace_s=60)
    got = play(eng, [hb(T), (T + 10, METER, "offline", {}), (T + 100, "tick")])
    assert got == [(T + 70, "opened", "offline", 3)]
    eng = engine(METER, offline_after_s=900, offline_grace_s=60)
    assert play(eng, [hb(T), (T + 10, METER, "offline", {}), (T + 30, METER, "online", {}), (T + 100, "tick")]) == []


def test_battery_low_with_hysteresis() -> None:
    got = play(engine(METER), [hb(T, 60), hb(T + 300, 15), hb(T + 600, 22), hb(T + 900, 95)])
    assert kinds(got) == [("opened", "battery_low", 3), ("cleared", "battery_low", 3)]
    assert got[1][0] == T + 900


def test_sensor_battery_behind_a_hub() -> None:
    hub = device("h1", DeviceType.ELDERLY, "home_hub")
    got = play(engine(hub), [(T, hub, "sensor_battery", {"sensor": "motion_bedroom", "battery": 5.0})])
    assert kinds(got) == [("opened", "battery_low.motion_bedroom", 3)]


def test_stuck_sensor_and_hard_negative_noisy_sensor() -> None:
    stuck = [(T + k * 300, PRESSURE, "pressure", {"pressure_kpa": 331.5}) for k in range(100)]
    got = play(engine(PRESSURE), stuck)
    assert kinds(got) == [("opened", "sensor_stuck", 3)]
    assert got[0][0] == T + 6 * 3600
    noisy = [(T + k * 300, PRESSURE, "pressure", {"pressure_kpa": 331.5 + (k % 3) * 0.1}) for k in range(100)]
    assert play(engine(PRESSURE), noisy) == []


def test_learned_baseline_only_on_opt_in_fields() -> None:
    lift = device("l1", DeviceType.ELEVATOR, "lift")
    status = dict(floor=2, moving=True, door="closed", door_zone=False, occupied=True)
    normal = [(T + k * 300, lift, "status", status | {"vibration_mg": 15.0 + (k % 5)}) for k in range(4 * 288)]
    shaking = [(T + 4 * 86400 + k * 300, lift, "status", status | {"vibration_mg": 90.0}) for k in range(3)]
    back = [(T + 4 * 86400 + (3 + k) * 300, lift, "status", status | {"vibration_mg": 15.0 + (k % 5)}) for k in range(60)]
    assert play(engine(lift), normal + shaking + back) == []  # not watched by default
    got = play(engine(lift, anomaly_fields=("vibration_mg",)), normal + shaking + back)
    assert kinds(got) == [("opened", "telemetry_anomaly.vibration_mg", 3), ("cleared", "telemetry_anomaly.vibration_mg", 3)]
    assert got[0][0] == T + 4 * 86400  # the first shaking reading


def test_offline_is_three_missed_heartbeats_of_the_device_own_rhythm() -> None:
    """A battery meter that reports every 30 minutes (seconds of network jitter): offline
    once, while its rhythm is unknown (its first gap, as any device silent 15 min), then
    quiet for a day; silent for good: offline three missed beats (90 min) after its last."""
    eng = engine(METER, offline_after_s=900)
    beats = [hb(T + k * 1800 + (k * 7) % 5) for k in range(49)]
    assert kinds(play(eng, beats)) == [("opened", "offline", 3), ("cleared", "offline", 3)]
    last = beats[-1][0]
    assert play(eng, [(last + 5399, "tick")]) == []
    assert play(eng, [(last + 6000, "tick")]) == [(last + 5400, "opened", "offline", 3)]


def test_a_past_outage_does_not_slow_the_next_offline() -> None:
    """A 5-minute device that was off for two hours once: its rhythm is the median of its
    gaps, so the next silence is still offline after 15 minutes. Late data showing a gap
    is judged against the same limit."""
    eng = engine(METER, offline_after_s=900)
    steps = [hb(T + k * 300) for k in range(10)] + [hb(T + 2700 + 7200 + k * 300) for k in range(10)]
    assert kinds(play(eng, steps)) == [("opened", "offline", 3), ("cleared", "offline", 3)]
    last = steps[-1][0]
    assert play(eng, [(last + 1000, "tick")]) == [(last + 900, "opened", "offline", 3)]
