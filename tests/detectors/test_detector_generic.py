"""Checks every detector must pass (river's idea): deterministic, no clock, and a
restart from snapshots at any point gives exactly the uninterrupted run's changes."""

from __future__ import annotations

import inspect
import re

import pytest

from detectors import access, baseline, device_health, elderly, elevator, statistical, telemetry_health, water
from detectors.engine import Engine
from dtables import play
import test_detector_access as acc
import test_detector_elderly as eld
import test_detector_elevator as lift
import test_detector_water as wat


def restart(eng: Engine) -> Engine:
    """What a process restart does: a new engine from the snapshots of the old one."""
    new = Engine(eng.config, eng.devices)
    for key in list(eng.states) + [f"building:{b}" for b in eng.buildings]:
        new.load(key, eng.dump(key))
    new.silences, new.clock = eng.silences, eng.clock
    new.rebuild_derived()
    return new


def scripts() -> dict[str, tuple[list, list]]:
    out = {
        "elevator": ([lift.LIFT], [s for steps, _ in lift.CASES.values() for s in steps]),
        "water-leak": ([wat.METER], wat.flows(wat.T, 200, 2.0) + [(wat.T + 200 * 60, wat.METER, "flow", {"flow_lpm": 0.0})]),
        "water-building": (wat.building(5), [(wat.T + k * 200 + i, s, "pressure", {"pressure_kpa": 4.0 if 3 <= k < 12 else 330.0})
                                             for k in range(20) for i, s in enumerate(wat.building(5))]),
        "access": ([acc.DOOR], acc.passage(acc.T) + [(acc.T + 100, acc.DOOR, "door", {"state": "open"}), (acc.T + 400, "tick"),
                                                      (acc.T + 500, acc.DOOR, "door", {"state": "closed"})]),
        "elderly": ([eld.HUB], [s for d in range(5) for s in eld.normal_day(d)] + [(eld.at(12, day=5), "tick")]),
    }
    for name, (_, steps) in out.items():  # a table step list must be in time order for one engine
        steps.sort(key=lambda s: s[0])
    return out


SCRIPTS = scripts()


@pytest.mark.parametrize("name", SCRIPTS)
def test_deterministic(name: str) -> None:
    devices, steps = SCRIPTS[name]
    runs = [play(Engine(devices={d.device_id: d for d in devices}), steps) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0], "the script should raise something"


@pytest.mark.parametrize("name", SCRIPTS)
def test_restart_from_snapshots_anywhere_changes_nothing(name: str) -> None:
    devices, steps = SCRIPTS[name]
    whole = play(Engine(devices={d.device_id: d for d in devices}), steps)
    cut_points = sorted({len(steps) * k // 7 for k in range(1, 7)})
    eng = Engine(devices={d.device_id: d for d in devices})
    got: list = []
    done = 0
    for cut in cut_points + [len(steps)]:
        got += play(eng, steps[done:cut])
        done = cut
        eng = restart(eng)
    assert got == whole


@pytest.mark.parametrize("module", [access, baseline, device_health, elderly, elevator, statistical,
                                    telemetry_health, water])
def test_detectors_read_no_clock_and_do_no_io(module: object) -> None:
    source = inspect.getsource(module)  # type: ignore[arg-type]
    assert not re.search(r"\b(time\.time|datetime\.now|dt\.datetime\.now|\.now\(|\.utcnow\(|open\(|psycopg|socket)", source)


def test_state_stays_compact() -> None:
    devices, steps = SCRIPTS["elderly"]
    eng = Engine(devices={d.device_id: d for d in devices})
    play(eng, steps)
    assert max(eng.state_sizes()) < 1024  # a week of learned profile fits in one kilobyte


def test_every_detector_state_stays_under_2_kb_after_a_week() -> None:
    """A small building's ordinary week through one engine: each device's snapshot (msgpack,
    what the runtime stores) per family, as measured and with every bounded history full
    (learned profiles, Bloom filter, run and night histories, a reorder window holding
    messages, two raised conditions): the worst a long-lived device reaches."""
    from detectors.state_size import state_sizes

    sizes = state_sizes(devices=10, hours=24 * 7, seed=5, floors=3, units_per_floor=2, elderly_share=0.5)
    assert set(sizes.measured_max_by_type) == {"access", "elderly", "elevator", "water"}
    assert sizes.messages > 50_000
    for family, size in sizes.measured_max_by_type.items():
        assert 0 < size <= 2048, family
    for family, size in sizes.saturated_max_by_type.items():
        assert size <= 2048, family
