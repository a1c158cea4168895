"""`steward eval` on a one-building fleet: the pipeline and its scoring are real."""

from __future__ import annotations

from detectors import evaluation


def test_small_eval_detects_level_1_and_scores_every_type() -> None:
    report = evaluation.run(seed=3, preset="building", days=1, warmup_days=1, per_type=1, late=False)
    s = evaluation.summary(report)
    assert s["rejected"] == 0  # the simulator speaks the payload contract
    assert s["level1_recall"] == 1.0
    assert s["detected"] >= 0.9 * s["scenarios"]
    assert s["hard_negatives_alarmed"] <= 1
    assert s["false_alarms_per_1000_device_days"] is not None
    lat = [row["p95_s"] for name, row in report.by_type.items() if row["tier"] == 1 and row["p95_s"] is not None
           and name != "lift_entrapment_silent"]  # by design: 3 minutes (README)
    assert lat and max(lat) <= 10.0  # Level 1 within 10 s of event time
    assert s["level1_false_alarms"] == 0
    assert 0 < s["state_bytes_mean"] < 2048


def test_scoring_counts_misses_and_false_alarms() -> None:
    from types import SimpleNamespace

    sc = SimpleNamespace(id="S1", type="elderly_sos", family="elderly", devices=["h1"], building_id="b1", start_ms=1_000_000,
                         end_ms=1_900_000, hard_negative=False, expected_tier=1)
    hn = SimpleNamespace(id="S2", type="long_shower", family="water", devices=["m1"], building_id="b1", start_ms=5_000_000,
                         end_ms=6_000_000, hard_negative=True, expected_tier=None)
    fleet = SimpleNamespace(by_id={})
    o = evaluation.Opening
    openings = [o(1, "sos", "h1", ("h1",), "b1", 1, 1002.0, "sos"),  # detected, 2 s
                o(2, "continuous_flow", "m1", ("m1",), "b1", 2, 5500.0, "leak"),  # on a hard negative
                o(3, "offline", "x9", ("x9",), "b1", 3, 9000.0, "offline")]  # unexplained
    report = evaluation.score([sc, hn], openings, fleet)
    assert report.by_type["elderly_sos"]["recall"] == 1.0 and report.by_type["elderly_sos"]["p50_s"] == 2.0
    assert [f.incident_id for f in report.false_alarms] == [2, 3]
    assert [a.incident_id for a in report.hard_negative_alarms["S2"]] == [2]
    report.devices, report.days = 10, 2
    report.family_devices = {"water": 4, "elderly": 6}
    for o, family in zip(openings, ("elderly", "water", "water")):
        o.family = family
    s = evaluation.summary(report)
    assert s["false_alarms_by_family"]["water"] == {"false_alarms": 2, "device_days": 8, "per_1000_device_days": 250.0}
    assert s["false_alarms_by_tier"] == {"2": {"false_alarms": 1, "per_1000_device_days": 50.0},
                                         "3": {"false_alarms": 1, "per_1000_device_days": 50.0}}
    assert s["level1_false_alarms"] == 0 and s["level1_within_10s"] == 1


def test_an_uplink_outage_is_judged_by_the_silence_the_receiver_saw() -> None:
    """A meter quiet for 4 minutes, then 14 minutes of outage: 18 minutes without a message,
    so the late run's offline there is expected (device_offline), not a false alarm."""
    from types import SimpleNamespace

    from detectors.delivery import Outage

    outage = Outage("m1", 1000.0 + 240, 1000.0 + 240 + 840)
    log = [SimpleNamespace(device_id=d, ts_ms=int(t * 1000)) for d, t in
           [("m1", 700.0), ("x", 900.0), ("m1", 1000.0), ("m1", 1500.0), ("m1", 2100.0)]]
    heard: dict = {}
    assert list(evaluation.last_heard(iter(log), [outage], heard)) == log
    assert heard == {("m1", 1240.0, 2080.0): 1000.0}
    fa = evaluation.Opening(1, "offline", "m1", ("m1",), "b1", 3, 1900.0, "offline")
    live = evaluation.Detected([], [], 0, 0, 0.0, [])
    late = evaluation.Detected([fa], [fa], 0, 0, 0.0, [])
    assert evaluation.compare(live, late, 0.0, [outage], 900.0)["only_late"] == ["offline@m1"]  # by the outage alone: 14 min
    same = evaluation.compare(live, late, 0.0, [outage], 900.0, heard)
    assert same["only_late"] == [] and same["explained_by_outages"] == 1
