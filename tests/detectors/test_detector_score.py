"""The learned baseline (statistical.py) and `steward score`: behaviour tables, causality, the command."""

from __future__ import annotations

import csv
import io
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from detectors import statistical as S
from detectors.score import main, score_rows

STEP = 300.0  # 5-minute readings
DAY_READINGS = int(86400 / STEP)


def rows(values: list[float], start: float = 1_700_000_000.0 - 1_700_000_000.0 % 86400) -> list[list[str]]:
    import datetime as dt

    t0 = dt.datetime(2026, 11, 2)
    return [[(t0 + dt.timedelta(seconds=k * STEP)).isoformat(sep=" "), repr(v)] for k, v in enumerate(values)]


def scores(values: list[float]) -> list[float]:
    return [s for _, _, s in score_rows(rows(values))]


def raw_scores(values: list[float]) -> list[float]:
    """Scores without report_once: how unusual each reading is."""
    p, st, out = S.Params(), S.StreamState(), []
    for k, x in enumerate(values):
        t = k * STEP
        out.append(S.score_one(st, x, t, p))
        S.learn_one(st, x, t, p)
    return out


def daily(days: int, seed: int, noise: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [50 + 20 * math.sin(2 * math.pi * k / DAY_READINGS) + rng.gauss(0, noise) for k in range(days * DAY_READINGS)]


THRESHOLD = 0.47  # about where NAB's optimiser puts its threshold on this detector (README)


def test_scores_are_in_the_unit_interval_and_zero_while_learning() -> None:
    sc = scores(daily(3, 1))
    assert all(0.0 <= s < 1.0 for s in sc)
    assert sc[: S.Params().grace] == [0.0] * S.Params().grace


def test_a_spike_scores_high_once() -> None:
    values = daily(6, 2)
    values[5 * DAY_READINGS] += 60
    sc = scores(values)
    assert sc[5 * DAY_READINGS] > THRESHOLD
    assert sc[5 * DAY_READINGS] == max(sc[DAY_READINGS:])
    assert sum(1 for s in sc[DAY_READINGS:] if s > THRESHOLD) <= 3  # the spike, and noise at its usual rate


def test_a_level_shift_is_reported_at_its_start_then_learned() -> None:
    rng = random.Random(3)
    values = [100 + rng.gauss(0, 1) for _ in range(1500)] + [130 + rng.gauss(0, 1) for _ in range(1500)]
    sc = scores(values)
    assert sc[1500] > THRESHOLD and sc[1500] == max(sc)
    assert sum(1 for s in sc[1501:] if s > THRESHOLD) <= 4  # no run of alarms over the new segment
    raw = raw_scores(values)
    assert sum(1 for s in raw[2200:] if s > THRESHOLD) <= 8  # the new level is the baseline now (no freeze at 1.0)


def test_daily_seasonality_is_learned_and_a_missing_peak_is_not() -> None:
    values = daily(10, 4)
    raw = raw_scores(values)
    # peaks and troughs are normal at their hour: as rare as noise alarms (< 0.5 %)
    assert sum(1 for s in raw[4 * DAY_READINGS:] if s > THRESHOLD) <= 0.005 * 6 * DAY_READINGS
    broken = list(values)
    peak = 8 * DAY_READINGS + DAY_READINGS // 4  # 06:00 on day 8: the daily high
    for k in range(peak - 24, peak + 24):
        broken[k] = 50 + random.Random(k).gauss(0, 1)  # the series stays at its mean instead
    sc = scores(broken)
    hits = [k for k in range(4 * DAY_READINGS, len(sc)) if sc[k] > THRESHOLD]
    assert any(peak - 24 <= k < peak + 24 for k in hits)


def test_flat_series_is_quiet_and_a_step_on_it_is_reported_once() -> None:
    assert max(scores([7.0] * 3000)) == 0.0
    stepped = [7.0] * 2000 + [7.5] * 1000
    sc = scores(stepped)
    assert sc[2000] > THRESHOLD
    assert sum(1 for s in sc if s > THRESHOLD) == 1


def test_a_slow_drift_is_not_an_alarm() -> None:
    rng = random.Random(5)
    noise = [rng.gauss(0, 0.5) for k in range(6000)]
    drifting = [20 + k * 0.002 + e for k, e in enumerate(noise)]  # +12 over 3 weeks
    steady = [20 + e for e in noise]
    alarms = sum(1 for s in scores(drifting) if s > THRESHOLD)
    assert alarms <= 0.005 * len(noise)
    assert alarms <= 2 * sum(1 for s in scores(steady) if s > THRESHOLD) + 3  # no more than noise gives


def test_noisy_series_rarely_crosses_the_threshold() -> None:
    rng = random.Random(6)
    values = [rng.lognormvariate(3, 0.6) for _ in range(5000)]  # heavy-tailed counts
    sc = scores(values)
    assert sum(1 for s in sc if s > THRESHOLD) <= 10  # <= 0.2 %


def test_causal_a_prefix_scores_exactly_the_same() -> None:
    values = daily(8, 7)
    values[6 * DAY_READINGS] += 40
    full = scores(values)
    cut = int(len(values) * 0.6)
    assert scores(values[:cut]) == full[:cut]


def test_deterministic() -> None:
    values = daily(4, 8)
    assert scores(values) == scores(values)


def saturated_state() -> S.StreamState:
    """The largest a stream's state gets: every slot, every histogram bin and every counter at its cap."""
    p, st = S.Params(), S.StreamState()
    rng = random.Random(9)
    for k in range(20 * DAY_READINGS):
        S.learn_one(st, rng.uniform(-1e9, 1e9), k * STEP, p)  # every slot, every histogram bin used
        S.report_once(st, 0.3, p)
    for _ in range(200):  # every slot's visit counter at its cap
        for slot in range(p.slots):
            S.learn_one(st, rng.uniform(-1e9, 1e9), slot * 86400.0 / p.slots, p)
    for day in range(20, 20 + 7 * 128):  # every weekday's counter at its cap (one reading a day is enough)
        S.learn_one(st, rng.uniform(-1e9, 1e9), day * 86400.0 + 0.5, p)
    st.n = 2**63 - 1  # the counter's widest encoding
    st.day = st.day_n = 2**32 - 1  # days since 1970 and readings in a day: widest realistic (a uint32)
    return st


def test_state_fits_in_two_kilobytes() -> None:
    st = saturated_state()
    assert all(v == 127 for v in st.visits) and len(st.calib) == S.NE * S.NB  # (msgpack floats: always 9 bytes)
    assert all(v == 127 for v in st.week_visits) and len(st.week) == 7
    assert all(isinstance(v, int) and v < 2**32 for v in st.calib) and max(st.calib) > 2**16  # 5 bytes each
    assert S.state_bytes(st) <= 2048


def test_a_state_stored_before_the_histograms_counted_in_millionths_still_scores_the_same() -> None:
    import msgspec

    p, st = S.Params(), S.StreamState()
    values = daily(3, 17)
    for k, x in enumerate(values):
        S.learn_one(st, x, k * STEP, p)
    # the former layout: the first 14 fields, the histograms and their mass as floats, in readings
    old = msgspec.structs.astuple(st)[:14]
    old = old[:11] + ([v / S.UNIT for v in st.calib], st.calib_n / S.UNIT) + old[13:]
    back = msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=S.StreamState)
    t = len(values) * STEP
    for x in (values[-1], 80.0, 500.0):
        assert S.score_one(back, x, t, p) == pytest.approx(S.score_one(st, x, t, p), abs=1e-6)
    S.learn_one(back, values[-1], t, p)  # and it learns on
    assert back.week_visits == [0] * 7 and all(isinstance(v, int) for v in back.calib)


