"""KPIs over a known data set, against values worked out by hand below."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from alerts import lifecycle
from detectors.store import record_changes
from domain.incidents import Tier
from tests.closedloop.conftest import HOUR, MIN, T0, change
from workorders import kpis, store
from workorders.errors import InvalidInput

DAY = dt.timedelta(days=1)


def run(conn: psycopg.Connection, order_id: int, steps: list[tuple[str, dt.timedelta, dict]]) -> None:
    created = store.get_order(conn, order_id=order_id)
    for action, offset, extra in steps:
        actor = "supervisor" if action in ("verify", "reject", "cancel") else created.assignee or "op1"
        if action == "verify" and created.incident_id is not None:
            extra = {"reason": "checked"} | extra
        store.act(conn, order_id=order_id, action=action, at=created.created_at + offset, actor=actor, **extra)


def make(conn: psycopg.Connection, at: dt.datetime, **kw) -> int:
    args = {"community_id": "c1", "title": "t", "source": "staff", "at": at, "actor": "op1"} | kw
    return store.create_order(conn, **args).id


@pytest.fixture
def dataset(conn: psycopg.Connection) -> psycopg.Connection:
    full = lambda accept, arrive, complete, rating: [  # noqa: E731
        ("accept", accept, {}), ("arrive", arrive, {}), ("complete", complete, {}),
        ("verify", complete, {}), ("return_visit", complete + HOUR, {"rating": rating}), ("close", complete + HOUR, {})]
    # A: Level 1, everything on time, 4 min response, done in 1 h, rated 5.
    a = make(conn, T0, tier=1, device_id="meter-1", condition="leak")
    run(conn, a, full(4 * MIN, 20 * MIN, HOUR, 5))
    # B: Level 2, accepted after 20 min (ack due 15: a breach), done in 3 h, rated 3.
    b = make(conn, T0 + DAY, tier=2, device_id="door-1", condition="door_forced")
    run(conn, b, full(20 * MIN, 25 * MIN, 3 * HOUR, 3))
    # C: Level 3 on lift-1, accepted after 1 h, completed at 10 h, rejected, completed again at 30 h
    # (complete due 24 h: a breach, and not within 24 h), rated 4.
    c = make(conn, T0 + 2 * DAY, tier=3, device_id="lift-1", condition="door_fault")
    run(conn, c, [("accept", HOUR, {}), ("arrive", 2 * HOUR, {}), ("complete", 10 * HOUR, {}),
                  ("reject", 11 * HOUR, {"reason": "door still sticks"}), ("arrive", 12 * HOUR, {}),
                  ("complete", 30 * HOUR, {}), ("verify", 30 * HOUR, {}),
                  ("return_visit", 31 * HOUR, {"rating": 4}), ("close", 31 * HOUR, {})])
    # D: complaint A (respond within 2 h), accepted after 10 min, on site at 1 h, done at 5 h, rated 2.
    d = make(conn, T0 + 3 * DAY, complaint_grade="A", source="complaint", team_kind="security")
    run(conn, d, full(10 * MIN, HOUR, 5 * HOUR, 2))
    # E: cancelled after 1 h, before any deadline.
    e = make(conn, T0 + 4 * DAY, tier=3, device_id="hub-1", condition="inactivity")
    run(conn, e, [("cancel", HOUR, {"reason": "duplicate of a phone call"})])
    # F: lift-1 door fault again (C was completed 2 days 18 h before): a repeat failure;
    # accepted after 30 min, never completed (complete due 24 h: overdue at 'now').
    f = make(conn, T0 + 6 * DAY, tier=3, device_id="lift-1", condition="door_fault")
    run(conn, f, [("accept", 30 * MIN, {})])
    assert store.get_order(conn, order_id=f).repeat_of == c
    # Outside the cohort: created after the period, and another community.
    make(conn, T0 + 8 * DAY, tier=3)
    make(conn, T0 + DAY, tier=3, community_id="c2")
    # Alerts: two opened in c1 within the period, one after it, one in c2 (stored as the detectors do).
    alerts = record_changes(conn, [change("opened", "lift-2", "door_fault", Tier.ROUTINE, T0 + HOUR),
                          change("opened", "meter-1", "night_flow", Tier.URGENT, T0 + 5 * DAY),
                          change("opened", "door-1", "door_held", Tier.ROUTINE, T0 + 9 * DAY),
                          change("opened", "lift-9", "entrapment", Tier.LIFE_SAFETY, T0 + DAY, community="c2")])
    # One of the two in the period was a false alarm.
    lifecycle.resolve(conn, incident_id=alerts[1].incident_id, actor="op1", at=T0 + 5 * DAY + HOUR,
                      false_alarm=True)
    conn.commit()
    return conn


def test_kpis_equal_hand_computed_values(dataset: psycopg.Connection) -> None:
    result = kpis.compute_kpis(dataset, community_id="c1", start=T0, end=T0 + 7 * DAY, now=T0 + 10 * DAY)
    got = {name: (k["value"], k["sample"], k["warning"]) for name, k in result["kpis"].items()}
    # Response times (s) of A, B, C, D, F: 240, 1200, 3600, 600, 1800.
    mean = (240 + 1200 + 3600 + 600 + 1800) / 5  # 1488
    p90 = 1800 + 0.6 * (3600 - 1800)  # position 0.9 * (5 - 1) = 3.6 in [240, 600, 1200, 1800, 3600]
    assert got["response_time_mean_s"] == (pytest.approx(mean), 5, False)
    assert got["response_time_p90_s"] == (pytest.approx(p90), 5, False)
    # Not cancelled: A B C D F, all decided by 'now'; within 24 h: A, B, D.
    assert got["completion_24h_rate"] == (pytest.approx(3 / 5), 5, True)
    # Breaches: B (ack late), C (completed late), F (still not completed); E was cancelled in time.
    assert got["overdue_count"] == (3.0, 6, True)
    # Verified: A B C D; C needed rework.
    assert got["first_time_fix_rate"] == (pytest.approx(3 / 4), 4, True)
    # Fault orders (with a condition, not cancelled): A B C F; F repeats C.
    assert got["repeat_failure_rate"] == (pytest.approx(1 / 4), 4, True)
    assert got["satisfaction"] == (pytest.approx((5 + 3 + 4 + 2) / 4), 4, True)
    # 2 alerts over 5 active devices; threshold 50 per 30 days scaled to 7 days.
    assert got["alerts_per_1000_devices"] == (pytest.approx(400.0), 5, True)
    assert result["kpis"]["alerts_per_1000_devices"]["threshold"] == pytest.approx(50 * 7 / 30)
    assert got["false_alarm_rate"] == (pytest.approx(1 / 2), 2, True)
    assert len(got) == 9
    assert all(k["definition"] for k in result["kpis"].values())


def test_thresholds_follow_the_community_settings(dataset: psycopg.Connection) -> None:
    store.set_policy(dataset, community_id="c1", actor="manager", at=T0,
                     kpi_thresholds={"completion_24h_rate": 0.5, "response_time_mean_s": 1200, "overdue_count": 3})
    got = kpis.compute_kpis(dataset, community_id="c1", start=T0, end=T0 + 7 * DAY, now=T0 + 10 * DAY)["kpis"]
    assert (got["completion_24h_rate"]["warning"], got["response_time_mean_s"]["warning"],
            got["overdue_count"]["warning"]) == (False, True, False)


def test_an_empty_period_has_no_values_and_no_warnings(dataset: psycopg.Connection) -> None:
    got = kpis.compute_kpis(dataset, community_id="c1", start=T0 - 30 * DAY, end=T0, now=T0)["kpis"]
    assert got["response_time_mean_s"]["value"] is None and got["satisfaction"]["value"] is None
    assert got["overdue_count"]["value"] == 0
    assert not any(k["warning"] for k in got.values())


def test_daily_rollup_adds_up_to_the_same_activity(dataset: psycopg.Connection) -> None:
    days = kpis.daily_rollup(dataset, community_id="c1", start=T0 - DAY, end=T0 + 11 * DAY)
    total = {key: sum(d[key] for d in days) for key in days[0] if key not in ("day", "community_id")}
    assert total == {
        "orders_created": 7,  # A-F and the one after the period
        "first_accepts": 5, "response_s_sum": 7440.0,
        "completions": 5, "completions_within_24h": 4,  # C completed twice: at 10 h and 30 h
        "reworks": 1, "verifications": 4, "return_visits": 4, "rating_sum": 14,
        "cancellations": 1, "repeat_failures": 1,
    }
    first = days[0]
    assert (first["day"], first["orders_created"], first["first_accepts"], first["response_s_sum"]) == (
        dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc), 1, 1, 240.0)


def test_bad_periods_are_refused(dataset: psycopg.Connection) -> None:
    with pytest.raises(InvalidInput, match="end: must be after start"):
        kpis.compute_kpis(dataset, community_id="c1", start=T0, end=T0, now=T0)
    with pytest.raises(InvalidInput, match="now: must be a date-time with a time zone"):
        kpis.compute_kpis(dataset, community_id="c1", start=T0, end=T0 + DAY, now=dt.datetime(2026, 11, 2))
