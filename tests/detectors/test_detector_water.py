"""Water detector: bursts, leaks that grow into floods, night flow, building-wide pressure loss."""

from __future__ import annotations

import pytest

from domain.devices import DeviceType
from detectors.engine import Silence
from dtables import at, device, engine, kinds, play

METER = device("m1", DeviceType.WATER, "meter", unit="u1")
LEAK = device("k1", DeviceType.WATER, "leak", unit="u1")
T = at(10)


def flows(start: float, minutes: int, lpm: float, step_s: float = 60.0) -> list:
    return [(start + i * step_s, METER, "flow", {"flow_lpm": lpm}) for i in range(int(minutes * 60 / step_s))]


def test_burst_is_level_1_within_seconds() -> None:
    got = play(engine(METER), [(T, METER, "flow", {"flow_lpm": 62.0}), (T + 10, "tick"), (T + 600, METER, "flow", {"flow_lpm": 0.0})])
    assert got == [(T + 5, "opened", "burst", 1), (T + 600, "cleared", "burst", 1)]


def test_trickle_leak_opens_at_the_home_rule_and_grows_into_a_flood() -> None:
    eng = engine(METER, leak_severity_step_s=1800, flood_volume_l=300)
    got = play(eng, flows(T, 20 * 60, 2.0))  # 2 L/min that never stops
    assert got[0] == (T + 20 * 60, "opened", "continuous_flow", 2)
    assert ("updated", "continuous_flow", 2) in kinds(got)  # severity rises while it persists
    escalated = [c for c in got if c[1] == "escalated"]
    assert escalated and escalated[0][3] == 1 and abs(escalated[0][0] - (T + 150 * 60)) <= 60  # 300 L at 2 L/min


def test_hard_negative_long_shower_is_not_a_leak() -> None:
    steps = flows(T, 40, 9.5) + [(T + 40 * 60, METER, "flow", {"flow_lpm": 0.0}), (T + 3 * 3600, "tick")]
    assert play(engine(METER), steps) == []


def test_high_flow_left_running_past_the_fixture_limit_is_a_leak() -> None:
    got = play(engine(METER), flows(T, 100, 9.5))
    assert kinds(got)[:1] == [("opened", "continuous_flow", 2)]
    assert got[0][0] == T + 90 * 60


def test_learned_limit_adapts_to_the_dwelling() -> None:
    eng = engine(METER)
    steps = []
    for day in range(10):  # a dwelling that runs a 60 L/h drip irrigation for 30 minutes every evening
        start = at(19, day=day)
        steps += flows(start, 30, 1.0) + [(start + 30 * 60, METER, "flow", {"flow_lpm": 0.0})]
    got = play(eng, steps)
    assert kinds(got)[:2] == [("opened", "continuous_flow", 2), ("cleared", "continuous_flow", 2)]  # before it learned
    learned = [c for c in got if c[0] >= at(0, day=8)]
    assert learned == []  # after 8 evenings, 30-minute trickles are this home's normal

    leak = play(eng, flows(at(9, day=11), 60, 1.0))
    assert kinds(leak) == [("opened", "continuous_flow", 2)]  # a trickle beyond 1.3 x its longest normal run
    assert leak[0][0] == at(9, day=11) + 39 * 60


def test_night_flow_learns_the_baseline_then_raises() -> None:
    eng = engine(METER)
    steps = []
    for day in range(4):  # normal nights: zero flow between 02:00 and 04:00
        steps += [(at(1, 50 + i * 15, day=day), METER, "flow", {"flow_lpm": 0.0}) for i in range(10)]
    assert play(eng, steps) == []
    # 0.15 L/min: below the continuous-flow volume rule over these two hours, caught by the night rule
    night = [(at(1, 50, day=4) + i * 60, METER, "flow", {"flow_lpm": 0.15}) for i in range(140)]
    got = play(eng, night)
    assert got == [(at(4, day=4), "opened", "night_flow", 3)]


def test_leak_sensor_wet_then_flood_then_dry() -> None:
    got = play(engine(LEAK), [(T, LEAK, "leak", {"wet": True}), (T + 1, LEAK, "leak", {"wet": True}), (T + 3600, LEAK, "leak", {"wet": False})])
    assert got == [(T, "opened", "water_leak", 2), (T + 1800, "escalated", "water_leak", 1), (T + 3600, "cleared", "water_leak", 1)]


def building(n: int) -> list:
    return [device(f"p{i}", DeviceType.WATER, "pressure", unit=f"u{i}") for i in range(n)]


