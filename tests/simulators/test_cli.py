"""``steward simulate`` end to end: JSONL files and a real broker, with the summary printed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from simulators.output import read_devices, read_jsonl
from steward.brokers import MosquittoBroker
from steward.cli import build_app
from tests.simulators.test_mqtt import Collector

runner = CliRunner()


def test_simulate_to_jsonl_writes_messages_registry_and_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(build_app(), ["simulate", "--preset", "building", "--hours", "6", "--seed", "3",
                                         "--start", "2026-11-16T00:00:00+08:00", "--jsonl", str(out)])
    assert result.exit_code == 0, result.output
    lines = list(read_jsonl(out))
    gt = json.loads((out / "ground_truth.json").read_text())
    devices = read_devices(out / "devices.json")
    assert len(devices) == gt["devices"]
    assert f"{len(lines):,} messages" in result.output
    assert "Messages sent per device type" in result.output and "Scenarios (ground truth)" in result.output
    assert gt["scenarios"] and all(gt["start"] <= s["start"] < gt["end"] for s in gt["scenarios"])
    assert {t.split("/")[3] for t, _ in lines} <= {d.device_id for d in devices}


def test_simulate_with_a_scenario_file_and_bad_input(tmp_path: Path) -> None:
    script = tmp_path / "morning.toml"
    script.write_text(
        '[simulation]\npreset = "building"\nseed = 5\ndays = 0.5\nstart = 2026-11-16T00:00:00+08:00\n'
        '[[incident]]\ntype = "lift_entrapment_raw"\ntime = "08:15"\ntarget = "c01-b01-lift1"\n'
        '[[incident]]\ntype = "elderly_sos"\nat = 2026-11-16T10:00:00+08:00\n')
    result = runner.invoke(build_app(), ["simulate", "--scenario-file", str(script), "--jsonl", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    gt = json.loads((tmp_path / "x" / "ground_truth.json").read_text())
    assert [s["type"] for s in gt["scenarios"]] == ["lift_entrapment_raw", "elderly_sos"]
    assert gt["scenarios"][0]["start"] == "2026-11-16T00:15:00.000Z"
    example = Path(__file__).parents[2] / "simulators" / "scenarios" / "example.toml"
    short = runner.invoke(build_app(), ["simulate", "--scenario-file", str(example), "--hours", "12",
                                        "--jsonl", str(tmp_path / "z")])
    assert short.exit_code == 2 and "outside the run" in short.output
    bad = runner.invoke(build_app(), ["simulate", "--preset", "nope", "--jsonl", str(tmp_path / "y")])
    assert bad.exit_code == 2 and "is not one of" in bad.output
    both = runner.invoke(build_app(), ["simulate", "--jsonl", "a", "--mqtt", "mqtt://127.0.0.1:1"])
    assert both.exit_code == 2 and "exactly one output" in both.output


def test_simulate_to_mqtt_delivers_everything(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    collector = Collector(mosquitto.port)
    try:
        result = runner.invoke(build_app(), ["simulate", "--preset", "building", "--hours", "2", "--mqtt",
                                             mosquitto.url, "--ground-truth", str(tmp_path / "gt.json")])
        assert result.exit_code == 0, result.output
        sent = int(result.output.split(" messages (")[0].split()[-1].replace(",", ""))
        assert sent > 1000
        assert collector.wait_for(sent, 30), f"{len(collector.keys)} of {sent}"
        assert json.loads((tmp_path / "gt.json").read_text())["seed"] == 1
        assert read_devices(tmp_path / "devices.json")
    finally:
        collector.close()


def test_a_recorded_run_replays_into_the_broker(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    made = runner.invoke(build_app(), ["simulate", "--preset", "building", "--hours", "1", "--jsonl", str(out)])
    assert made.exit_code == 0, made.output
    recorded = list(read_jsonl(out))
    collector = Collector(mosquitto.port)
    try:
        result = runner.invoke(build_app(), ["simulate", "--replay", str(out), "--mqtt", mosquitto.url])
        assert result.exit_code == 0, result.output
        assert f"replayed {len(recorded):,} messages" in result.output
        assert collector.wait_for(len(recorded), 30)
        assert collector.keys == {(t.split("/")[3], json.loads(p)["id"]) for t, p in recorded}
    finally:
        collector.close()
