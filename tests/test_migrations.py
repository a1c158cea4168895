import psycopg

from ingest.migrate import MIGRATIONS_DIR, StorageMode, migrate


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
