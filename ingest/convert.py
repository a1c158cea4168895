"""Converting a plain database to TimescaleDB: ``steward storage convert-to-timescale``.

A database keeps the mode it was created in (``ingest.modes``); this is the one
way from plain to TimescaleDB. It runs in two phases, recorded in
``storage_mode`` so that a crash at any point leaves a database that works and
a command that, run again, carries on:

1. **One transaction** (TimescaleDB allows all of it in one): the extension,
   every TimescaleDB-only migration not yet applied (``events`` and
   ``work_order_events`` become hypertables with their rows, the plain views
   ``events_5m`` and ``work_order_daily`` become real-time continuous
   aggregates, with the same grants), the policies, and the record: mode ``timescale``, with the
   continuous aggregates to materialize listed as pending. A crash before the
   commit leaves the plain database as it was.
2. **The first materialization** of each pending continuous aggregate, one
   after the other, each its own refresh (a refresh cannot run inside a
   transaction block) followed by removing it from the pending list. Until
   then the real-time aggregates answer from ``events`` and are already
   complete, only slower; a crash leaves the rest pending, and the next run of
   the command (or the refresh policy) materializes it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from ingest.migrate import MIGRATIONS_DIR, applied_versions, discover, migration_lock, run_migration
from ingest.modes import StorageMode, StorageModeError, decide, probe_server, read_record, write_record
from ingest.policies import apply_policies_on

log = logging.getLogger(__name__)

ROLLUPS = ("events_5m", "work_order_daily")


class ConversionError(RuntimeError):
    """The database cannot be converted as it is; the message says why and what to do."""


def convert_to_timescale(dsn: str, *, compress_after: dt.timedelta, retain_for: dt.timedelta | None,
                         directory: Path = MIGRATIONS_DIR,
                         materialize: Callable[[psycopg.Connection, str], None] | None = None,
                         say: Callable[[str], None] = log.info) -> list[str]:
    """Convert (or finish converting) the database; returns the steps done now.

    ``materialize(conn, view)`` is the first refresh of a continuous aggregate
    (``refresh_continuous_aggregate`` by default; tests pass their own to stop
    between phases)."""
    materialize = materialize or refresh_rollup
    done_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        with migration_lock(conn):
            record = read_record(conn)
            if record is None:
                raise ConversionError("this database has not been migrated: run `steward migrate` first")
            if record.mode is StorageMode.PLAIN:
                _check_ready(conn, directory)
                # On its own first: a database with the extension but recorded as plain
                # is still plain, and the transaction below then starts on a loaded library.
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                with conn.transaction():
                    grants = _grants(conn, ROLLUPS)
                    done = applied_versions(conn)
                    for migration in discover(directory):
                        if migration.mode is StorageMode.TIMESCALE and migration.key not in done:
                            run_migration(conn, migration, StorageMode.TIMESCALE)
                            done_now.append(migration.key)
                    _grant(conn, grants)
                    apply_policies_on(conn, compress_after=compress_after, retain_for=retain_for)
                    present = {r[0] for r in conn.execute(
                        "SELECT view_name FROM timescaledb_information.continuous_aggregates "
                        "WHERE view_schema = current_schema()")}
                    write_record(conn, StorageMode.TIMESCALE, "converted", [v for v in ROLLUPS if v in present])
                say(f"converted to TimescaleDB in one transaction: {', '.join(done_now) or 'nothing to apply'}")
                record = read_record(conn)
                assert record is not None
            for view in record.pending:
                say(f"materializing {view} (the first refresh reads all of its history)")
                materialize(conn, view)
                conn.execute("UPDATE storage_mode SET pending = array_remove(pending, %s)", (view,))
                done_now.append(f"materialized {view}")
    return done_now


def _check_ready(conn: psycopg.Connection, directory: Path) -> None:
    """The plain schema must be complete (conversion adds only the TimescaleDB side),
    and the server must be able to load TimescaleDB."""
    done = applied_versions(conn)
    missing = [m.key for m in discover(directory) if m.mode is not StorageMode.TIMESCALE and m.key not in done]
    if missing:
        raise ConversionError(f"{len(missing)} migration(s) not applied yet ({', '.join(missing)}): "
                              "run `steward migrate` first")
    try:
        decide(StorageMode.TIMESCALE, probe_server(conn))
    except StorageModeError as exc:
        raise ConversionError(str(exc).replace("storage_mode=timescale but ", "cannot convert: ")) from None


def _grants(conn: psycopg.Connection, relations: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """Who may do what on the views the conversion replaces (a migration granted Grafana's
    reader SELECT on them, an operator may have granted more): (relation, privilege, role
    or None for PUBLIC), the owner's own rights aside."""
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT c.relname, g.privilege_type, CASE WHEN g.grantee = 0 THEN NULL ELSE g.grantee::regrole::text END "
        "FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) g "
        "WHERE c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace AND g.grantee <> c.relowner",
        (list(relations),))]


def _grant(conn: psycopg.Connection, grants: list[tuple[str, str, str | None]]) -> None:
    """The same rights on the continuous aggregates that replaced the views."""
    for relation, privilege, role in grants:
        conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(
            sql.SQL(privilege), sql.Identifier(relation), sql.SQL("PUBLIC") if role is None else sql.SQL(role)))


def refresh_rollup(conn: psycopg.Connection, view: str) -> None:
    """Materialize the whole history of a continuous aggregate up to where its refresh
    policy stops (the newest buckets stay computed live), as the policy would."""
    (end,) = conn.execute(  # type: ignore[misc]
        "SELECT (j.config ->> 'end_offset')::interval FROM timescaledb_information.jobs j "
        "JOIN timescaledb_information.continuous_aggregates c ON j.hypertable_name IN "
        " (c.view_name, c.materialization_hypertable_name) "
        "WHERE c.view_schema = current_schema() AND c.view_name = %s "
        "AND j.proc_name = 'policy_refresh_continuous_aggregate' ORDER BY j.job_id LIMIT 1",
        (view,),
    ).fetchone() or (None,)
    # CALL takes no bind parameters: the two values go in as literals.
    conn.execute(sql.SQL("CALL refresh_continuous_aggregate({}::regclass, NULL, now() - {}::interval)").format(
        sql.Literal(view), sql.Literal(end or dt.timedelta(0))))
