"""A database's storage mode: chosen once, when the database is created, and recorded.

The mode is a property of the database, not of the server it happens to run
on today: a plain database stays plain when its server gains TimescaleDB
(``steward storage convert-to-timescale`` converts it, see ``ingest.convert``),
and a TimescaleDB one never falls back to plain. The record is the one row of
``storage_mode``; every part asks :func:`current_mode` rather than looking for
the extension, which may be installed in a plain database (a conversion that
failed before it committed, or a server where it is available anyway).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)


class StorageMode(enum.StrEnum):
    TIMESCALE = "timescale"
    PLAIN = "plain"


class StorageModeError(RuntimeError):
    """The requested mode cannot be had; the message says what to do."""


CONVERT_COMMAND = "steward storage convert-to-timescale"

NOT_PRELOADED = (
    "the timescaledb extension is installed on this PostgreSQL server but not preloaded: "
    "add timescaledb to shared_preload_libraries in postgresql.conf (e.g. "
    "shared_preload_libraries = 'timescaledb') and restart PostgreSQL"
)

RECORD_TABLE = (
    "CREATE TABLE IF NOT EXISTS storage_mode ("
    " only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
    " mode text NOT NULL CHECK (mode IN ('plain', 'timescale')),"
    " how text NOT NULL,"  # created, inferred (databases from before the record), converted
    " recorded_at timestamptz NOT NULL DEFAULT now(),"
    # What a conversion still has to do after its transaction committed (the first
    # materialization of each continuous aggregate); empty otherwise.
    " pending text[] NOT NULL DEFAULT '{}')"
)


@dataclass(frozen=True)
class ServerTimescale:
    """What the server offers: the extension's files (available) and its loader in
    ``shared_preload_libraries`` (preloaded), without which CREATE EXTENSION fails."""

    available: bool
    preloaded: bool


@dataclass(frozen=True)
class ModeRecord:
    mode: StorageMode
    how: str
    pending: tuple[str, ...]


def probe_server(conn: psycopg.Connection) -> ServerTimescale:
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available:
        return ServerTimescale(available=False, preloaded=False)
    return ServerTimescale(available=True, preloaded=_preloaded(conn))


def _preloaded(conn: psycopg.Connection) -> bool:
    # shared_preload_libraries is readable by superusers and pg_read_all_settings
    # only. Others can see whether the loader defined its settings in this
    # backend, which it does in every backend once it is preloaded.
    try:
        with conn.transaction():
            (libraries,) = conn.execute("SHOW shared_preload_libraries").fetchone()  # type: ignore[misc]
    except psycopg.errors.InsufficientPrivilege:
        (defined,) = conn.execute(  # type: ignore[misc]
            "SELECT current_setting('timescaledb.bgw_launcher_poll_time', true) IS NOT NULL"
        ).fetchone()
        return bool(defined)
    return preloads_timescaledb(libraries)


def preloads_timescaledb(libraries: str) -> bool:
    """Whether a ``shared_preload_libraries`` value names the TimescaleDB loader."""
    for item in libraries.split(","):
        name = item.strip().strip('"').rsplit("/", 1)[-1].removesuffix(".so")
        if name == "timescaledb":
            return True
    return False


def decide(requested: str, server: ServerTimescale) -> tuple[StorageMode, str | None]:
    """The mode of a new database, and a warning to log when ``auto`` had to settle for plain."""
    if requested == StorageMode.PLAIN:
        return StorageMode.PLAIN, None
    if requested == StorageMode.TIMESCALE:
        if not server.available:
            raise StorageModeError("storage_mode=timescale but this PostgreSQL server has no timescaledb extension")
        if not server.preloaded:
            raise StorageModeError(f"storage_mode=timescale but {NOT_PRELOADED}")
        return StorageMode.TIMESCALE, None
    if requested != "auto":
        raise StorageModeError(f"storage_mode must be auto, timescale or plain, not {requested!r}")
    if server.available and server.preloaded:
        return StorageMode.TIMESCALE, None
    if server.available:
        return StorageMode.PLAIN, (
            f"{NOT_PRELOADED}. This new database uses plain PostgreSQL (recorded as its mode); "
            f"once TimescaleDB is preloaded, `{CONVERT_COMMAND}` converts it"
        )
    return StorageMode.PLAIN, None


def check_requested(requested: str, mode: StorageMode) -> None:
    """An existing database keeps its mode: asking for the other one is an error, never a switch."""
    if requested == StorageMode.PLAIN and mode is StorageMode.TIMESCALE:
        raise StorageModeError(
            "storage_mode=plain but this database uses TimescaleDB (its recorded mode); "
            "set STEWARD_STORAGE_MODE=auto or timescale"
        )
    if requested == StorageMode.TIMESCALE and mode is StorageMode.PLAIN:
        raise StorageModeError(
            "storage_mode=timescale but this database was created in plain mode (its recorded mode); "
            f"`{CONVERT_COMMAND}` converts it (README: Storage modes), or set STEWARD_STORAGE_MODE=auto"
        )


def read_record(conn: psycopg.Connection) -> ModeRecord | None:
    (exists,) = conn.execute("SELECT to_regclass('storage_mode') IS NOT NULL").fetchone()  # type: ignore[misc]
    if not exists:
        return None
    row = conn.execute("SELECT mode, how, pending FROM storage_mode").fetchone()
    if row is None:
        return None
    return ModeRecord(StorageMode(row[0]), row[1], tuple(row[2]))


def write_record(conn: psycopg.Connection, mode: StorageMode, how: str, pending: list[str] | None = None) -> None:
    conn.execute(RECORD_TABLE)
    conn.execute(
        "INSERT INTO storage_mode (mode, how, pending) VALUES (%(m)s, %(h)s, %(p)s) "
        "ON CONFLICT (only_row) DO UPDATE SET mode = EXCLUDED.mode, how = EXCLUDED.how, "
        "recorded_at = now(), pending = EXCLUDED.pending",
        {"m": mode.value, "h": how, "p": pending or []},
    )


def infer_unrecorded(conn: psycopg.Connection) -> StorageMode | None:
    """The mode of a database migrated before modes were recorded: the 5-minute
    roll-up's migration says which mode it was created in (a database that the
    old ``auto`` turned half into TimescaleDB still counts as plain, so that the
    conversion command completes it). None for a database without that migration."""
    (exists,) = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()  # type: ignore[misc]
    if not exists:
        return None
    versions = {
        r[0]
        for r in conn.execute(
            "SELECT version FROM schema_migrations "
            "WHERE version IN ('0002_events_5m.timescale.sql', '0002_events_5m.plain.sql')"
        )
    }
    if "0002_events_5m.timescale.sql" in versions:
        return StorageMode.TIMESCALE
    if "0002_events_5m.plain.sql" in versions:
        return StorageMode.PLAIN
    return None


def current_mode(conn: psycopg.Connection) -> StorageMode:
    """The database's recorded mode (plain for a database not migrated yet)."""
    record = read_record(conn)
    if record is not None:
        return record.mode
    return infer_unrecorded(conn) or StorageMode.PLAIN
