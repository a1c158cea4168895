"""Closed-loop KPIs per community and period, each with a warning threshold.

The period is a cohort: work orders *created* in ``[start, end)`` (alerts:
incidents *opened* in it). Values are computed in SQL from stored times with
``now`` passed in, so they do not depend on when or where they run.
Definitions are in ``DEFINITIONS`` and the README.

``daily_rollup`` reads ``work_order_daily`` (a TimescaleDB continuous
aggregate, or a plain view) for trend charts by day of activity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from workorders.errors import InvalidInput
from workorders.store import load_kpi_overrides


class Threshold(msgspec.Struct, frozen=True, kw_only=True):
    value: float
    warn_when: str  # "above" or "below"

    def breached(self, observed: float | None) -> bool:
        if observed is None:
            return False
        return observed > self.value if self.warn_when == "above" else observed < self.value


DEFAULT_THRESHOLDS: Mapping[str, Threshold] = {
    "response_time_mean_s": Threshold(value=30 * 60, warn_when="above"),  # the norm is 30 min, best practice 3
    "response_time_p90_s": Threshold(value=60 * 60, warn_when="above"),
    "completion_24h_rate": Threshold(value=0.90, warn_when="below"),
    "overdue_count": Threshold(value=0, warn_when="above"),
    "first_time_fix_rate": Threshold(value=0.90, warn_when="below"),
    "repeat_failure_rate": Threshold(value=0.05, warn_when="above"),
    "satisfaction": Threshold(value=4.0, warn_when="below"),
    # Per 30 days; scaled to the period's length when compared.
    "alerts_per_1000_devices": Threshold(value=50.0, warn_when="above"),
    "false_alarm_rate": Threshold(value=0.10, warn_when="above"),
}

DEFINITIONS: Mapping[str, str] = {
    "response_time_mean_s": "mean seconds from an order's creation to its first acceptance by the assignee, "
                            "over orders created in the period and accepted",
    "response_time_p90_s": "90th percentile (continuous) of the same response times",
    "completion_24h_rate": "share of orders created in the period (not cancelled) completed within 24 h of creation; "
                           "orders younger than 24 h at 'now' and not yet completed are left out",
    "overdue_count": "orders created in the period with at least one SLA clock breached as of 'now' "
                     "(milestone met after its deadline, or still unmet past it)",
    "first_time_fix_rate": "share of orders created in the period and verified that needed no rework "
                           "(never rejected at verification)",
    "repeat_failure_rate": "share of fault orders (with a condition) created in the period that repeat a failure: "
                           "same device (or building) and condition within the repeat window (default 7 days)",
    "satisfaction": "mean return-visit rating (1-5) of orders created in the period",
    "alerts_per_1000_devices": "incidents opened in the period per 1,000 active devices of the community; "
                               "the threshold is per 30 days and scaled to the period",
    "false_alarm_rate": "share of incidents opened in the period that staff resolved as a false alarm",
}

UNITS: Mapping[str, str] = {
    "response_time_mean_s": "s", "response_time_p90_s": "s", "completion_24h_rate": "ratio",
    "overdue_count": "orders", "first_time_fix_rate": "ratio", "repeat_failure_rate": "ratio",
    "satisfaction": "rating", "alerts_per_1000_devices": "alerts per 1,000 devices", "false_alarm_rate": "ratio",
}


def thresholds_from_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Threshold]:
    """Defaults with a community's overrides: ``{"completion_24h_rate": 0.95, ...}`` (numbers only)."""
    out = dict(DEFAULT_THRESHOLDS)
    if overrides is None:
        return out
    if not isinstance(overrides, Mapping):
        raise InvalidInput("kpi_thresholds", "must be a JSON object of KPI name to number")
    for key, value in overrides.items():
        field = f"kpi_thresholds.{key}"
        if key not in DEFAULT_THRESHOLDS:
            raise InvalidInput(field, f"unknown KPI; known: {', '.join(DEFAULT_THRESHOLDS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InvalidInput(field, f"must be a number ≥ 0, got {value!r}")
        if key.endswith("_rate") and value > 1:
            raise InvalidInput(field, f"is a ratio: must be from 0 to 1, got {value!r}")
        if key == "satisfaction" and not 1 <= value <= 5:
            raise InvalidInput(field, f"is a 1-5 rating: got {value!r}")
        out[key] = msgspec.structs.replace(out[key], value=float(value))
    return out


_COHORT_SQL = """
WITH cohort AS (
    SELECT * FROM work_orders WHERE community_id = %(c)s AND created_at >= %(start)s AND created_at < %(end)s
), live AS (
    SELECT * FROM cohort WHERE state <> 'cancelled'
)
SELECT
    (SELECT avg(extract(epoch FROM accepted_at - created_at)) FROM cohort WHERE accepted_at IS NOT NULL)
        AS response_mean,
    (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM accepted_at - created_at))
       FROM cohort WHERE accepted_at IS NOT NULL) AS response_p90,
    (SELECT count(*) FROM cohort WHERE accepted_at IS NOT NULL) AS response_n,
    (SELECT count(*) FILTER (WHERE completed_at IS NOT NULL AND completed_at <= created_at + interval '24 hours')
       FROM live WHERE completed_at IS NOT NULL OR created_at + interval '24 hours' <= %(now)s) AS done_24h,
    (SELECT count(*) FROM live WHERE completed_at IS NOT NULL OR created_at + interval '24 hours' <= %(now)s)
        AS decided_24h,
    (SELECT count(*) FROM cohort
      WHERE (ack_due_at IS NOT NULL AND coalesce(accepted_at, least(%(now)s, coalesce(cancelled_at, %(now)s))) > ack_due_at)
         OR (respond_due_at IS NOT NULL AND coalesce(on_site_at, least(%(now)s, coalesce(cancelled_at, %(now)s))) > respond_due_at)
         OR (complete_due_at IS NOT NULL AND coalesce(completed_at, least(%(now)s, coalesce(cancelled_at, %(now)s))) > complete_due_at)
    ) AS overdue,
    (SELECT count(*) FROM cohort) AS orders,
    (SELECT count(*) FILTER (WHERE rework_count = 0) FROM cohort WHERE verified_at IS NOT NULL) AS fixed_first,
    (SELECT count(*) FROM cohort WHERE verified_at IS NOT NULL) AS verified,
    (SELECT count(*) FILTER (WHERE repeat_of IS NOT NULL) FROM live WHERE condition IS NOT NULL) AS repeats,
    (SELECT count(*) FROM live WHERE condition IS NOT NULL) AS fault_orders,
    (SELECT avg(rating) FROM cohort WHERE rating IS NOT NULL) AS rating_mean,
    (SELECT count(*) FROM cohort WHERE rating IS NOT NULL) AS ratings,
    (SELECT count(*) FROM incidents WHERE community_id = %(c)s AND opened_at >= %(start)s AND opened_at < %(end)s)
        AS alerts,
    (SELECT count(*) FROM incidents WHERE community_id = %(c)s AND opened_at >= %(start)s AND opened_at < %(end)s
        AND false_alarm) AS false_alarms,
    (SELECT count(*) FROM devices WHERE community_id = %(c)s AND status = 'active') AS devices
"""


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def compute_kpis(
    conn: psycopg.Connection, *, community_id: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    """Every KPI of one community over ``[start, end)`` as of ``now``.

    Returns ``{"community_id", "start", "end", "now", "kpis": {name: {"value", "unit",
    "definition", "threshold", "warn_when", "warning", "sample"}}}``; a KPI
    with no sample has value None and no warning.
    """
    for name, value in (("start", start), ("end", end), ("now", now)):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise InvalidInput(name, "must be a date-time with a time zone")
    if end <= start:
        raise InvalidInput("end", "must be after start")
    if not isinstance(community_id, str) or not community_id:
        raise InvalidInput("community_id", "must not be empty")
    thresholds = thresholds_from_overrides(load_kpi_overrides(conn, community_id))
    with conn.cursor(row_factory=dict_row) as cur:
        r = cur.execute(_COHORT_SQL, {"c": community_id, "start": start, "end": end, "now": now}).fetchone()
    assert r is not None
    period_days = (end - start) / dt.timedelta(days=1)
    values: dict[str, tuple[float | None, int]] = {
        "response_time_mean_s": (None if r["response_mean"] is None else float(r["response_mean"]), r["response_n"]),
        "response_time_p90_s": (None if r["response_p90"] is None else float(r["response_p90"]), r["response_n"]),
        "completion_24h_rate": (_ratio(r["done_24h"], r["decided_24h"]), r["decided_24h"]),
        "overdue_count": (float(r["overdue"]), r["orders"]),
        "first_time_fix_rate": (_ratio(r["fixed_first"], r["verified"]), r["verified"]),
        "repeat_failure_rate": (_ratio(r["repeats"], r["fault_orders"]), r["fault_orders"]),
        "satisfaction": (None if r["rating_mean"] is None else float(r["rating_mean"]), r["ratings"]),
        "alerts_per_1000_devices": (None if not r["devices"] else r["alerts"] * 1000 / r["devices"], r["devices"]),
        "false_alarm_rate": (_ratio(r["false_alarms"], r["alerts"]), r["alerts"]),
    }
    kpis = {}
    for name, (value, sample) in values.items():
        threshold = thresholds[name]
        if name == "alerts_per_1000_devices":
            threshold = msgspec.structs.replace(threshold, value=threshold.value * period_days / 30)
        kpis[name] = {
            "value": value,
            "unit": UNITS[name],
            "definition": DEFINITIONS[name],
            "threshold": float(threshold.value),
            "warn_when": threshold.warn_when,
            "warning": threshold.breached(value),
            "sample": sample,
        }
    return {"community_id": community_id, "start": start, "end": end, "now": now, "kpis": kpis}


def daily_rollup(
    conn: psycopg.Connection, *, community_id: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Per-day activity (UTC days) from ``work_order_daily``: orders created, first
    acceptances and their summed response seconds, completions (and within 24 h),
    reworks, verifications, return visits and their rating sum, cancellations,
    repeat failures."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM work_order_daily WHERE community_id = %s AND day >= %s AND day < %s ORDER BY day",
            (community_id, start, end),
        ).fetchall()