def weekly(weeks: int, seed: int, weekday_at_weekend_level: int | None = None) -> list[float]:
    """5-minute readings starting on a Thursday (t = 0): a daily cycle around 100 on weekdays and
    around 50 on Saturdays and Sundays (an office's load, a plant's pressure on a weekly schedule)."""
    rng = random.Random(seed)
    out = []
    for k in range(weeks * 7 * DAY_READINGS):
        day = k // DAY_READINGS
        weekend = (day + 3) % 7 >= 5 or day == weekday_at_weekend_level
        base = 50.0 if weekend else 100.0
        out.append(base + 10 * math.sin(2 * math.pi * k / DAY_READINGS) + rng.gauss(0, 1))
    return out


def weekend_starts(weeks: int) -> list[int]:
    return [d * DAY_READINGS for d in range(weeks * 7) if (d + 3) % 7 == 5]


def test_a_weekly_schedule_is_learned_per_weekday() -> None:
    for seed in (21, 22, 23):
        values = weekly(7, seed)
        raw = raw_scores(values)
        first, *_, last = weekend_starts(7)
        # the first weekend is a surprise (nothing knows Saturdays yet)...
        assert max(raw[first:first + 12]) > THRESHOLD
        # ...the last is not: its start, the whole weekend and Monday's return, as rare as noise alarms
        learned = raw[last - DAY_READINGS:last + 3 * DAY_READINGS]
        assert max(raw[last:last + 12]) < THRESHOLD, seed
        assert sum(1 for s in learned if s > THRESHOLD) <= 0.005 * len(learned), seed
        assert sum(1 for s in raw[5 * 7 * DAY_READINGS:] if s > THRESHOLD) <= 0.005 * 2 * 7 * DAY_READINGS, seed


