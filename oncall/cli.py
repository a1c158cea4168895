"""``steward oncall load FILE`` and ``steward oncall check FILE``; ``steward bench oncall`` lives in oncall.bench."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from oncall.config import ConfigError, apply_config, load_text, with_line

console = Console()
app = typer.Typer(no_args_is_help=True, help="On-call: contacts, schedules, escalation policies, maintenance windows.")


@app.command()
def check(path: Annotated[Path, typer.Argument(help="on-call TOML file")]) -> None:
    """Validate an on-call file without writing anything."""
    try:
        config = load_text(_read(path), source=str(path))
    except ConfigError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    console.print(
        f"{path}: {len(config.teams)} teams, {len(config.staff)} staff, {len(config.contacts)} contacts, {len(config.schedules)} schedules, "
        f"{len(config.policies)} policies, {len(config.maintenance)} maintenance windows: OK"
    )


@app.command()
def load(
    path: Annotated[Path, typer.Argument(help="on-call TOML file")],
    database_url: Annotated[str | None, typer.Option(envvar="STEWARD_DATABASE_URL", help="database DSN")] = None,
) -> None:
    """Validate an on-call file and write it (upsert) in one transaction."""
    dsn = database_url or os.environ.get("STEWARD_DATABASE_URL")
    if not dsn:
        console.print("[red]--database-url or STEWARD_DATABASE_URL is required[/red]")
        raise typer.Exit(2)
    text = _read(path)
    try:
        config = load_text(text, source=str(path))
        with psycopg.connect(dsn) as conn:  # one transaction: all of the file or nothing
            try:
                counts = apply_config(conn, config)
            except ConfigError as exc:
                raise with_line(exc, text, str(path)) from None
    except ConfigError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    except psycopg.Error as exc:
        console.print(f"{path}: not loaded, nothing was written: {exc.diag.message_primary or exc}", style="red",
                      markup=False)
        raise typer.Exit(2) from None
    console.print("loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        console.print(f"{path}: cannot read: {exc}", style="red", markup=False)
        raise typer.Exit(2) from None


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="oncall")
