"""The generic statistical detector and `steward score`."""

from __future__ import annotations

import csv
import io
import math
import random
from pathlib import Path

from typer.testing import CliRunner

from detectors.score import score_rows
from detectors.statistical import Params, StreamStats, step
from steward.cli import build_app


def series(n: int = 400, spike_at: int = 300) -> list[list[str]]:
    rng = random.Random(3)
    rows = []
    for i in range(n):
        v = 50 + 5 * math.sin(i / 15) + rng.gauss(0, 0.5)
        if i == spike_at:
            v += 30
        rows.append([f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}Z", f"{v:.3f}"])
    return rows


def test_scores_in_unit_interval_zero_in_warmup_and_high_on_the_spike() -> None:
    scores = [s for _, _, s in score_rows(series())]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[:30] == [0.0] * 30
    assert scores[300] > 0.7 and scores[300] == max(scores)
    assert sum(1 for s in scores if s > 0.5) <= 3  # the spike, not the sine wave


def test_no_look_ahead_a_prefix_scores_the_same() -> None:
    rows = series()
    full = [s for _, _, s in score_rows(rows)]
    prefix = [s for _, _, s in score_rows(rows[:250])]
    assert prefix == full[:250]


def test_decision_needs_k_consecutive_hot_values() -> None:
    st, p = StreamStats(), Params(k=3)
    for i in range(100):
        st, _, hot = step(st, 10.0 + (i % 2) * 0.1, p)
        assert not hot
    flags = [step(st, 40.0, p)[2] for _ in range(3)]
    assert flags == [False, False, True]


def test_score_command_writes_the_csv(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n" + "\n".join(",".join(r) for r in series()) + "\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(build_app(), ["score", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert len(rows) == 401
    assert float(rows[301][2]) > 0.7


def test_score_command_names_the_bad_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("timestamp,value\n2026-11-01T00:00:00Z,1.0\n2026-11-01T00:00:01Z,abc\n")
    result = CliRunner().invoke(build_app(), ["score", str(src)])
    assert result.exit_code == 2
    assert "line 3" in result.output and "value" in result.output
