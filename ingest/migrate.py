"""Versioned SQL migrations, applied in the database's recorded storage mode.

Files in ``ingest/migrations`` are applied in name order, each once, each in
its own transaction, under an advisory lock so that two processes starting
together never race. ``NNNN_name.sql`` runs in both modes;
``NNNN_name.timescale.sql`` only with TimescaleDB and ``NNNN_name.plain.sql``
only without, so each mode gets the same tables, columns and answers.
Ranges by area: 0001-0009 foundation, 0010-0019 detectors, 0020-0029 closed
loop, 0030-0039 on-call, 0040-0049 API and access control.

The mode is chosen when the database is created and recorded (``ingest.modes``);
later starts keep it whatever the server offers. Plain to TimescaleDB is the
explicit ``steward storage convert-to-timescale`` (``ingest.convert``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ingest.modes import (
    CONVERT_COMMAND,
    StorageMode,
    StorageModeError,
    check_requested,
    current_mode,
    decide,
    infer_unrecorded,
    probe_server,
    read_record,
    write_record,
)
from ingest.policies import apply_policies

__all__ = ["StorageMode", "StorageModeError", "apply_policies", "current_mode", "migrate", "discover"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_ID = 0x5354_4557  # "STEW"


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path
    mode: StorageMode | None  # None: both modes

    @property
    def key(self) -> str:
        return self.path.name


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        stem = path.name.removesuffix(".sql")
        mode: StorageMode | None = None
        for candidate in StorageMode:
            if stem.endswith("." + candidate.value):
                mode, stem = candidate, stem.removesuffix("." + candidate.value)
        found.append(Migration(version=stem, path=path, mode=mode))
    return found


@contextmanager
def migration_lock(conn: psycopg.Connection) -> Iterator[None]:
    """The advisory lock every migration and conversion holds (``conn`` in autocommit).

    If what ran under it killed the connection (TimescaleDB's "must be preloaded"
    is a FATAL error), the lock went with the session: unlocking would only replace
    that first error with "the connection is closed".
    """
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
    try:
        yield
    finally:
        if not (conn.closed or conn.broken):
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
            except psycopg.Error as exc:  # never mask what happened inside
                log.warning("could not release the migration lock (it goes with the session): %s", exc)


SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY, mode text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)


def applied_versions(conn: psycopg.Connection) -> set[str]:
    conn.execute(SCHEMA_MIGRATIONS)
    return {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}


def run_migration(conn: psycopg.Connection, migration: Migration, mode: StorageMode) -> None:
    """One file and its record, in the caller's transaction. TimescaleDB allows every
    statement of its files there: continuous aggregates are created WITH NO DATA (only
    WITH DATA refuses a transaction block) and first materialized by their policy."""
    log.info("applying migration %s", migration.key)
    conn.execute(migration.path.read_text())
    conn.execute("INSERT INTO schema_migrations (version, mode) VALUES (%s, %s)", (migration.key, mode.value))


def settle_mode(conn: psycopg.Connection, requested: str) -> StorageMode:
    """The recorded mode; for a database without one, the mode it was created in
    (databases migrated before modes were recorded) or, for a new one, the mode chosen
    now from the request and the server, recorded before anything else is created."""
    record = read_record(conn)
    if record is not None:
        mode = record.mode
        check_requested(requested, mode)
    else:
        inferred = infer_unrecorded(conn)
        if inferred is not None:
            mode, how = inferred, "inferred"
            check_requested(requested, mode)
        else:
            mode, warning = decide(requested, probe_server(conn))
            how = "created"
            if warning:
                log.warning(warning)
        if mode is StorageMode.TIMESCALE:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        with conn.transaction():
            write_record(conn, mode, how)
        log.info("storage mode %s recorded (%s)", mode, how)
    if mode is StorageMode.PLAIN and requested == "auto":
        server = probe_server(conn)
        if server.available and server.preloaded:
            log.info("this database is in plain mode although the server has TimescaleDB: "
                     "`%s` converts it (README: Storage modes)", CONVERT_COMMAND)
    if mode is StorageMode.TIMESCALE:
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        if not installed:
            raise StorageModeError("this database is recorded as TimescaleDB mode but has no timescaledb "
                                   "extension: restore it on a server with TimescaleDB")
    return mode


def migrate(dsn: str, *, requested_mode: str = "auto", directory: Path = MIGRATIONS_DIR
            ) -> tuple[StorageMode, list[str]]:
    """Apply what is missing; return the mode and the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        with migration_lock(conn):
            mode = settle_mode(conn, requested_mode)
            done = applied_versions(conn)
            for migration in discover(directory):
                if migration.mode not in (None, mode) or migration.key in done:
                    continue
                with conn.transaction():
                    run_migration(conn, migration, mode)
                applied_now.append(migration.key)
            record = read_record(conn)
            if record is not None and record.pending:
                log.warning("the conversion to TimescaleDB has not materialized %s yet (their answers are "
                            "complete meanwhile, computed from events): `%s` finishes it",
                            ", ".join(record.pending), CONVERT_COMMAND)
    return mode, applied_now
