import psycopg

from ingest.migrate import StorageMode, migrate


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
