"""Realistic numeric telemetry for the learned-baseline tables: seeded, in local time."""

from __future__ import annotations

import math
import random

from dtables import at

FIVE_MIN = 300.0


def pump_pressure(days: int, seed: int, fault: tuple[float, float] | None = None) -> list[tuple[float, float]]:
    """A building's supply pressure (kPa) every 5 min. The booster pump runs on its daily timer
    (05:30-08:30 and 17:00-21:30) at ~420 kPa; otherwise the mains give ~330 kPa, dipping with demand
    around meals. ``fault``: (start, end) epoch seconds during which the booster does not run
    and a failing valve lets the pressure sag to ~240 kPa."""
    rng = random.Random(seed)
    out = []
    t = at(0, day=0)
    drift = 0.0
    for k in range(int(days * 86400 / FIVE_MIN)):
        ts = t + k * FIVE_MIN
        h = ((ts - at(0)) % 86400) / 3600
        boost = 5.5 <= h < 8.5 or 17.0 <= h < 21.5
        demand = 12 * math.exp(-((h - 7.5) ** 2) / 1.5) + 15 * math.exp(-((h - 19.0) ** 2) / 2.0)
        drift += rng.gauss(0, 0.3) - 0.01 * drift  # mains pressure wanders a little
        p = (420.0 if boost else 330.0) - demand + drift + rng.gauss(0, 2.5)
        if fault and fault[0] <= ts < fault[1]:
            p = 240.0 + rng.gauss(0, 4.0)
        out.append((ts, round(p, 1)))
    return out


def tank_level(days: int, seed: int, leak: tuple[float, float] | None = None,
               erratic_from: float | None = None, erratic_points: float = 25.0) -> list[tuple[float, float]]:
    """A roof tank (%) every 5 min: drawn down by the residents (hardly at night, most at breakfast
    and dinner) and refilled by its pump from 40 % to 90 % at ~6 points a reading. ``leak``: from, points
    lost per reading: a leaking outlet drains the tank that much faster from then on. ``erratic_from``:
    the level probe fails (water in its cable gland) and reads up to ``erratic_points`` off from then on."""
    rng = random.Random(seed)
    out = []
    level, filling = 75.0, False
    for k in range(int(days * 86400 / FIVE_MIN)):
        ts = at(0) + k * FIVE_MIN
        h = (k * FIVE_MIN % 86400) / 3600
        use = 0.15 + 1.4 * math.exp(-((h - 7.5) ** 2) / 2) + 1.6 * math.exp(-((h - 19.5) ** 2) / 3) + 0.4 * (8 < h < 22)
        level -= max(0.0, use * rng.uniform(0.6, 1.4))
        if leak and ts >= leak[0]:
            level -= leak[1]
        if level <= 40.0:
            filling = True
        if filling:
            level += 6.0
            if level >= 90.0:
                filling = False
        level = min(100.0, max(0.0, level))
        noise = rng.uniform(-erratic_points, erratic_points) if erratic_from is not None and ts >= erratic_from else rng.gauss(0, 0.3)
        out.append((ts, round(min(100.0, max(0.0, level + noise)), 1)))
    return out


def lift_load(days: int, seed: int, sensor_offset: tuple[float, float] | None = None) -> list[tuple[float, float]]:
    """A lift's load (% of rated) on each status report, one every 5 min: people ride in the morning
    rush (07:00-09:00) and evening (17:30-20:00), few at night; an empty car reads ~0.
    ``sensor_offset``: from, offset: a load cell that drifted reads that much more from then on."""
    rng = random.Random(seed)
    out = []
    for k in range(int(days * 86400 / FIVE_MIN)):
        ts = at(0) + k * FIVE_MIN
        h = (k * FIVE_MIN % 86400) / 3600
        busy = 0.05 + 0.8 * math.exp(-((h - 8.0) ** 2) / 0.8) + 0.7 * math.exp(-((h - 18.5) ** 2) / 1.2) + 0.25 * (7 < h < 23)
        riders = sum(1 for _ in range(6) if rng.random() < busy / 2)
        load = riders * rng.uniform(8.0, 13.0) + abs(rng.gauss(0, 0.6))
        if sensor_offset and ts >= sensor_offset[0]:
            load += sensor_offset[1]
        out.append((ts, round(load, 1)))
    return out
