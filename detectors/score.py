"""`steward score`: the learned baseline over ``timestamp,value`` CSV files.

One streaming pass per file, no look-ahead: each row is scored against what came
before it, reported (`report_once`: an anomaly scores high once, at its start) and
then learned, and written out at once as ``timestamp,value,anomaly_score`` with
the score at full precision (NAB sweeps every distinct score as a threshold).

A header row is recognised when its value column is not a number. The timestamp
is ISO 8601 (``2014-07-01 00:00:00``, ``2026-11-01T08:00:00+08:00``...) and is read
as local wall-clock time (its own offset, if any, is kept): the time-of-day
profile follows the clock the series was recorded in. Rows are scored in the
order given (a reading that arrives late is still a reading: it is not refused).
A bad row stops that file with its line number and the field.

This module is the whole command: `steward score` dispatches here before the rest
of the service is imported, so it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from detectors.baseline import Params, Stream, learn_one, report_once, score_one

_EPOCH = dt.datetime(1970, 1, 1)


class ScoreError(ValueError):
    pass


def wall_seconds(text: str) -> float:
    """Seconds since 1970-01-01 of the timestamp's own wall clock (its offset is not applied)."""
    d = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return (d.replace(tzinfo=None) - _EPOCH).total_seconds()


def score_rows(rows: Iterable[list[str]], params: Params | None = None) -> Iterator[tuple[str, str, float]]:
    p = params or Params()
    st = Stream()
    for line, row in enumerate(rows, start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2:
            raise ScoreError(f"line {line}: expected timestamp,value, got {len(row)} field(s)")
        ts, raw = row[0].strip(), row[1].strip()
        try:
            x = float(raw)
        except ValueError:
            if line == 1:
                continue  # the header
            raise ScoreError(f"line {line}: field 'value' is not a number: {raw!r}") from None
        if math.isnan(x) or math.isinf(x):
            raise ScoreError(f"line {line}: field 'value' must be finite, got {raw!r}")
        try:
            t = wall_seconds(ts)
        except ValueError:
            raise ScoreError(f"line {line}: field 'timestamp' is not an ISO 8601 time: {ts!r}") from None
        s = report_once(st, score_one(st, x, t, p), p)
        learn_one(st, x, t, p)
        yield ts, raw, s


def score_stream(src: TextIO, dst: TextIO, params: Params | None = None) -> int:
    writer = csv.writer(dst, lineterminator="\n")
    writer.writerow(("timestamp", "value", "anomaly_score"))
    n = 0
    for ts, raw, s in score_rows(csv.reader(src), params):
        writer.writerow((ts, raw, repr(s)))  # repr: the shortest text that reads back as the same float
        n += 1
    return n


def _inputs(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, its path relative to the argument it came from) for every CSV named or under a folder named."""
    out = []
    for path in paths:
        if path.is_dir():
            found = [Path(d) / f for d, _, files in os.walk(path, followlinks=True) for f in files if f.endswith(".csv")]
            out += [(f, f.relative_to(path)) for f in sorted(found)]
        elif path.is_file():
            out.append((path, Path(path.name)))
        else:
            raise ScoreError(f"{path}: no such file or folder")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="steward score",
        description="Score numeric series (CSV timestamp,value) with the learned baseline: one streaming pass, "
        "no look-ahead; writes timestamp,value,anomaly_score.",
    )
    ap.add_argument("inputs", nargs="+", type=Path, metavar="FILE_OR_FOLDER",
                    help="CSV files, or folders whose *.csv files (recursively) are scored")
    ap.add_argument("-o", "--output", type=Path,
                    help="one input file: the output file (default standard output); several, or a folder: "
                    "the output folder (relative paths are kept)")
    ap.add_argument("--prefix", default="", help="prepended to each output file name (folder output only)")
    args = ap.parse_args(argv)
    p = Params()
    try:
        todo = _inputs(args.inputs)
    except ScoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    single = len(args.inputs) == 1 and args.inputs[0].is_file() and not (args.output and args.output.is_dir())
    if not single and args.output is None:
        print("error: --output: a folder is needed to score several files", file=sys.stderr)
        return 2
    failed = 0
    for src_path, rel in todo:
        try:
            with open(src_path, newline="") as src:
                if single and args.output is None:
                    score_stream(src, sys.stdout, p)
                    continue
                dst_path = args.output if single else args.output / rel.parent / (args.prefix + rel.name)
                os.makedirs(dst_path.parent or ".", exist_ok=True)
                with open(dst_path, "w", newline="") as dst:
                    n = score_stream(src, dst, p)
                print(f"scored {n} values -> {dst_path}", file=sys.stderr)
        except ScoreError as exc:
            print(f"error: {src_path}: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
