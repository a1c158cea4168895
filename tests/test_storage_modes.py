"""Storage modes: chosen when a database is created, recorded, never switched silently;
both give the same answers. Tests marked ``timescale`` run when TEST_DATABASE_URL points
at a server with the extension (it is not packaged for the machines this project is
developed on); otherwise they are reported as skipped, never as passed."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import psycopg
import pytest
from storage_samples import flow_events, rollups, store

from ingest.migrate import MIGRATIONS_DIR, migrate
from ingest.modes import (
    CONVERT_COMMAND,
    ServerTimescale,
    StorageMode,
    StorageModeError,
    current_mode,
    decide,
    infer_unrecorded,
    preloads_timescaledb,
    probe_server,
    read_record,
)
from steward.databases import create_database, drop_database

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_plain_rollups_match_a_hand_computed_bucket(empty_database: str) -> None:
    assert migrate(empty_database, requested_mode="plain")[0] is StorageMode.PLAIN
    store(empty_database, flow_events(T0, 600))
    rows = rollups(empty_database)
    # 600 events 7 s apart over 3 devices: 70 minutes -> 14 five-minute buckets per device.
    assert len(rows) == 14 * 3
    first = rows[0]
    assert first[0] == T0 and first[1] == "wm0"
    # wm0 gets i = 0, 3, 6, ... with 7*i < 300 s -> i in 0..42 step 3 (15 events)
    values = [i % 17 / 2 for i in range(0, 43, 3)]
    assert first[3] == len(values) and first[7] == pytest.approx(sum(values))
    assert sum(r[3] for r in rows) == 600


def has_timescaledb(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def assert_no_hypertable(conn: psycopg.Connection) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        assert conn.execute("SELECT count(*) FROM timescaledb_information.hypertables").fetchone() == (0,)


def test_a_new_database_records_its_mode_and_never_switches_it(empty_database: str) -> None:
    # A server whose template1 has TimescaleDB (as its Docker image sets up) gives every new
    # database the extension: plain mode leaves it there, unused, and never creates it.
    inherited = has_timescaledb(empty_database)
    assert migrate(empty_database, requested_mode="plain")[0] is StorageMode.PLAIN
    with psycopg.connect(empty_database) as conn:
        record = read_record(conn)
        assert record is not None and (record.mode, record.how, record.pending) == (StorageMode.PLAIN, "created", ())
    # Asking for TimescaleDB later is an error that names the conversion command, not a switch.
    with pytest.raises(StorageModeError, match=CONVERT_COMMAND):
        migrate(empty_database, requested_mode="timescale")
    assert migrate(empty_database, requested_mode="auto") == (StorageMode.PLAIN, [])
    with psycopg.connect(empty_database) as conn:
        assert current_mode(conn) is StorageMode.PLAIN
        assert conn.execute("SELECT count(*) FROM storage_mode").fetchone() == (1,)
        assert_no_hypertable(conn)
    assert has_timescaledb(empty_database) is inherited
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'events_5m'").fetchone() == ("v",)


def test_a_database_from_before_the_record_keeps_the_mode_it_was_created_in(empty_database: str) -> None:
    migrate(empty_database, requested_mode="plain")
    with psycopg.connect(empty_database) as conn:
        conn.execute("DROP TABLE storage_mode")  # what a database migrated by an older Steward looks like
        conn.commit()
        assert read_record(conn) is None and current_mode(conn) is StorageMode.PLAIN
    assert migrate(empty_database, requested_mode="auto") == (StorageMode.PLAIN, [])
    with psycopg.connect(empty_database) as conn:
        record = read_record(conn)
        assert record is not None and (record.mode, record.how) == (StorageMode.PLAIN, "inferred")


def test_which_migration_tells_an_unrecorded_database_its_mode(empty_database: str) -> None:
    with psycopg.connect(empty_database, autocommit=True) as conn:
        assert infer_unrecorded(conn) is None  # nothing migrated: a new database
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY, mode text NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES ('0001_foundation.sql', 'timescale')")
        assert infer_unrecorded(conn) is None
        # A database the old `auto` half converted still has the plain roll-up recorded: plain.
        conn.execute("INSERT INTO schema_migrations VALUES ('0002_events_5m.plain.sql', 'plain')")
        assert infer_unrecorded(conn) is StorageMode.PLAIN
        conn.execute("DELETE FROM schema_migrations WHERE version = '0002_events_5m.plain.sql'")
        conn.execute("INSERT INTO schema_migrations VALUES ('0002_events_5m.timescale.sql', 'timescale')")
        assert infer_unrecorded(conn) is StorageMode.TIMESCALE


AVAILABLE = ServerTimescale(available=True, preloaded=True)
NOT_PRELOADED = ServerTimescale(available=True, preloaded=False)
ABSENT = ServerTimescale(available=False, preloaded=False)


def test_the_mode_of_a_new_database() -> None:
    assert decide("auto", AVAILABLE) == (StorageMode.TIMESCALE, None)
    assert decide("auto", ABSENT) == (StorageMode.PLAIN, None)
    assert decide("plain", AVAILABLE) == (StorageMode.PLAIN, None)
    assert decide("timescale", AVAILABLE) == (StorageMode.TIMESCALE, None)
    with pytest.raises(StorageModeError, match="no timescaledb extension"):
        decide("timescale", ABSENT)
    # Installed but not preloaded: CREATE EXTENSION would fail (FATAL). auto settles for
    # plain and says why and how to fix it; timescale fails with the same explanation.
    mode, warning = decide("auto", NOT_PRELOADED)
    assert mode is StorageMode.PLAIN and warning is not None
    assert "shared_preload_libraries" in warning and CONVERT_COMMAND in warning
    with pytest.raises(StorageModeError, match="shared_preload_libraries") as refused:
        decide("timescale", NOT_PRELOADED)
    assert str(refused.value).removeprefix("storage_mode=timescale but ") in warning


@pytest.mark.parametrize(("setting", "preloaded"), [
    ("timescaledb", True),
    ("pg_stat_statements, timescaledb", True),
    ('"$libdir/timescaledb"', True),
    ("timescaledb.so,auto_explain", True),
    ("", False),
    ("pg_stat_statements", False),
    ("timescaledb_toolkit", False),
])
def test_shared_preload_libraries_is_read_item_by_item(setting: str, preloaded: bool) -> None:
    assert preloads_timescaledb(setting) is preloaded


def test_the_server_probe_tells_what_this_server_offers(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        server = probe_server(conn)
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        (libraries,) = conn.execute("SHOW shared_preload_libraries").fetchone()  # type: ignore[misc]
    assert server.available is (available is not None)
    assert server.preloaded is (server.available and "timescaledb" in libraries)


def test_a_migration_that_kills_its_connection_is_reported_with_its_own_error(
        empty_database: str, tmp_path: Path) -> None:
    """TimescaleDB's "must be preloaded" is FATAL: the connection is gone. The first error must
    surface, not the advisory unlock's "the connection is closed" that used to replace it."""
    for name in ("0001_foundation.sql", "0002_events_5m.plain.sql"):
        (tmp_path / name).write_text((MIGRATIONS_DIR / name).read_text())
    (tmp_path / "0003_dies.sql").write_text("SELECT pg_terminate_backend(pg_backend_pid());")
    with pytest.raises(psycopg.OperationalError) as failure:
        migrate(empty_database, requested_mode="plain", directory=tmp_path)
    assert "terminating connection due to administrator command" in str(failure.value)
    assert "connection is closed" not in str(failure.value)
    # The lock went with the session: the next start is not blocked by it.
    (tmp_path / "0003_dies.sql").unlink()
    assert migrate(empty_database, requested_mode="plain", directory=tmp_path)[1] == []


