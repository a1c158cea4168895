"""Simulated time: epoch milliseconds, community-local days and daily traffic profiles.

Actors plan their day in *local* milliseconds (UTC + the community's offset) so
that "07:30" means half past seven where the residents live; records are
converted to UTC epoch milliseconds when they leave the actor.
"""

from __future__ import annotations

import datetime as dt
import math
import random

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
UTC = dt.UTC


def to_ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        raise ValueError(f"{when!r} has no UTC offset")
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso(ms: int) -> str:
    return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def weekday(day: int) -> int:
    """Monday = 0 for an absolute local day number (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


def is_weekend(day: int) -> bool:
    return weekday(day) >= 5


def day_rng(seed: int, key: str, day: int) -> random.Random:
    """An RNG for one actor and one day: any day can be generated on its own."""
    return random.Random(f"{seed}:{key}:{day}")


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def hourly_times(rng: random.Random, day_start: int, rates: list[float], scale: float) -> list[int]:
    """Event times of an inhomogeneous Poisson process with a per-hour rate."""
    out: list[int] = []
    for h, rate in enumerate(rates):
        n = poisson(rng, rate * scale)
        base = day_start + h * HOUR
        out.extend(base + int(rng.random() * HOUR) for _ in range(n))
    out.sort()
    return out


# Lift trips per unit served per hour (people leave 07-09, come back 17-20).
LIFT_WEEKDAY = [0.03, 0.02, 0.01, 0.01, 0.01, 0.05, 0.25, 0.55, 0.45, 0.2, 0.15, 0.18,
                0.22, 0.15, 0.12, 0.15, 0.22, 0.4, 0.5, 0.35, 0.25, 0.18, 0.1, 0.05]
LIFT_WEEKEND = [0.05, 0.03, 0.01, 0.01, 0.01, 0.02, 0.06, 0.15, 0.25, 0.35, 0.35, 0.3,
                0.28, 0.22, 0.25, 0.28, 0.3, 0.32, 0.35, 0.3, 0.25, 0.2, 0.12, 0.07]
# Household water draws (taps, flushes, showers...) per occupant per hour.
WATER_WEEKDAY = [0.08, 0.04, 0.03, 0.03, 0.06, 0.3, 1.5, 1.9, 1.1, 0.6, 0.5, 0.8,
                 1.0, 0.6, 0.4, 0.4, 0.5, 0.9, 1.4, 1.5, 1.4, 1.1, 0.6, 0.25]
WATER_WEEKEND = [0.12, 0.06, 0.03, 0.03, 0.04, 0.1, 0.5, 1.0, 1.4, 1.3, 1.0, 1.0,
                 1.1, 0.8, 0.6, 0.6, 0.7, 0.9, 1.3, 1.4, 1.4, 1.2, 0.8, 0.35]
# Passages through a building entrance per unit per hour: a quiet night from 02:00 to 05:00.
ACCESS_WEEKDAY = [0.04, 0.01, 0.0, 0.0, 0.0, 0.04, 0.3, 0.5, 0.4, 0.22, 0.2, 0.2,
                  0.25, 0.2, 0.2, 0.2, 0.25, 0.45, 0.5, 0.4, 0.3, 0.2, 0.1, 0.06]
ACCESS_WEEKEND = [0.06, 0.02, 0.0, 0.0, 0.0, 0.01, 0.08, 0.2, 0.3, 0.35, 0.35, 0.3,
                  0.3, 0.28, 0.3, 0.32, 0.35, 0.35, 0.35, 0.3, 0.3, 0.25, 0.15, 0.08]


def demand(profile: list[float], local_ms_in_day: int) -> float:
    """The profile at a time of day, linearly interpolated and scaled to 0..1 of its peak."""
    hour = (local_ms_in_day % DAY) / HOUR
    h0 = int(hour) % 24
    h1 = (h0 + 1) % 24
    frac = hour - int(hour)
    peak = max(profile)
    return (profile[h0] * (1 - frac) + profile[h1] * frac) / peak
