"""A small community (devices, teams, staff) and helpers to raise incidents as the detectors store them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from ingest.migrate import migrate
from steward.databases import create_database, drop_database, seal_template

from domain.incidents import IncidentChange, StoredChange, Tier

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.timezone.utc)
MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)

DEVICES = [
    ("lift-1", "c1", "elevator", "lift", "b1"),
    ("lift-2", "c1", "elevator", "lift", "b2"),
    ("meter-1", "c1", "water", "meter", "b1"),
    ("door-1", "c1", "access", "entrance", "b1"),
    ("hub-1", "c1", "elderly", "home_hub", "b2"),
    ("lift-9", "c2", "elevator", "lift", "x1"),
]
TEAMS = [("c1-eng", "c1", "engineering"), ("c1-sec", "c1", "security"), ("c1-care", "c1", "elderly_care"),
         ("c2-eng", "c2", "engineering")]
# staff_id, community, team, skills, buildings
STAFF = [
    ("wang", "c1", "c1-eng", ["elevator"], ["b1"]),
    ("li", "c1", "c1-eng", ["water"], []),
    ("zhao", "c1", "c1-eng", ["elevator"], ["b2"]),
    ("sun", "c1", "c1-sec", ["access"], []),
    ("chen", "c1", "c1-care", ["elderly"], []),
    ("zhou", "c2", "c2-eng", ["elevator"], []),
]


def seed(conn: psycopg.Connection) -> None:
    conn.cursor().executemany(
        "INSERT INTO devices (device_id, community_id, device_type, kind, building_id) VALUES (%s, %s, %s, %s, %s)",
        DEVICES)
    conn.cursor().executemany("INSERT INTO teams (team_id, community_id, kind, name) VALUES (%s, %s, %s, %s)",
                              [(t, c, k, t) for t, c, k in TEAMS])
    conn.cursor().executemany(
        "INSERT INTO staff (staff_id, community_id, team_id, name, skills, buildings) VALUES (%s, %s, %s, %s, %s, %s)",
        [(s, c, t, s.title(), sk, b) for s, c, t, sk, b in STAFF])
    conn.commit()


@pytest.fixture(scope="session")
def seeded_template(admin_dsn: str) -> Iterator[str]:
    """One migrated, seeded database per run; each test gets a copy (much faster than migrating each time).
    Sealed (no connections) so that TimescaleDB's scheduler never holds it while it is copied."""
    dsn = create_database(admin_dsn, prefix="steward_closedloop_template")
    migrate(dsn)
    with psycopg.connect(dsn) as connection:
        seed(connection)
    yield seal_template(admin_dsn, dsn)
    drop_database(admin_dsn, dsn)


@pytest.fixture
def conn(admin_dsn: str, seeded_template: str) -> Iterator[psycopg.Connection]:
    dsn = create_database(admin_dsn, prefix="steward_closedloop", template=seeded_template)
    try:
        with psycopg.connect(dsn) as connection:
            yield connection
    finally:
        drop_database(admin_dsn, dsn)


def change(kind: str, device: str, condition: str, tier: Tier, at: dt.datetime, *, community: str = "c1",
           severity: int = 1, work_order: bool = False) -> IncidentChange:
    building = next(d[4] for d in DEVICES if d[0] == device)
    return IncidentChange(kind=kind, dedup_key=f"{device}:{condition}", community_id=community, scope="device",
                          scope_id=device, condition=condition, tier=tier, ts=at, title=f"{condition} on {device}",
                          device_ids=(device,), severity=severity, work_order=work_order,
                          detail={"building_id": building})


def record(conn: psycopg.Connection, changes: list[IncidentChange]) -> list[StoredChange]:
    """What the detector runtime does with a batch: store the changes, run the closed-loop hook, commit."""
    from alerts.hooks import on_incident_changes
    from detectors.store import record_changes

    with conn.transaction():
        stored = record_changes(conn, changes)
        on_incident_changes(conn, stored)
    return stored