@pytest.mark.timescale
def test_a_server_with_timescaledb_installed_but_not_preloaded(
        empty_database: str, timescale_offer: ServerTimescale, caplog: pytest.LogCaptureFixture) -> None:
    """Runs against such a server (TEST_DATABASE_URL without timescaledb in its
    shared_preload_libraries): CREATE EXTENSION would end the connection there (FATAL)."""
    if not (timescale_offer.available and not timescale_offer.preloaded):
        pytest.skip("TEST_DATABASE_URL is not a server with TimescaleDB installed but not preloaded")
    with pytest.raises(StorageModeError, match="shared_preload_libraries"):
        migrate(empty_database, requested_mode="timescale")
    with caplog.at_level(logging.WARNING, logger="ingest.migrate"):
        assert migrate(empty_database, requested_mode="auto")[0] is StorageMode.PLAIN
    assert any("shared_preload_libraries" in r.getMessage() for r in caplog.records)
    with psycopg.connect(empty_database) as conn:
        assert read_record(conn).mode is StorageMode.PLAIN  # type: ignore[union-attr]
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None


@pytest.mark.timescale
def test_auto_keeps_a_plain_database_plain_on_a_timescale_server(
        empty_database: str, server_has_timescale: bool, caplog: pytest.LogCaptureFixture) -> None:
    if not server_has_timescale:
        pytest.skip("TEST_DATABASE_URL has no timescaledb extension")
    inherited = has_timescaledb(empty_database)  # from template1, on some servers
    assert migrate(empty_database, requested_mode="plain")[0] is StorageMode.PLAIN
    with caplog.at_level(logging.INFO, logger="ingest.migrate"):
        assert migrate(empty_database, requested_mode="auto") == (StorageMode.PLAIN, [])
    assert any(CONVERT_COMMAND in r.getMessage() for r in caplog.records)
    assert has_timescaledb(empty_database) is inherited
    with psycopg.connect(empty_database) as conn:
        assert_no_hypertable(conn)
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'events_5m'").fetchone() == ("v",)
    with pytest.raises(StorageModeError, match=CONVERT_COMMAND):
        migrate(empty_database, requested_mode="timescale")


@pytest.mark.timescale
def test_timescale_and_plain_modes_give_the_same_answers(admin_dsn: str, server_has_timescale: bool) -> None:
    if not server_has_timescale:
        pytest.skip("TEST_DATABASE_URL has no timescaledb extension")
    from ingest.policies import apply_policies

    plain, timescale = create_database(admin_dsn), create_database(admin_dsn)
    try:
        assert migrate(plain, requested_mode="plain")[0] is StorageMode.PLAIN
        assert migrate(timescale, requested_mode="timescale")[0] is StorageMode.TIMESCALE
        apply_policies(timescale, compress_after=dt.timedelta(days=7), retain_for=dt.timedelta(days=365))
        for dsn in (plain, timescale):
            store(dsn, flow_events(T0, 600))
        assert rollups(timescale) == rollups(plain)
        with psycopg.connect(timescale) as conn:
            assert read_record(conn).mode is StorageMode.TIMESCALE  # type: ignore[union-attr]
            hypertables = {
                r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
            }
            # A redelivered batch is dropped by the same unique key on the hypertable.
            before = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        store(timescale, flow_events(T0, 600))
        with psycopg.connect(timescale) as conn:
            after = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        assert {"events", "work_order_events"} <= hypertables
        assert before == after == 600
    finally:
        drop_database(admin_dsn, plain)
        drop_database(admin_dsn, timescale)
