"""The ``steward`` command. Each part registers its own subcommands in one visible list."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

# A module here exposes ``register(app: typer.Typer) -> None``.
COMMAND_MODULES = [
    "steward.commands",  # run, migrate, bench ingest
    "simulators.cli",  # simulate
    "detectors.cli",  # eval, score
    "oncall.cli",  # oncall check, oncall load
    "ingest.cli",  # storage status, storage convert-to-timescale
]


def build_app() -> typer.Typer:
    import typer

    app = typer.Typer(no_args_is_help=True, add_completion=False, help="Steward: community IoT monitoring.")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that part has no commands yet
                continue
            raise
        module.register(app)
    return app


def main() -> None:
    if sys.argv[1:2] == ["score"]:
        # The scorer needs none of the service (not even msgspec): skip importing every part (~0.5 s) for it.
        from detectors.score import main as score_main

        raise SystemExit(score_main(sys.argv[2:]))
    build_app()()
