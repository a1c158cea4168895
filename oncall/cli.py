"""``steward oncall load FILE`` and ``steward oncall check FILE``; ``steward bench oncall`` lives in oncall.bench."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from oncall.config import ConfigError, apply_config, load_file

console = Console()
app = typer.Typer(no_args_is_help=True, help="On-call: contacts, schedules, escalation policies, maintenance windows.")


@app.command()
def check(path: Annotated[Path, typer.Argument(help="on-call TOML file")]) -> None:
    """Validate an on-call file without writing anything."""
    try:
        config = load_file(path)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"{path}: {len(config.contacts)} contacts, {len(config.schedules)} schedules, "
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
    try:
        config = load_file(path)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    with psycopg.connect(dsn) as conn:
        counts = apply_config(conn, config)
    console.print("loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="oncall")
