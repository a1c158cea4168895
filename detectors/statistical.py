"""The generic statistical detector for any numeric telemetry stream.

Streaming and without look-ahead: each value is scored against what came before
it, then learned. The baseline is an exponentially weighted mean and mean
absolute deviation (a robust scale: one outlier moves it by a bounded amount
because the value learned is winsorised to ``clip`` deviations). The score is

    z = |x - mean| / (1.2533 * mad)          (1.2533 * MAD ~ sigma for normal data)
    score = 0 if z <= z0 else 1 - (z0 / z) ** 2     in [0, 1)

and is 0 during the warm-up (``grace`` values). Scoring and deciding are
separate: `Anomalies` turns scores into incident decisions (``k`` of the last
values above ``threshold``). State is five floats per stream.
"""

from __future__ import annotations

import math

import msgspec


class StreamStats(msgspec.Struct, array_like=True):
    n: int = 0
    mean: float = 0.0
    mad: float = 0.0
    last: float = 0.0
    hot: int = 0  # consecutive scores above the decision threshold


class Params(msgspec.Struct, frozen=True, kw_only=True):
    alpha: float = 0.02  # ~50-value memory
    grace: int = 30
    z0: float = 4.0
    clip: float = 4.0
    threshold: float = 0.8  # decision: score above this...
    k: int = 3  # ...for this many consecutive values


def score_one(st: StreamStats, x: float, p: Params) -> float:
    """Score ``x`` against the baseline learned so far (does not learn)."""
    if st.n < p.grace:
        return 0.0
    scale = max(1.2533 * st.mad, 1e-9 * max(1.0, abs(st.mean)), 1e-12)
    z = abs(x - st.mean) / scale
    if z <= p.z0 or math.isnan(z):
        return 0.0
    return min(1.0, 1.0 - (p.z0 / z) ** 2)


def learn_one(st: StreamStats, x: float, p: Params) -> StreamStats:
    st.n += 1
    if st.n == 1:
        st.mean, st.mad = x, 0.0
    else:
        a = max(p.alpha, 1.0 / st.n)
        bound = p.clip * max(1.2533 * st.mad, 1e-12) if st.n > p.grace else math.inf
        dev = max(-bound, min(bound, x - st.mean))
        st.mean += a * dev
        st.mad += a * (abs(dev) - st.mad)
    st.last = x
    return st


def step(st: StreamStats, x: float, p: Params) -> tuple[StreamStats, float, bool]:
    """Score, decide, learn: returns (state, score, anomalous-now)."""
    s = score_one(st, x, p)
    st.hot = st.hot + 1 if s >= p.threshold else 0
    learn_one(st, x, p)
    return st, s, st.hot >= p.k
