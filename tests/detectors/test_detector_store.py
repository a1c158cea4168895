"""The incident store: one non-resolved row per key, append-only timeline, reopen window;
and the in-memory book that the evaluation uses follows the same rules."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from domain.incidents import IncidentChange, Tier
from detectors.store import IncidentBook, record_changes

T = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.timezone.utc)


def ch(kind: str, minutes: float, tier: int = 2, severity: int = 1, key: str = "m1:continuous_flow") -> IncidentChange:
    scope_id, condition = key.split(":")
    return IncidentChange(kind=kind, dedup_key=key, community_id="c1", scope="device", scope_id=scope_id, condition=condition,
                          tier=Tier(tier), ts=T + dt.timedelta(minutes=minutes), title=f"{condition} {kind}",
                          device_ids=(scope_id,), severity=severity, detail={"building_id": "b1"})


TABLE = [
    ch("opened", 0),
    ch("opened", 0.001),  # a duplicate a millisecond later: folds into the open row
    ch("updated", 30, severity=2),
    ch("escalated", 60, tier=1, severity=2),
    ch("cleared", 90, tier=1),
    ch("cleared", 91),  # nothing open: a no-op
    ch("opened", 110),  # back within 30 minutes: the same incident reopens
    ch("cleared", 120),
    ch("opened", 200),  # back after 80 minutes: a new incident
    ch("opened", 201, key="m2:burst", tier=1),
]
EXPECTED = [  # (incident number, stored kind, reopened)
    (1, "opened", False), (1, "updated", False), (1, "updated", False), (1, "escalated", False), (1, "cleared", False),
    (1, "opened", True), (1, "cleared", False), (2, "opened", False), (3, "opened", False),
]


def test_store_rules(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        stored = record_changes(conn, TABLE)
        ids = {}
        got = [(ids.setdefault(s.incident_id, len(ids) + 1), s.change.kind, s.reopened) for s in stored]
        assert got == EXPECTED
        rows = conn.execute("SELECT dedup_key, status, tier, severity, reopen_count, resolved_by FROM incidents ORDER BY id").fetchall()
        assert rows == [("m1:continuous_flow", "resolved", 2, 1, 1, "detector"), ("m1:continuous_flow", "open", 2, 1, 0, None),
                        ("m2:burst", "open", 1, 1, 0, None)]
        timeline = conn.execute("SELECT kind FROM incident_timeline WHERE incident_id = %s ORDER BY id", (stored[0].incident_id,)).fetchall()
        assert [k for (k,) in timeline] == ["opened", "updated", "updated", "escalated", "cleared", "reopened", "cleared"]


def test_book_follows_the_same_rules() -> None:
    stored = IncidentBook().record(TABLE)
    ids: dict[int, int] = {}
    assert [(ids.setdefault(s.incident_id, len(ids) + 1), s.change.kind, s.reopened) for s in stored] == EXPECTED


def test_one_open_row_per_key_is_enforced_by_the_database(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        record_changes(conn, [ch("opened", 0)])
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO incidents (dedup_key, community_id, scope, scope_id, condition, tier, title, opened_at, updated_at) "
                "VALUES ('m1:continuous_flow', 'c1', 'device', 'm1', 'continuous_flow', 2, 'dup', now(), now())")


def test_timeline_is_append_only(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        record_changes(conn, [ch("opened", 0)])
        conn.commit()
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("UPDATE incident_timeline SET kind = 'x'")
        conn.rollback()
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("DELETE FROM incident_timeline")
