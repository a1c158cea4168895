"""``steward bench ingest`` end to end on a small backlog: its accounting must add up."""

from __future__ import annotations

import re
import statistics

from typer.testing import CliRunner

from steward.cli import build_app


def test_bench_ingest_drains_every_run_and_counts_no_loss(admin_dsn: str) -> None:
    result = CliRunner().invoke(
        build_app(),
        [
            "bench",
            "ingest",
            "--messages",
            "3000",
            "--devices",
            "40",
            "--runs",
            "2",
            "--batch-size",
            "500",
            "--database-url",
            admin_dsn,
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "lost 0, duplicated 0, dead-lettered 0 in all runs" in out
    assert "3,000 acknowledged by the broker in each run" in out
    # one table row per run: both drains measured, nothing lost or duplicated
    rows = [[c.strip() for c in line.split("\u2502")[1:-1]] for line in out.splitlines() if line.startswith("\u2502")]
    assert [r[0] for r in rows] == ["1", "2"], out
    for _, ref_s, _, gw_s, _, ratio, lost, duplicated in rows:
        assert float(ref_s) > 0 and float(gw_s) > 0 and float(ratio) > 0, out
        assert (lost, duplicated) == ("0", "0")
    median = float(re.search(r"median of 2: (\d+\.\d\d)", out).group(1))  # type: ignore[union-attr]
    assert abs(median - statistics.median(float(r[5]) for r in rows)) <= 0.01


def test_synthetic_payloads_are_about_200_bytes_with_uuid7_ids_and_all_valid() -> None:
    import datetime as dt
    import json
    import uuid

    from domain.events import Rejection
    from gateway.validate import Limits, validate_publish
    from steward.bench import bench_devices, bench_messages

    devices = bench_devices(1000)
    messages = list(bench_messages(devices, 4000))
    assert 190 <= statistics.mean(len(p) for _, p in messages) <= 210  # the "≈200-byte events"
    assert len({topic.split("/")[3] for topic, _ in messages}) == 1000
    ids = [uuid.UUID(json.loads(p)["id"]) for _, p in messages]
    assert {i.version for i in ids} == {7} and len(set(ids)) == len(ids)
    now = dt.datetime.now(dt.timezone.utc)
    results = [validate_publish(t.encode(), p, now, Limits()) for t, p in messages]
    assert [r for r in results if isinstance(r, Rejection)] == []
