"""``steward storage convert-to-timescale``: the one way from plain to TimescaleDB.

The refusals and the resumable second phase run on any PostgreSQL; the conversion
itself (and a crash in the middle of its transaction) in the tests marked
``timescale``, against a server with the extension."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from storage_samples import daily, flow_events, rollups, steward_jobs, store, store_work_order_changes
from typer.testing import CliRunner

from ingest.convert import ConversionError, convert_to_timescale
from ingest.migrate import MIGRATIONS_DIR, migrate
from ingest.modes import ServerTimescale, StorageMode, read_record, write_record
from ingest.policies import apply_policies

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)
SETTINGS = {"compress_after": 7 * DAY, "retain_for": 365 * DAY}


def _relkind(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute("SELECT relkind FROM pg_class WHERE relname = %s AND relnamespace = "
                       "current_schema()::regnamespace", (name,)).fetchone()
    return row[0] if row else None


def test_an_unmigrated_database_is_not_converted(empty_database: str) -> None:
    with pytest.raises(ConversionError, match="steward migrate"):
        convert_to_timescale(empty_database, **SETTINGS)


def test_a_database_behind_on_migrations_is_not_converted(empty_database: str) -> None:
    migrate(empty_database, requested_mode="plain")
    with psycopg.connect(empty_database) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = '0041_residents_credentials_stream.sql'")
        conn.commit()
    with pytest.raises(ConversionError, match="0041_residents_credentials_stream.sql.*steward migrate"):
        convert_to_timescale(empty_database, **SETTINGS)


def _why_not(offer: ServerTimescale) -> str:
    return "shared_preload_libraries" if offer.available else "no timescaledb extension"


def test_without_timescaledb_the_conversion_refuses_and_changes_nothing(
        empty_database: str, server_has_timescale: bool, timescale_offer: ServerTimescale) -> None:
    if server_has_timescale:
        pytest.skip("this server has TimescaleDB: the conversion itself is tested below")
    migrate(empty_database, requested_mode="plain")
    store(empty_database, flow_events(T0, 60))
    before = rollups(empty_database)
    with pytest.raises(ConversionError, match=_why_not(timescale_offer)):
        convert_to_timescale(empty_database, **SETTINGS)
    with psycopg.connect(empty_database) as conn:
        assert read_record(conn).mode is StorageMode.PLAIN  # type: ignore[union-attr]
        assert _relkind(conn, "events_5m") == "v"
    assert rollups(empty_database) == before


def test_an_interrupted_materialization_is_finished_by_running_the_command_again(empty_database: str) -> None:
    """The second phase, after the transaction committed: one refresh per roll-up, each
    struck off the record when done. A crash between them leaves the rest pending, and
    the next run does only that. (The refresh itself needs TimescaleDB: here it is the
    record's bookkeeping that is under test, with a refresh that fails the second time.)"""
    migrate(empty_database, requested_mode="plain")
    with psycopg.connect(empty_database) as conn, conn.transaction():
        # Where a conversion's transaction leaves the record.
        write_record(conn, StorageMode.TIMESCALE, "converted", ["events_5m", "work_order_daily"])
    refreshed: list[str] = []

    def crashes_on_the_second(conn: psycopg.Connection, view: str) -> None:
        if refreshed:
            raise ConnectionError("server closed the connection unexpectedly")
        refreshed.append(view)

    with pytest.raises(ConnectionError):
        convert_to_timescale(empty_database, **SETTINGS, materialize=crashes_on_the_second)
    with psycopg.connect(empty_database) as conn:
        assert read_record(conn).pending == ("work_order_daily",)  # type: ignore[union-attr]
    assert convert_to_timescale(empty_database, **SETTINGS,
                                materialize=lambda conn, view: refreshed.append(view)) == [
        "materialized work_order_daily"]
    assert refreshed == ["events_5m", "work_order_daily"]
    with psycopg.connect(empty_database) as conn:
        record = read_record(conn)
        assert record is not None and (record.mode, record.pending) == (StorageMode.TIMESCALE, ())
    assert convert_to_timescale(empty_database, **SETTINGS, materialize=lambda conn, view: refreshed.append(view)) == []
    assert len(refreshed) == 2


@pytest.fixture
def reader_role(admin_dsn: str) -> Iterator[str]:
    """A role like Grafana's reader (roles are the server's, so a unique name)."""
    role = f"steward_reader_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _can_read(dsn: str, role: str, relation: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, relation)).fetchone()
    return bool(row and row[0])


def _revoke_all(dsn: str, role: str) -> None:
    """Everything granted to the role in this database (TimescaleDB passes a continuous
    aggregate's grants on to its internal tables), so that the role can be dropped."""
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.commit()


def test_the_rights_on_a_replaced_view_are_carried_over(empty_database: str, reader_role: str) -> None:
    """Grafana's reader may SELECT events_5m (migration 0061 grants it): the continuous
    aggregate that replaces the view must keep that grant (shown here with a view
    replaced the same way, drop and create, on any PostgreSQL)."""
    from ingest.convert import _grant, _grants

    migrate(empty_database, requested_mode="plain")
    with psycopg.connect(empty_database) as conn:
        conn.execute(sql.SQL("GRANT SELECT ON events_5m TO {}").format(sql.Identifier(reader_role)))
        grants = _grants(conn, ("events_5m", "work_order_daily"))
        assert (("events_5m", "SELECT", reader_role)) in grants
        conn.execute("DROP VIEW events_5m")
        conn.execute((MIGRATIONS_DIR / "0002_events_5m.plain.sql").read_text())
        assert not conn.execute("SELECT has_table_privilege(%s, 'events_5m', 'SELECT')", (reader_role,)).fetchone()[0]
        _grant(conn, grants)
        conn.commit()
    try:
        assert _can_read(empty_database, reader_role, "events_5m")
        assert not _can_read(empty_database, reader_role, "work_order_daily")
    finally:
        _revoke_all(empty_database, reader_role)


def test_the_command_needs_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from steward.cli import build_app

    monkeypatch.delenv("STEWARD_DATABASE_URL", raising=False)
    result = CliRunner().invoke(build_app(), ["storage", "convert-to-timescale"])
    assert result.exit_code == 2 and "STEWARD_DATABASE_URL" in result.output


def test_the_command_says_why_it_cannot_convert(empty_database: str, server_has_timescale: bool,
                                                timescale_offer: ServerTimescale) -> None:
    if server_has_timescale:
        pytest.skip("this server has TimescaleDB: the command converts (tested below)")
    from steward.cli import build_app

    migrate(empty_database, requested_mode="plain")
    result = CliRunner().invoke(build_app(), ["storage", "convert-to-timescale", "--database-url", empty_database])
    assert result.exit_code == 1 and _why_not(timescale_offer) in result.output
    status = CliRunner().invoke(build_app(), ["storage", "status", "--database-url", empty_database])
    assert status.exit_code == 0 and "storage mode: plain (created)" in status.output


@pytest.mark.timescale
def test_a_plain_database_is_converted_in_one_transaction_and_keeps_its_answers(
        empty_database: str, server_has_timescale: bool, tmp_path: Path, reader_role: str) -> None:
    if not server_has_timescale:
        pytest.skip("TEST_DATABASE_URL has no timescaledb extension")
    try:
        _convert_and_check(empty_database, tmp_path, reader_role)
    finally:
        _revoke_all(empty_database, reader_role)


def _convert_and_check(empty_database: str, tmp_path: Path, reader_role: str) -> None:
    from steward.cli import build_app

    migrate(empty_database, requested_mode="plain")
    with psycopg.connect(empty_database) as conn:
        conn.execute(sql.SQL("GRANT SELECT ON events_5m, work_order_daily TO {}").format(sql.Identifier(reader_role)))
        conn.commit()
    with psycopg.connect(empty_database) as conn:  # the data is days old by the server's clock, which the
        (now,) = conn.execute("SELECT now()").fetchone()  # type: ignore[misc]  # policies follow
    start = now.astimezone(dt.timezone.utc).replace(hour=8, minute=0, second=0, microsecond=0) - 3 * DAY
    store(empty_database, flow_events(start, 600))
    store_work_order_changes(empty_database, [start, start + DAY])
    events_5m, work_order_daily = rollups(empty_database), daily(empty_database)

    # A crash inside the transaction (here: a failing statement after every TimescaleDB
    # migration ran) leaves the plain database exactly as it was.
    for path in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "0099_crash.timescale.sql").write_text("SELECT 1 / 0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        convert_to_timescale(empty_database, **SETTINGS, directory=tmp_path)
    with psycopg.connect(empty_database) as conn:
        assert read_record(conn).mode is StorageMode.PLAIN  # type: ignore[union-attr]
        assert _relkind(conn, "events_5m") == "v" and _relkind(conn, "work_order_daily") == "v"
        assert conn.execute("SELECT count(*) FROM timescaledb_information.hypertables").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM schema_migrations WHERE mode = 'timescale'").fetchone() == (0,)
    assert rollups(empty_database) == events_5m

    result = CliRunner().invoke(build_app(), ["storage", "convert-to-timescale", "--database-url", empty_database])
    assert result.exit_code == 0, result.output
    with psycopg.connect(empty_database) as conn:
        record = read_record(conn)
        assert record is not None and (record.mode, record.how, record.pending) == (
            StorageMode.TIMESCALE, "converted", ())
        assert {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")} == {
            "events", "work_order_events"}
        assert {r[0] for r in conn.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates")} == {
            "events_5m", "work_order_daily"}
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (600,)
        jobs = sorted((proc, relation) for _, proc, relation, _ in steward_jobs(conn))
        assert jobs == [("policy_compression", "events"), ("policy_refresh_continuous_aggregate", "events_5m"),
                        ("policy_refresh_continuous_aggregate", "work_order_daily"), ("policy_retention", "events")]
    assert rollups(empty_database) == events_5m
    assert daily(empty_database) == work_order_daily
    assert _can_read(empty_database, reader_role, "events_5m") and _can_read(empty_database, reader_role,
                                                                             "work_order_daily")
    # Materialized by the command, not only computed live.
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("ALTER MATERIALIZED VIEW events_5m SET (timescaledb.materialized_only = true)")
    assert rollups(empty_database) == events_5m
    # Done is done: again, and a restart, change nothing.
    assert convert_to_timescale(empty_database, **SETTINGS) == []
    assert migrate(empty_database) == (StorageMode.TIMESCALE, [])
    assert apply_policies(empty_database, **SETTINGS) == []
    status = CliRunner().invoke(build_app(), ["storage", "status", "--database-url", empty_database])
    assert "storage mode: timescale (converted)" in status.output


@pytest.mark.timescale
def test_a_database_an_older_steward_half_converted_stays_plain_until_the_command_converts_it(
        empty_database: str, server_has_timescale: bool) -> None:
    """What the old ``auto`` left of a plain database once its server had TimescaleDB: the
    extension, ``events`` a hypertable (with TimescaleDB's default btree on time) with
    compression enabled, the plain view ``events_5m`` still there, the start failing at
    its refresh policy, and no record of the mode. It counts as plain (its roll-up
    migration says so), keeps working, and the command completes the conversion."""
    if not server_has_timescale:
        pytest.skip("TEST_DATABASE_URL has no timescaledb extension")
    migrate(empty_database, requested_mode="plain")
    store(empty_database, flow_events(T0, 300))
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("SELECT create_hypertable('events', by_range('time', INTERVAL '1 day'), migrate_data => TRUE)")
        conn.execute("ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', "
                     "timescaledb.compress_orderby = 'time DESC, msg_id')")
        conn.execute("DROP TABLE storage_mode")  # from before modes were recorded

    assert migrate(empty_database) == (StorageMode.PLAIN, [])
    store(empty_database, flow_events(T0 + DAY, 300, prefix="after"))
    before = rollups(empty_database)
    assert sum(r[3] for r in before) == 600
    with psycopg.connect(empty_database) as conn:
        assert read_record(conn).how == "inferred"  # type: ignore[union-attr]

    convert_to_timescale(empty_database, **SETTINGS)
    with psycopg.connect(empty_database) as conn:
        assert read_record(conn).mode is StorageMode.TIMESCALE  # type: ignore[union-attr]
        assert {r[0] for r in conn.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates")} == {
            "events_5m", "work_order_daily"}
        indexes = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'events'::regclass")}
        assert sorted((proc, relation) for _, proc, relation, _ in steward_jobs(conn)) == [
            ("policy_compression", "events"), ("policy_refresh_continuous_aggregate", "events_5m"),
            ("policy_refresh_continuous_aggregate", "work_order_daily"), ("policy_retention", "events")]
    # TimescaleDB's btree on time went with 0007, as on a database created in TimescaleDB mode.
    assert indexes == {"events_device_time_msg", "events_community_time", "events_received_brin", "events_time_brin"}
    assert rollups(empty_database) == before
    assert migrate(empty_database) == (StorageMode.TIMESCALE, [])
