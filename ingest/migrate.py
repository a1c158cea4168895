"""Versioned SQL migrations and the storage mode (TimescaleDB or plain PostgreSQL).

Files in ``ingest/migrations`` are applied in name order, each once, each in
its own transaction, under an advisory lock so that two processes starting
together never race. ``NNNN_name.sql`` runs in both modes;
``NNNN_name.timescale.sql`` only with TimescaleDB and ``NNNN_name.plain.sql``
only without, so each mode gets the same tables, columns and answers.
Ranges by area: 0001-0009 foundation, 0010-0019 detectors, 0020-0029 closed
loop, 0030-0039 on-call, 0040-0049 API and access control.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_ID = 0x5354_4557  # "STEW"


class StorageMode(enum.StrEnum):
    TIMESCALE = "timescale"
    PLAIN = "plain"


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path
    mode: StorageMode | None  # None: both modes


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


def split_statements(script: str) -> list[str]:
    """Statements of a script without dollar-quoted bodies (the Timescale files)."""
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def detect_mode(conn: psycopg.Connection, requested: str = "auto") -> StorageMode:
    """``auto`` uses TimescaleDB when the server has it, plain PostgreSQL otherwise."""
    installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if requested == StorageMode.PLAIN:
        if installed:
            raise RuntimeError("storage_mode=plain but this database already uses TimescaleDB")
        return StorageMode.PLAIN
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if installed or available:
        return StorageMode.TIMESCALE
    if requested == StorageMode.TIMESCALE:
        raise RuntimeError("storage_mode=timescale but the server has no timescaledb extension")
    return StorageMode.PLAIN


def current_mode(conn: psycopg.Connection) -> StorageMode:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return StorageMode.TIMESCALE if row else StorageMode.PLAIN


def migrate(dsn: str, *, requested_mode: str = "auto") -> tuple[StorageMode, list[str]]:
    """Apply what is missing; return the mode and the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            mode = detect_mode(conn, requested_mode)
            if mode is StorageMode.TIMESCALE:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, mode text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for migration in discover():
                if migration.mode not in (None, mode):
                    continue
                key = migration.path.name
                if key in done:
                    continue
                log.info("applying migration %s", key)
                # Continuous aggregates cannot be created inside a transaction block,
                # so Timescale files run statement by statement in autocommit.
                if migration.mode is StorageMode.TIMESCALE:
                    for statement in split_statements(migration.path.read_text()):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (version, mode) VALUES (%s, %s)", (key, mode.value))
                else:
                    with conn.transaction():
                        conn.execute(migration.path.read_text())
                        conn.execute("INSERT INTO schema_migrations (version, mode) VALUES (%s, %s)", (key, mode.value))
                applied_now.append(key)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return mode, applied_now


def apply_policies(dsn: str, *, compress_after: dt.timedelta, retain_for: dt.timedelta | None) -> None:
    """(Re)apply the TimescaleDB compression and retention policies from the settings.

    TimescaleDB keeps an existing policy when asked to add one with a different
    interval, so each is removed and added again. No-op on plain PostgreSQL,
    where retention is left to the operator (documented in the README).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        if current_mode(conn) is not StorageMode.TIMESCALE:
            return
        conn.execute("SELECT remove_compression_policy('events', if_exists => TRUE)")
        conn.execute("SELECT add_compression_policy('events', compress_after => %s)", (compress_after,))
        conn.execute("SELECT remove_retention_policy('events', if_exists => TRUE)")
        if retain_for is not None:
            conn.execute("SELECT add_retention_policy('events', drop_after => %s)", (retain_for,))
