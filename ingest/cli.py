"""``steward storage status`` and ``steward storage convert-to-timescale``."""

from __future__ import annotations

import logging
from typing import Annotated

import psycopg
import typer

app = typer.Typer(no_args_is_help=True, help="The database's storage mode (plain PostgreSQL or TimescaleDB).")

DatabaseUrl = Annotated[str | None, typer.Option("--database-url", envvar="STEWARD_DATABASE_URL",
                                                 help="database DSN (default: STEWARD_DATABASE_URL)")]


def _dsn(database_url: str | None) -> str:
    if not database_url:
        typer.echo("needs STEWARD_DATABASE_URL (or --database-url): the embedded PostgreSQL is always plain mode",
                   err=True)
        raise typer.Exit(2)
    return database_url


@app.command()
def status(database_url: DatabaseUrl = None) -> None:
    """Show the database's recorded mode and what the server offers."""
    from ingest.modes import CONVERT_COMMAND, StorageMode, probe_server, read_record

    with psycopg.connect(_dsn(database_url), autocommit=True) as conn:
        record = read_record(conn)
        server = probe_server(conn)
    if record is None:
        typer.echo("storage mode: not recorded yet (`steward migrate` records it)")
    else:
        typer.echo(f"storage mode: {record.mode} ({record.how})")
        if record.pending:
            typer.echo(f"conversion: still to materialize {', '.join(record.pending)} (`{CONVERT_COMMAND}`)")
    offer = ("TimescaleDB available and preloaded" if server.preloaded else
             "TimescaleDB installed but not in shared_preload_libraries" if server.available else "no TimescaleDB")
    typer.echo(f"server: {offer}")
    if record is not None and record.mode is StorageMode.PLAIN and server.preloaded:
        typer.echo(f"`{CONVERT_COMMAND}` converts this database")


@app.command("convert-to-timescale")
def convert_to_timescale(database_url: DatabaseUrl = None) -> None:
    """Convert a plain database to TimescaleDB (run again to finish an interrupted conversion).

    Migrates first, then in one transaction: events and work_order_events become
    hypertables, the events_5m and work_order_daily views continuous aggregates,
    and the policies are added; then each continuous aggregate is materialized.
    Writers wait for the transaction's locks meanwhile: stop Steward first on a
    large database.
    """
    from steward.settings import ConfigError, load_settings

    from ingest.convert import ConversionError
    from ingest.convert import convert_to_timescale as convert
    from ingest.migrate import migrate
    from ingest.modes import StorageModeError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    dsn = _dsn(database_url)
    try:
        migrate(dsn, requested_mode="auto")
        done = convert(dsn, compress_after=settings.compress_after, retain_for=settings.retain_for, say=typer.echo)
    except (ConversionError, StorageModeError) as exc:
        typer.echo(f"steward: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("storage mode: timescale" + ("" if done else " (already converted, nothing to do)"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="storage")
