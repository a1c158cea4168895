"""`steward score`: the generic statistical detector over a ``timestamp,value`` CSV.

One streaming pass, no look-ahead: each row is scored against what came before
it and then learned, and written out at once (``timestamp,value,anomaly_score``,
score in [0, 1]). A header row is recognised when its value column is not a
number. Rows must be in time order (not checked: the timestamp is passed through
as text); a bad value stops with the line number and the field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from typing import TextIO

from detectors.statistical import Params, StreamStats, score_one, learn_one


class ScoreError(ValueError):
    pass


def score_rows(rows: Iterable[list[str]], params: Params | None = None) -> Iterator[tuple[str, str, float]]:
    p = params or Params()
    st = StreamStats()
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
        s = score_one(st, x, p)
        learn_one(st, x, p)
        yield ts, raw, s


def score_stream(src: TextIO, dst: TextIO, params: Params | None = None) -> int:
    writer = csv.writer(dst, lineterminator="\n")
    writer.writerow(("timestamp", "value", "anomaly_score"))
    n = 0
    for ts, raw, s in score_rows(csv.reader(src), params):
        writer.writerow((ts, raw, f"{s:.4f}"))
        n += 1
    return n
