"""The ``steward`` command. Each part registers its own subcommands in one visible list."""

from __future__ import annotations

import importlib

import typer

# A module here exposes ``register(app: typer.Typer) -> None``.
COMMAND_MODULES = [
    "steward.commands",  # run, migrate, bench ingest
    "simulators.cli",  # simulate
    "detectors.cli",  # eval, score
    "oncall.cli",  # oncall check, oncall load
]


def build_app() -> typer.Typer:
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
    build_app()()