def test_a_weekday_at_the_weekend_level_is_still_anomalous_once_weekends_are_learned() -> None:
    for seed in (21, 22, 23):
        wednesday = 6 * 7 + 6  # the seventh week's Wednesday (day 0 is a Thursday)
        assert (wednesday + 3) % 7 == 2
        raw = raw_scores(weekly(7, seed, weekday_at_weekend_level=wednesday))
        start = wednesday * DAY_READINGS
        assert max(raw[start:start + 12]) > THRESHOLD, seed
        # while the same drop into a learned Saturday scores like noise
        saturday = start - 4 * DAY_READINGS
        assert max(raw[saturday:saturday + 12]) < THRESHOLD, seed


def test_the_stored_state_has_the_plain_states_fields_in_order() -> None:
    # steward score learns into baseline.Stream; device health stores statistical.StreamState: the same state
    import msgspec

    from detectors import baseline

    stored = S.StreamState()
    assert msgspec.structs.asdict(stored) == {f: getattr(baseline.Stream(), f) for f in baseline.Stream.__slots__}
    assert list(msgspec.structs.asdict(stored)) == list(baseline.Stream.__slots__)
    p, plain, values = S.Params(), baseline.Stream(), daily(3, 14)
    for k, x in enumerate(values):
        t = k * STEP
        assert S.score_one(plain, x, t, p) == S.score_one(stored, x, t, p)
        S.learn_one(plain, x, t, p)
        S.learn_one(stored, x, t, p)
    assert msgspec.structs.asdict(stored) == {f: getattr(plain, f) for f in baseline.Stream.__slots__}


def test_score_one_learns_nothing() -> None:
    p, st = S.Params(), S.StreamState()
    values = daily(4, 13)
    for k, x in enumerate(values):
        S.learn_one(st, x, k * STEP, p)
    before = S.state_bytes(st), st.n, list(st.calib), list(st.profile), st.level, st.prev
    import msgspec

    snapshot = msgspec.msgpack.encode(st)
    for x in (values[-1], 0.0, 1e6, -50.0):
        for t in (len(values) * STEP, 3 * 3600.0):
            S.score_one(st, x, t, p)
            S.score_one(st, x, t, p, S.UNCLOCKED)
    assert msgspec.msgpack.encode(st) == snapshot
    assert before == (S.state_bytes(st), st.n, list(st.calib), list(st.profile), st.level, st.prev)