def test_many_meters_losing_pressure_together_are_one_building_incident() -> None:
    sensors = building(6)
    eng = engine(*sensors)
    steps = [(T - 600 + i, s, "pressure", {"pressure_kpa": 350.0}) for i, s in enumerate(sensors)]
    steps += [(T + i * 0.002, s, "pressure", {"pressure_kpa": 5.0}) for i, s in enumerate(sensors)]  # milliseconds apart
    steps += [(T + 300 + i, s, "pressure", {"pressure_kpa": 6.0}) for i, s in enumerate(sensors)]
    steps += [(T + 1800, "tick")]
    steps += [(T + 3600 + i, s, "pressure", {"pressure_kpa": 340.0}) for i, s in enumerate(sensors)]
    steps += [(T + 3700, "tick")]  # the community's watermark passes the last recovery
    got = play(eng, steps)
    assert [(k, c) for _, k, c, _ in got] == [("opened", "supply_interruption"), ("cleared", "supply_interruption")]
    assert got[0][0] == T + 60 + 0.004


def test_one_meter_low_is_a_routine_work_order() -> None:
    (s,) = building(1)
    got = play(engine(s), [(T, s, "pressure", {"pressure_kpa": 40.0}), (T + 300, s, "pressure", {"pressure_kpa": 42.0}),
                           (T + 700, "tick"), (T + 900, s, "pressure", {"pressure_kpa": 300.0})])
    assert got == [(T + 600, "opened", "pressure_out_of_band", 3), (T + 900, "cleared", "pressure_out_of_band", 3)]


def test_hard_negative_planned_shutdown_is_silenced() -> None:
    sensors = building(4)
    eng = engine(*sensors)
    eng.set_silences([Silence("building", "b1", T - 60, T + 3600, device_type="water", reason="water_shutdown")])
    steps = [(T + k * 300 + i, s, "pressure", {"pressure_kpa": 4.0}) for k in range(12) for i, s in enumerate(sensors)]
    steps += [(T + 3600 + 120 + i, s, "pressure", {"pressure_kpa": 330.0}) for i, s in enumerate(sensors)]
    steps += [(T + 5 * 3600, "tick")]
    assert play(eng, steps) == []


def test_tank_and_pump() -> None:
    tank, pump = device("t1", DeviceType.WATER, "tank"), device("pu1", DeviceType.WATER, "pump")
    got = play(engine(tank, pump), [(T, tank, "tank_level", {"level_pct": 8.0}), (T + 300, tank, "tank_level", {"level_pct": 20.0}),
                                    (T + 400, pump, "pump", {"state": "fault", "fault_code": "dry_run"}),
                                    (T + 900, pump, "pump", {"state": "running"})])
    assert kinds(got) == [("opened", "tank_low", 2), ("cleared", "tank_low", 2), ("opened", "pump_fault", 2), ("cleared", "pump_fault", 2)]


def test_hard_negative_many_fixtures_at_once_is_not_a_burst() -> None:
    steps = [(T, METER, "flow", {"flow_lpm": 10.0}), (T + 30, METER, "flow", {"flow_lpm": 22.0}), (T + 60, METER, "flow", {"flow_lpm": 33.0}),
             (T + 90, METER, "flow", {"flow_lpm": 41.5}), (T + 150, METER, "flow", {"flow_lpm": 30.0}), (T + 900, "tick")]
    assert play(engine(METER), steps) == []
    sustained = steps[:4] + [(T + 90 + 60 * k, METER, "flow", {"flow_lpm": 42.0}) for k in range(1, 12)]
    assert kinds(play(engine(METER), sustained))[:1] == [("opened", "burst", 1)]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Kolkata", "America/New_York", "Australia/Adelaide"])
def test_the_night_window_worked_out_per_quarter_hour_is_the_exact_one(zone: str) -> None:
    """`_night_window_end` is cached per UTC quarter hour (offsets are whole quarters):
    the same as working it out from each reading's own local time, DST changes included."""
    import datetime as dt
    import random
    from zoneinfo import ZoneInfo

    from detectors.base import Ctx
    from detectors.config import Thresholds
    from detectors.water import _night_window_end

    th = Thresholds(timezone=zone)
    ctx = Ctx(device=METER, th=th)
    rng = random.Random(7)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
    for _ in range(20_000):
        ts = start + rng.uniform(0, 366 * 86400)
        local = dt.datetime.fromtimestamp(ts, ZoneInfo(zone))
        exact = (local.replace(hour=th.night_end_hour, minute=0, second=0, microsecond=0).timestamp()
                 if th.night_start_hour <= local.hour < th.night_end_hour else None)
        assert _night_window_end(ts, ctx) == exact, (zone, ts)
