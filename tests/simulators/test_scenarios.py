"""Every scenario type emits what its label claims, and its ground truth matches the traffic."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.incidents import Tier
from gateway.validate import Limits, Rejection, validate_message
from simulators import CATALOGUE, HARD_NEGATIVES, Placement, ScenarioError, Simulation, build_fleet, load_scenario_file
from simulators.clock import DAY, HOUR, MINUTE, SECOND

CST = dt.timezone(dt.timedelta(hours=8))
SATURDAY = dt.datetime(2026, 11, 14, tzinfo=CST)
OFF = 8 * HOUR


@dataclass
class Seen:
    ts: int
    device: str
    type: str
    body: dict

    @property
    def local_hour(self) -> float:
        return ((self.ts + OFF) % DAY) / HOUR


def run(type_: str, days: float = 2.0, seed: int = 21) -> tuple[dict, list[Seen]]:
    """A small building with the one scenario; the scenario's devices' messages, validated and decoded."""
    fleet = build_fleet(seed, buildings=1, floors=4, units_per_floor=2, elderly_share=0.3)
    day = 1 if type_ == "night_shift_return" else 0  # the worker's earlier nights come first
    sim = Simulation(fleet, start=SATURDAY, duration=dt.timedelta(days=days), auto_incidents=False,
                     placements=[Placement(type=type_, day=day)], heartbeat_s=900)
    [scenario] = sim.ground_truth()["scenarios"]
    involved = set(scenario["devices"])
    seen = []
    limits = Limits()
    for m in sim.messages():
        if m.device_id not in involved:
            continue
        event = validate_message(m.topic, m.payload, m.ts, limits)
        assert not isinstance(event, Rejection), event
        seen.append(Seen(m.ts_ms, m.device_id, m.type, json.loads(m.payload)))
    return {"scenario": scenario, "notices": sim.ground_truth()["notices"], "fleet": fleet}, seen


def within(seen: list[Seen], device: str, start: int, end: int, *types: str) -> list[Seen]:
    return [s for s in seen if s.device == device and start <= s.ts < end and (not types or s.type in types)]


ROUTINE = ("motion", "door", "bed")


def check(type_: str, gt: dict, seen: list[Seen]) -> None:
    sc = gt["scenario"]
    s, e = sc["start_ms"], sc["end_ms"]
    dev = sc["devices"][0]
    if type_.startswith("lift_fault_"):
        code = int(type_.rsplit("_", 1)[1])
        faults = within(seen, dev, s - SECOND, e + SECOND, "fault")
        assert [(f.body["code"], f.body["active"]) for f in faults] == [(code, True), (code, False)]
        assert faults[0].ts == s and faults[1].ts == e
        if code in (7, 8):
            stuck = within(seen, dev, s, e, "status")
            assert stuck and all(st.body["occupied"] and not st.body["moving"] and st.body["door"] == "closed"
                                 for st in stuck)
            assert all(st.body["door_zone"] is (code == 7) for st in stuck)
        if code not in (14, 21):
            assert not within(seen, dev, s, e, "trip")
        if code == 21:
            assert within(seen, dev, s - 2 * SECOND, s + SECOND, "alarm_button")
    elif type_ == "lift_entrapment_raw":
        assert not within(seen, dev, s - HOUR, e + HOUR, "fault")
        stuck = within(seen, dev, s, e, "status")
        assert len(stuck) >= (e - s) // (15 * SECOND) - 1
        assert all(not st.body["moving"] and st.body["door"] == "closed" and not st.body["door_zone"]
                   and st.body["occupied"] for st in stuck)
        assert not within(seen, dev, s, e, "trip")
    elif type_ == "lift_alarm_presses":
        assert len(within(seen, dev, s, e, "alarm_button")) == 3
        assert not within(seen, dev, s, e, "fault", "trip")
    elif type_ == "lift_inspection":
        modes = within(seen, dev, s, e + SECOND, "service_mode")
        assert [m.body["mode"] for m in modes] == ["inspection", "normal"]
        assert within(seen, dev, s, e, "fault"), "the technician trips faults during inspection"
        assert not within(seen, dev, s - HOUR, s, "fault") and not within(seen, dev, e + SECOND, e + HOUR, "fault")
    elif type_ == "lift_wear":
        span = e - s
        before = within(seen, dev, s, s + span // 4, "trip")
        late = within(seen, dev, s + span * 3 // 4, e, "trip")
        assert before and late

        def reopen_rate(trips: list[Seen]) -> float:
            return sum(t.body["door_reopens"] for t in trips) / len(trips)

        assert reopen_rate(late) > reopen_rate(before) + 0.2
        def vibration(a: int, b: int) -> float:
            vib = [x.body["vibration_mg"] for x in within(seen, dev, a, b, "status") if x.body["moving"]]
            return sum(vib) / len(vib)

        assert vibration(s + span * 3 // 4, e) > 2 * vibration(s, s + span // 10)  # while moving; idle readings stay put
    elif type_ == "pump_fault":
        pump, tank = sc["devices"]
        states = [(x.ts, x.body["state"], x.body.get("fault_code")) for x in within(seen, pump, s, e + 1, "pump")]
        assert states[0] == (s, "fault", "overload") and states[-1][1] == "stopped"
        levels = [x.body["level_pct"] for x in within(seen, tank, s, e, "tank_level")]
        assert levels[-1] < levels[0], "the tank drains while the pump is down"
    elif type_ == "reader_tamper":
        tamper = within(seen, dev, s, e + 1, "tamper")
        assert [(x.ts, x.body["active"]) for x in tamper] == [(s, True), (e, False)]
    elif type_ == "water_burst":
        meter, leak, pressure, riser = sc["devices"]
        assert max(f.body["flow_lpm"] for f in within(seen, meter, s, e, "flow")) >= 45
        wet = [x.body["wet"] for x in within(seen, leak, s, e + 4 * HOUR, "leak")]
        assert wet[:2] == [True, False] and not any(wet[2:])
        assert all(p.body["pressure_kpa"] < 200 for p in within(seen, pressure, s, e, "pressure"))
        assert all(p.body["pressure_kpa"] < 240 for p in within(seen, riser, s, e, "pressure"))
    elif type_ in ("continuous_flow_leak", "long_shower"):
        flows = within(seen, dev, s, e, "flow")
        assert len(flows) >= (e - s) // (15 * MINUTE)
        assert min(f.body["flow_lpm"] for f in flows) >= sc["detail"]["lpm"]
        if type_ == "long_shower":  # and then it stops
            after = within(seen, dev, e, e + 3 * HOUR, "flow")
            assert any(f.body["flow_lpm"] == 0 for f in after)
    elif type_ == "night_flow_rise":
        nights = sc["detail"]["nights"]
        assert nights >= 1
        for n in range(nights):
            flows = within(seen, dev, s + n * DAY, s + n * DAY + 4 * HOUR, "flow")
            assert flows and min(f.body["flow_lpm"] for f in flows) >= sc["detail"]["lpm"]
            assert 1 <= flows[0].local_hour < 1.1
    elif type_ in ("supply_loss", "planned_water_shutdown"):
        pressures = [x for x in seen if x.type == "pressure" and s <= x.ts < e and x.device in sc["devices"]]
        assert len({p.device for p in pressures}) >= 10
        assert all(p.body["pressure_kpa"] < 20 for p in pressures)
        meters = [x for x in seen if x.type == "flow" and s <= x.ts < e and x.device in sc["devices"]]
        assert meters and all(m.body["flow_lpm"] == 0 for m in meters)
    elif type_ in ("door_held_open", "move_door_hold", "fire_door_propped"):
        doors = within(seen, dev, s - MINUTE, e + MINUTE, "door")
        assert [(d.ts, d.body["state"]) for d in doors] == [(s, "open"), (e, "closed")]
        assert e - s >= 10 * MINUTE
        if type_ != "fire_door_propped":
            assert within(seen, dev, s - 5 * SECOND, s, "access")[0].body["result"] == "granted"
    elif type_ == "door_forced":
        assert within(seen, dev, s, s + 1, "door")[0].body["state"] == "open"
        assert not within(seen, dev, s - 2 * MINUTE, s, "access")
    elif type_ == "brute_force":
        denied = within(seen, dev, s, e + 1, "access")
        assert len(denied) >= 8 and all(a.body["result"] == "denied" for a in denied)
        assert e - s < 5 * MINUTE
    elif type_ == "tailgating":
        [granted] = within(seen, dev, s - SECOND, e, "access")
        [counted] = within(seen, dev, s, e, "passage")
        assert granted.body["result"] == "granted" and counted.body == {**counted.body, "count": 2, "direction": "in"}
        assert [d.body["state"] for d in within(seen, dev, s, e + 1, "door")] == ["open", "closed"]
    elif type_ == "unusual_hour_access":
        [granted] = within(seen, dev, s, e, "access")
        assert granted.body["result"] == "granted" and 3 <= granted.local_hour < 5
        quiet = [a for a in seen if a.device == dev and a.type == "access" and 3 <= a.local_hour < 5
                 and a.body["role"] != "staff"]
        assert quiet == [granted], "the door's quiet hours hold nobody else (but the weekly cleaning crew)"
    elif type_ == "elderly_sos":
        assert [x.ts for x in within(seen, dev, 0, 2**62, "sos")] == [s]
    elif type_ == "elderly_fall":
        [fall] = within(seen, dev, 0, 2**62, "fall")
        assert fall.ts == s and fall.body["confidence"] >= 0.8
        assert not within(seen, dev, s + 1, e, *ROUTINE)
    elif type_ in ("elderly_inactivity", "late_sleep_after_late_night", "resident_away_notice"):
        assert not within(seen, dev, s, e, *ROUTINE)
        assert within(seen, dev, e, e + 3 * HOUR, "motion"), "activity resumes"
        if type_ != "resident_away_notice":
            beds = [x for x in seen if x.device == dev and x.type == "bed" and x.ts < s]
            assert beds[-1].body["occupied"] is True, "still in bed"
        if type_ == "late_sleep_after_late_night":
            late = [x for x in within(seen, dev, s - 10 * HOUR, s, "motion") if 0 <= x.local_hour < 1.5]
            assert late, "a late night before the lie-in"
            assert dt.datetime.fromtimestamp(s / 1000, CST).weekday() == 6
    elif type_ == "elderly_night_wandering":
        doors = within(seen, dev, s, e + MINUTE, "door")
        assert doors[0].ts == s and doors[0].body == {**doors[0].body, "door": "entrance", "state": "open"}
        assert 1 <= doors[0].local_hour < 4
        assert not within(seen, dev, s + MINUTE, e, "motion")
    elif type_ == "elderly_long_bathroom_night":
        assert e - s >= 35 * MINUTE
        rooms = {x.body["room"] for x in within(seen, dev, s, e, "motion")}
        assert rooms == {"bathroom"}
        h = ((s + OFF) % DAY) / HOUR
        assert h >= 22 or h < 6
    elif type_ == "device_offline":
        assert not [x for x in seen if x.device == dev and s <= x.ts < e]
        assert [x for x in seen if x.device == dev and x.ts < s] or [x for x in seen if x.device == dev and x.ts >= e]
    elif type_ == "battery_low":
        beats = within(seen, dev, s, e, "heartbeat")
        assert beats and all(b.body["battery"] < 10 for b in beats)
        assert all(b.body["battery"] >= 25 for b in within(seen, dev, 0, s, "heartbeat"))
    elif type_ == "hub_sensor_battery_low":
        reports = [x for x in within(seen, dev, s, e, "sensor_battery") if x.body["sensor"] == sc["detail"]["sensor"]]
        assert reports and all(r.body["battery"] < 10 for r in reports)
    elif type_ == "stuck_sensor":
        values = {x.body["pressure_kpa"] for x in within(seen, dev, s, e, "pressure")}
        assert values == {sc["detail"]["value"]}
        assert len({x.body["pressure_kpa"] for x in within(seen, dev, e, e + 2 * HOUR, "pressure")}) > 3
    else:
        check_field(type_, gt, seen)


def check_field(type_: str, gt: dict, seen: list[Seen]) -> None:
    """The field behaviours of simulators/field.py."""
    sc = gt["scenario"]
    s, e = sc["start_ms"], sc["end_ms"]
    dev = sc["devices"][0]
    statuses = within(seen, dev, s, e, "status")
    if type_ == "lift_entrapment_door":
        assert statuses and all(x.body["door"] == "opening" and x.body["occupied"] and x.body["door_zone"]
                                and not x.body["moving"] for x in statuses)
        faults = within(seen, dev, s, e + SECOND, "fault")
        assert [(f.body["code"], f.body["active"]) for f in faults] == [(11, True), (11, False)]
        assert faults[0].ts - s < 10 * SECOND
    elif type_ == "lift_entrapment_silent":
        assert len(statuses) >= (e - s) // (30 * SECOND) - 1
        assert all(x.body["door"] == "closed" and x.body["occupied"] and x.body["door_zone"] and not x.body["moving"]
                   for x in statuses)
        assert not within(seen, dev, s - HOUR, e + HOUR, "fault", "alarm_button")
    elif type_ == "lift_slow_rider":
        shut = [x for x in statuses if x.body["door"] == "closed" and not x.body["moving"] and x.body["occupied"]]
        moving = [x for x in statuses if x.body["moving"]]
        assert shut and moving and 20 * SECOND <= moving[0].ts - shut[0].ts <= 61 * SECOND
    elif type_ == "lift_occupancy_flicker":
        occupied = [x.body["occupied"] for x in statuses]
        assert any(occupied) and not all(occupied)
        assert all(not x.body["moving"] and x.body["door"] == "closed" for x in statuses)
    elif type_ == "lift_doors_held":
        held = [x for x in statuses if x.body["door"] == "open" and x.body["occupied"]]
        assert held and held[-1].ts - held[0].ts >= 90 * SECOND
    elif type_ == "lift_parked_night":
        assert statuses and all(not x.body["occupied"] and x.body["door"] == "closed" for x in statuses)
        assert not within(seen, dev, s, e, "trip")
    elif type_ == "lift_cleaning_inspection":
        modes = within(seen, dev, s, e + SECOND, "service_mode")
        assert [m.body["mode"] for m in modes] == ["inspection", "normal"]
        assert len([x for x in statuses if x.body["occupied"]]) >= 15
    elif type_ == "lift_child_alarm_press":
        assert len(within(seen, dev, s - MINUTE, e + MINUTE, "alarm_button")) == 1
        assert within(seen, dev, s, e, "trip")
    elif type_ == "lift_busy_day":
        busy = len(within(seen, dev, s, e, "trip"))
        usual = len(within(seen, dev, s - DAY, s, "trip")) or len(within(seen, dev, e, e + DAY, "trip"))
        assert busy > 1.8 * usual
    elif type_ == "door_contact_bounce":
        doors = [d.body["state"] for d in within(seen, dev, s, e + SECOND, "door")]
        assert doors == ["open", "closed", "open", "closed"]
        [reopen] = [d for d in within(seen, dev, s, e + SECOND, "door")][2:3]
        assert reopen.ts - s == 24 * SECOND
    elif type_ == "removal_van_door":
        doors = within(seen, dev, s, e + SECOND, "door")
        grants = within(seen, dev, s - SECOND, e, "access")
        assert len(doors) >= 8 and len(grants) == len(doors) // 2
        opens = [d.ts for d in doors if d.body["state"] == "open"]
        closes = [d.ts for d in doors if d.body["state"] == "closed"]
        assert max(c - o for o, c in zip(opens, closes)) <= 5 * MINUTE
    elif type_ == "night_shift_return":
        [granted] = within(seen, dev, s - SECOND, e, "access")
        assert granted.body["credential"] == sc["detail"]["credential"] and granted.local_hour < 3.5
        earlier = [a for a in seen if a.device == dev and a.type == "access" and a.ts < s - HOUR
                   and a.body["credential"] == granted.body["credential"]]
        assert earlier, "the same card came home on an earlier night"
    elif type_ == "reader_reboot":
        status = [x.type for x in within(seen, dev, s, e + SECOND, "offline", "online")]
        assert status == ["offline", "online"]
        assert not within(seen, dev, s, s + 30 * SECOND, "heartbeat", "access", "door")
    elif type_ == "bath_and_washer":
        flows = [f.body["flow_lpm"] for f in within(seen, dev, s, e, "flow")]
        assert max(flows) >= 20 and max(flows) < 40
    elif type_ == "meter_replaced":
        gap = within(seen, dev, s, e - 2 * MINUTE)
        assert not gap
        after = within(seen, dev, e - 2 * MINUTE, e + HOUR, "flow")
        assert after and after[0].body["total_l"] < 10 < within(seen, dev, s - DAY, s, "flow")[-1].body["total_l"]
    elif type_ == "pressure_test_notice":
        pressures = [x for x in seen if x.type == "pressure" and s <= x.ts < e and x.device in sc["devices"]]
        assert pressures and all(p.body["pressure_kpa"] > 850 for p in pressures)
    elif type_ == "overnight_guest":
        doors = [d for d in within(seen, dev, s, e, "door") if d.body["door"] == "entrance"]
        assert len(doors) == 4
        leave = doors[2]
        assert leave.local_hour < 5
        beds = [x for x in seen if x.device == dev and x.type == "bed" and x.ts < leave.ts]
        assert beds[-1].body["occupied"] is True, "the resident is in bed when the guest leaves"
    elif type_ == "holiday_no_notice":
        assert not within(seen, dev, s, e, *ROUTINE)
        assert e - s >= 6 * HOUR
        assert gt["notices"] == []
    elif type_ == "uplink_store_and_forward":
        assert within(seen, dev, s, e), "it keeps recording (delivered late)"
    elif type_ == "lift_door_zone_flicker":
        stopped = [x for x in statuses if not x.body["moving"] and x.body["door"] == "closed" and x.body["occupied"]]
        assert [x.body["door_zone"] for x in stopped[:3]] == [True, False, True]  # one reading "outside", standing at a floor
        assert stopped[0].body["floor"] == stopped[1].body["floor"] == stopped[2].body["floor"]
        assert within(seen, dev, s, e + SECOND, "trip")
    elif type_ == "lift_doors_opening_report":
        doors = [(x.body["door"], x.body["moving"]) for x in statuses]
        assert doors[:3] == [("closed", True), ("opening", False), ("open", False)]
        opening, opened = statuses[1], statuses[2]
        assert opening.body["occupied"] and opening.body["door_zone"] and opened.ts - opening.ts == 15 * SECOND
        assert not within(seen, dev, s - MINUTE, e + MINUTE, "fault", "alarm_button")
    else:  # pragma: no cover - a new type needs its own check
        pytest.fail(f"no check for {type_}")


NOTICE_OF = {"lift_inspection": "inspection", "planned_water_shutdown": "water_shutdown",
             "move_door_hold": "door_hold", "resident_away_notice": "away", "pressure_test_notice": "pressure_test"}


@pytest.mark.parametrize("type_", list(CATALOGUE))
def test_scenario_emits_what_its_label_claims(type_: str) -> None:
    gt, seen = run(type_, days=3.0 if type_ in ("night_flow_rise", "resident_away_notice", "lift_wear") else 2.0)
    sc = gt["scenario"]
    st = CATALOGUE[type_]
    assert sc["type"] == type_
    assert sc["hard_negative"] is (type_ in HARD_NEGATIVES)
    assert sc["expected_tier"] == (int(st.tier) if st.tier is not None else None)
    assert sc["start_ms"] < sc["end_ms"]
    known = {d.device_id for d in gt["fleet"].devices}
    assert sc["devices"] and set(sc["devices"]) <= known
    check(type_, gt, seen)
    notices = gt["notices"]
    if type_ in NOTICE_OF:
        [notice] = notices
        assert notice["type"] == NOTICE_OF[type_] and notice["scenario_id"] == sc["id"]
        assert notice["start_ms"] <= sc["start_ms"] and notice["end_ms"] >= sc["end_ms"]
        assert notice["announced_ms"] < notice["start_ms"]
        assert set(sc["devices"]) <= set(notice["device_ids"])
    else:
        assert notices == []


def test_entrapments_are_life_safety_and_hard_negatives_have_no_tier() -> None:
    for name in ("lift_fault_7", "lift_fault_8", "lift_entrapment_raw", "lift_alarm_presses", "elderly_sos",
                 "elderly_fall", "water_burst", "lift_entrapment_door", "lift_entrapment_silent"):
        assert CATALOGUE[name].tier == Tier.LIFE_SAFETY
    first = {"late_sleep_after_late_night", "resident_away_notice", "long_shower", "lift_inspection",
             "planned_water_shutdown", "move_door_hold"}
    assert first < set(HARD_NEGATIVES) and len(set(HARD_NEGATIVES) - first) >= 10
    assert all(CATALOGUE[n].mimics in CATALOGUE for n in HARD_NEGATIVES)


def test_the_example_scenario_file_scripts_its_incidents(tmp_path: Path) -> None:
    path = Path(__file__).parents[2] / "simulators" / "scenarios" / "example.toml"
    sf = load_scenario_file(path)
    fleet = build_fleet(int(sf.simulation.get("seed", 1)), preset=sf.simulation.get("preset", "demo"))
    sim = Simulation(fleet, start=sf.simulation["start"], duration=dt.timedelta(days=sf.simulation["days"]),
                     auto_incidents=False, scenario_file=sf)
    gt = sim.ground_truth()
    assert sorted(s["type"] for s in gt["scenarios"]) == sorted(i["type"] for i in sf.incidents)
    lift = next(s for s in gt["scenarios"] if s["type"] == "lift_entrapment_raw")
    assert lift["devices"] == ["c01-b01-lift1"]
    local = dt.datetime.fromisoformat(lift["start"]).astimezone(CST)
    assert (local.hour, local.minute) == (8, 15)


@pytest.mark.parametrize("text, message", [
    ('[[incident]]\ntype = "no_such"\n', "type 'no_such' is unknown"),
    ('[[incident]]\nday = 1\n', "field 'type' is required"),
    ('[[incident]]\ntype = "elderly_sos"\ntime = "25:00"\n', "out of range"),
    ('[[incident]]\ntype = "elderly_sos"\nminutes = -3\n', "'minutes' must be a positive number"),
    ('[simulation]\nseeed = 1\n', "unknown field(s) ['seeed']"),
])
def test_bad_scenario_files_are_refused_with_the_field_named(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError, match=None) as exc:
        load_scenario_file(p)
    assert message in str(exc.value)


def test_a_target_that_cannot_carry_the_scenario_is_refused() -> None:
    fleet = build_fleet(1, preset="building")
    with pytest.raises(ScenarioError, match="cannot carry"):
        Simulation(fleet, start=SATURDAY, auto_incidents=False,
                   placements=[Placement(type="lift_entrapment_raw", target="c01-b01-tank")])


@pytest.mark.parametrize("days", [1, 2])
def test_automatic_incidents_cover_every_type_without_sharing_a_device_at_the_same_time(days: int) -> None:
    sim = Simulation(build_fleet(1, preset="demo"), start=SATURDAY, duration=dt.timedelta(days=days))
    scenarios = sim.scenarios
    expected = set(CATALOGUE) - ({"late_sleep_after_late_night"} if days < 2 else set())
    assert {s.type for s in scenarios} == expected
    for i, a in enumerate(scenarios):
        assert sim.start_ms <= a.start_ms < sim.end_ms, a.id
        for b in scenarios[i + 1:]:
            if not (CATALOGUE[a.type].exclusive and CATALOGUE[b.type].exclusive):
                continue  # a slow trend (lift wear) may run under other scenarios
            shared = set(a.devices) & set(b.devices)
            assert not (shared and a.start_ms < b.end_ms and b.start_ms < a.end_ms), (a.id, b.id, shared)


def test_a_store_and_forward_device_sends_what_it_recorded_when_its_link_is_back() -> None:
    fleet = build_fleet(21, buildings=1, floors=4, units_per_floor=2, elderly_share=0.3)

    def simulation() -> Simulation:  # (a run is iterated once: its actors carry state over)
        return Simulation(fleet, start=SATURDAY, duration=dt.timedelta(days=1), auto_incidents=False,
                          placements=[Placement(type="uplink_store_and_forward", time="10:00", minutes=8)])

    sim = simulation()
    [(device, start, end)] = sim.outages()
    assert sim.ground_truth()["outages"] == [{"device_id": device, "start_ms": start, "end_ms": end}]
    delivered = list(sim.deliveries())
    assert sorted((m.ts_ms, m.device_id, m.payload) for m in delivered) == sorted(
        (m.ts_ms, m.device_id, m.payload) for m in simulation().messages())  # nothing lost, nothing added
    held = [m for m in delivered if m.deliver_ms != m.ts_ms]
    assert held and all(m.device_id == device and start <= m.ts_ms < end and m.deliver_ms == end for m in held)
    assert [m.ts_ms for m in held] == sorted(m.ts_ms for m in held)  # oldest first
    order = [m.deliver_ms for m in delivered]
    assert order == sorted(order)
