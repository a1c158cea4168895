import datetime as dt
import json

import psycopg
import pytest

from api.store.telemetry import series
from domain.events import Event
from gateway.validate import Limits, validate_message
from ingest import writer
from ingest.migrate import MIGRATIONS_DIR, StorageMode, current_mode, migrate


def test_migrate_is_idempotent_and_records_versions(empty_database: str) -> None:
    mode, first = migrate(empty_database)
    again_mode, second = migrate(empty_database)
    assert mode == again_mode
    assert first and second == []
    with psycopg.connect(empty_database) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert versions == sorted(first)
    assert {"devices", "events", "dead_letters"} <= tables
    assert "0001_foundation.sql" in versions
    expected_rollup = "0002_events_5m.timescale.sql" if mode is StorageMode.TIMESCALE else "0002_events_5m.plain.sql"
    assert expected_rollup in versions


def test_plain_mode_can_be_forced(empty_database: str) -> None:
    mode, _ = migrate(empty_database, requested_mode="plain")
    assert mode is StorageMode.PLAIN


_ID_COLLATIONS = (
    "SELECT attname, collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
    "WHERE attrelid = 'events'::regclass AND attname IN ('community_id', 'device_id', 'msg_id') ORDER BY attname"
)


def test_event_ids_compare_bytewise_and_older_databases_are_brought_in_line(empty_database: str) -> None:
    migrate(empty_database, requested_mode="plain")
    with psycopg.connect(empty_database) as conn:
        assert conn.execute(_ID_COLLATIONS).fetchall() == [("community_id", "C"), ("device_id", "C"), ("msg_id", "C")]
        # A database from before: the ids in the locale's collation, rows in events, 0003 not applied.
        conn.execute("DROP VIEW events_5m")
        for column in ("community_id", "device_id", "msg_id"):
            conn.execute(f'ALTER TABLE events ALTER COLUMN {column} TYPE text COLLATE "default"')
        conn.execute((MIGRATIONS_DIR / "0002_events_5m.plain.sql").read_text())
        conn.execute("DELETE FROM schema_migrations WHERE version = '0003_events_bytewise_ids.plain.sql'")
        conn.execute(
            "INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type, msg_id, value,"
            " fields) VALUES (now(), now(), 'c1', 'Lift-b', 'elevator', 'telemetry', 'status', 'a', 1.5, '{}'),"
            " (now(), now(), 'c1', 'lift-a', 'elevator', 'telemetry', 'status', 'b', 2.5, '{}')"
        )
        conn.commit()
    _, applied = migrate(empty_database)
    assert applied == ["0003_events_bytewise_ids.plain.sql"]
    with psycopg.connect(empty_database) as conn:
        assert conn.execute(_ID_COLLATIONS).fetchall() == [("community_id", "C"), ("device_id", "C"), ("msg_id", "C")]
        # The rows are kept and the roll-up view, created again, still reads them.
        assert conn.execute("SELECT device_id, events FROM events_5m ORDER BY device_id").fetchall() == [
            ("Lift-b", 1),
            ("lift-a", 1),
        ]


_FIELDS_TYPE = (
    "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname = 'fields'"
)


def _lift_events(start: dt.datetime, n: int) -> list[Event]:
    """n status messages a minute apart from one lift: floor i % 7, moving on odd minutes."""
    out = []
    for i in range(n):
        payload = {
            "id": f"m{start.minute}-{i}",
            "ts": (start + dt.timedelta(minutes=i)).isoformat(),
            "type": "status",
            "floor": i % 7,
            "moving": i % 2 == 1,
            "door": "closed",
            "door_zone": True,
            "occupied": False,
        }
        event = validate_message(
            "community/c1/elevator/lift-1/telemetry",
            json.dumps(payload).encode(),
            start + dt.timedelta(days=1),
            Limits(),
        )
        assert isinstance(event, Event)
        out.append(event)
    return out


def _series(conn: psycopg.Connection, field: str, start: dt.datetime) -> list[tuple]:
    found = series(
        conn,
        mode=StorageMode.PLAIN,
        device_id="lift-1",
        field=field,
        bucket=dt.timedelta(minutes=10),
        since=start,
        until=start + dt.timedelta(hours=1),
    )
    assert (found.stream, found.type) == ("telemetry", "status")
    return [(p.bucket, p.count, p.min, p.max, p.avg) for p in found.points]


def test_fields_are_json_and_an_older_jsonb_database_keeps_its_rows_and_answers(empty_database: str) -> None:
    start = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc)
    migrate(empty_database, requested_mode="plain")
    with psycopg.connect(empty_database) as conn:
        assert conn.execute(_FIELDS_TYPE).fetchone() == ("json",)
        # A database from before (or a TimescaleDB one that keeps jsonb): fields in jsonb, 0004 not applied.
        conn.execute("ALTER TABLE events ALTER COLUMN fields TYPE jsonb USING fields::jsonb")
        conn.execute("DELETE FROM schema_migrations WHERE version = '0004_events_fields_json.plain.sql'")
        conn.commit()
        # The writer finds jsonb and sends jsonb's binary format.
        table = writer.prepare(conn)
        with conn.transaction():
            writer.write_batch(conn, table, _lift_events(start, 30), [])
        floors_before = _series(conn, "floor", start)
        moving_before = _series(conn, "moving", start)
        fields_before = conn.execute("SELECT msg_id, fields FROM events ORDER BY msg_id").fetchall()
    # floors 0..6 repeating; moving counts as 1 on odd minutes: the first 10 minutes average 0.5
    assert floors_before[0] == (start, 10, 0.0, 6.0, pytest.approx(sum(i % 7 for i in range(10)) / 10))
    assert moving_before[0] == (start, 10, 0.0, 1.0, 0.5)
    assert len(floors_before) == len(moving_before) == 3
    assert fields_before[0][1]["door"] == "closed" and "id" not in fields_before[0][1]

    _, applied = migrate(empty_database)
    assert applied == ["0004_events_fields_json.plain.sql"]
    with psycopg.connect(empty_database) as conn:
        assert conn.execute(_FIELDS_TYPE).fetchone() == ("json",)
        # The same rows, fields and series from json; the roll-up view still reads the table.
        assert conn.execute("SELECT msg_id, fields FROM events ORDER BY msg_id").fetchall() == fields_before
        assert _series(conn, "floor", start) == floors_before
        assert _series(conn, "moving", start) == moving_before
        assert conn.execute("SELECT sum(events) FROM events_5m").fetchone() == (30,)
        # And the writer now sends json's.
        table = writer.prepare(conn)
        with conn.transaction():
            writer.write_batch(conn, table, _lift_events(start + dt.timedelta(minutes=30), 30), [])
        assert _series(conn, "floor", start)[3][1] == 10
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (60,)


def test_events_indexes_in_each_mode(database_url: str) -> None:
    """The three indexes of both modes, and in TimescaleDB mode a BRIN index on time in place
    of TimescaleDB's default btree (events_time_idx), which drew the detectors' replay
    into reading whole chunks by time (see 0007)."""
    with psycopg.connect(database_url) as conn:
        mode = current_mode(conn)
        indexes = {
            name: method
            for name, method in conn.execute(
                "SELECT c.relname, a.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'events'::regclass"
            )
        }
    expected = {"events_device_time_msg": "btree", "events_community_time": "btree", "events_received_brin": "brin"}
    if mode is StorageMode.TIMESCALE:
        expected["events_time_brin"] = "brin"
    assert indexes == expected
