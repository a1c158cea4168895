"""Thresholds: defaults from DOMAIN.md, overrides per community, building and device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.devices import DeviceType
from detectors.config import DetectorConfig, Thresholds, load_config
from dtables import at, device, kinds, play
from detectors.engine import Engine


def test_overrides_apply_community_then_building_then_device() -> None:
    cfg = DetectorConfig(overrides={"community:c1": {"door_held_open_s": 400}, "building:b1": {"door_held_open_s": 200},
                                    "device:d2": {"door_held_open_s": 30}})
    d1, d2, d3 = (device(i, DeviceType.ACCESS, "entrance") for i in ("d1", "d2", "d3"))
    d3 = device("d3", DeviceType.ACCESS, "entrance", building="b9")
    assert [cfg.for_device(d).door_held_open_s for d in (d1, d2, d3)] == [200, 30, 400]
    assert Thresholds().door_held_open_s == 300


def test_an_override_changes_detection() -> None:
    door = device("d2", DeviceType.ACCESS, "entrance")
    eng = Engine(DetectorConfig(overrides={"device:d2": {"door_held_open_s": 30, "offline_after_s": 10**9}}), {"d2": door})
    t = at(12)
    got = play(eng, [(t, door, "access", {"result": "granted", "credential": "c"}), (t + 1, door, "door", {"state": "open"}), (t + 40, "tick")])
    assert kinds(got) == [("opened", "door_held_open", 3)] and got[0][0] == t + 31  # 30 s after the opening


def test_bad_configuration_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="door_held_open_secs"):
        DetectorConfig(overrides={"device:d1": {"door_held_open_secs": 5}})
    with pytest.raises(ValueError, match="must be community"):
        DetectorConfig(overrides={"floor:3": {}})
    bad = tmp_path / "detectors.json"
    bad.write_text(json.dumps({"defaults": {"burst_flow_lpm": "lots"}}))
    with pytest.raises(ValueError, match="burst_flow_lpm"):
        load_config({"STEWARD_DETECTOR_CONFIG": str(bad)})
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"defaults": {"burst_flow_lpm": 50}, "overrides": {"building:b1": {"tank_low_pct": 20}}}))
    cfg = load_config({"STEWARD_DETECTOR_CONFIG": str(good)})
    assert cfg.defaults.burst_flow_lpm == 50 and cfg.for_device(device("t", DeviceType.WATER, "tank")).tank_low_pct == 20