def test_decision_opens_on_evidence_and_clears() -> None:
    d, al = S.Decision(), S.Alarm()
    assert [S.decide(al, 0.45, d) for _ in range(8)] == [(False, False)] * 8  # 8 x 0.05 = 0.4 < 0.45
    assert S.decide(al, 0.45, d) == (True, False)
    assert [S.decide(al, 0.1, d) for _ in range(d.clear_after)][-1] == (False, True)
    al2 = S.Alarm()
    assert S.decide(al2, 0.7, d) == (True, False)  # one extreme reading opens at once


def _write(path: Path, values: list[float]) -> None:
    path.write_text("timestamp,value\n" + "\n".join(",".join(r) for r in rows(values)) + "\n")


def test_command_scores_a_folder_in_one_process_at_full_precision(tmp_path: Path) -> None:
    (tmp_path / "in" / "a").mkdir(parents=True)
    _write(tmp_path / "in" / "a" / "one.csv", daily(2, 10))
    _write(tmp_path / "in" / "two.csv", daily(2, 11))
    assert main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--prefix", "x_"]) == 0
    got = list(csv.reader(io.StringIO((tmp_path / "out" / "a" / "x_one.csv").read_text())))
    assert got[0] == ["timestamp", "value", "anomaly_score"] and len(got) == 2 * DAY_READINGS + 1
    assert (tmp_path / "out" / "x_two.csv").exists()
    expected = scores(daily(2, 10))
    assert any(0.0 < s < 1.0 and len(repr(s)) > 8 for s in expected)  # more digits than 4 decimals would keep
    assert [float(r[2]) for r in got[1:]] == expected  # repr: every digit, reads back as the same float


def test_command_names_the_bad_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("timestamp,value\n2026-11-01T00:00:00Z,1.0\n2026-11-01T00:05:00Z,abc\n")
    assert main([str(src)]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "'value'" in err
    src.write_text("timestamp,value\nyesterday,1.0\n")
    assert main([str(src)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_steward_score_does_not_import_the_service(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    _write(src, daily(1, 12))
    code = ("import sys; sys.argv = ['steward', 'score', %r]; from steward.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('typer', 'fastapi', 'psycopg', 'gateway', 'api', 'simulators', 'rich', 'numpy', 'ingest', 'msgspec', "
            "'oncall', 'alerts', 'workorders', 'domain')), file=sys.stderr)") % str(src)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"
    assert len(out.stdout.splitlines()) == DAY_READINGS + 1


def test_another_rule_holding_opens_and_keeps_the_decision_open() -> None:
    d, al = S.Decision(), S.Alarm()
    assert S.decide(al, 0.1, d, holds=True) == (True, False)  # an unremarkable score, but a rule says so
    assert [S.decide(al, 0.1, d, holds=True) for _ in range(3 * d.clear_after)] == [(False, False)] * 3 * d.clear_after
    assert [S.decide(al, 0.1, d) for _ in range(d.clear_after)][-1] == (False, True)  # clears once it stops holding


def test_the_clock_free_experts_ignore_the_time_of_day_profile() -> None:
    # device health judges a tank's level (a cycle not tied to the clock) by these experts only
    p, st = S.Params(), S.StreamState()
    for k, x in enumerate(daily(10, 5, noise=0.5)):
        S.learn_one(st, x, k * STEP, p)
    end = 10 * 86400.0
    for x in (st.prev, st.prev + 3.0, 30.0, 70.0):
        at_hours = [S.score_one(st, x, end + h * 3600.0, p, S.UNCLOCKED) for h in range(0, 24, 3)]
        assert len(set(at_hours)) == 1  # the hour does not matter
        assert at_hours[0] <= min(S.score_one(st, x, end + h * 3600.0, p) for h in range(0, 24, 3))
    assert S.usual(S.StreamState(), end, p) is None  # nothing learned yet
    centre, spread = S.usual(st, end + 6 * 3600.0, p)
    slot = S.slot_of(end + 6 * 3600.0, p)
    assert centre == st.level + st.profile[slot] and spread == st.spread[slot] > 0.0
