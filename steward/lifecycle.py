"""How a long-running ``steward`` process starts, waits and stops.

- `StopSignals`: SIGINT (Ctrl-C), SIGTERM and SIGHUP ask for a stop in every
  state, starting included; the handler only sets an event, so a stop never
  cuts a start or a shutdown step in half and every child is still stopped.
- `DataFolderLock`: one ``steward run`` per data folder. The lock is an
  ``flock`` on ``steward.pid`` (released by the kernel however the process
  ends, so a crash leaves nothing stale), and the file names the holder's pid.
- `wait_for_database` / `wait_for_broker`: a given ``STEWARD_DATABASE_URL`` or
  ``STEWARD_MQTT_URL`` that answers nothing fails the start within
  ``STEWARD_START_TIMEOUT_SECONDS``, naming the setting and the address.
- `Console`: the lines for the person at the terminal; a closed pipe (``steward
  run | tee`` after Ctrl-C killed ``tee``) silences it instead of stopping the
  shutdown halfway.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from gateway.endpoint import MqttEndpoint

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StartError(Exception):
    """The start cannot go on for a reason the operator can fix; the message says which and how."""


class Interrupted(Exception):
    """A stop was asked for while starting."""


class Console:
    """Writes lines for the person at the terminal; a closed pipe stops the writing, not the program."""

    def __init__(self) -> None:
        self.closed = False

    def echo(self, line: str, *, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        if self.closed and not err:
            return
        try:
            stream.write(line + "\n")
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._silence(stream)

    def _silence(self, stream: Any) -> None:
        # From now on the stream goes to /dev/null, so that neither later lines nor the
        # interpreter's flush at exit fail on the broken pipe.
        if stream is sys.stdout:
            self.closed = True
        logging.raiseExceptions = False  # a log line to a closed stderr is dropped quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


class StopSignals:
    """Turns SIGINT, SIGTERM and SIGHUP into a stop request, from the moment it is entered.

    The first signal calls ``on_stop`` (which must only set flags) and sets
    `requested`; later ones are reported and otherwise ignored, so the stop
    that is under way finishes and stops every child.
    """

    def __init__(self, on_stop: Callable[[], None] = lambda: None) -> None:
        self.requested = threading.Event()
        self.signal_name: str | None = None
        self._on_stop = on_stop
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested.is_set():
            _write_stderr(f"steward: {name} received; already stopping, every part is being stopped in turn\n")
            return
        self.signal_name = name
        self.requested.set()
        self._on_stop()

    def wait(self) -> None:
        while not self.requested.wait(1.0):
            pass


def _write_stderr(text: str) -> None:
    # Inside a signal handler: no logging (its lock may be held by the interrupted code).
    try:
        os.write(2, text.encode())
    except OSError:
        pass


class DataFolderLock:
    """Held by the one ``steward run`` that uses a data folder."""

    NAME = "steward.pid"

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / self.NAME
        self._fd: int | None = None

    def acquire(self) -> DataFolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StartError(
                f"another steward (pid {holder}) is running on the data folder {self.path.parent} "
                f"(lock: {self.path}); stop it first, or give this one its own folder with STEWARD_DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        # The file stays: removing it would let a process that opened it before the
        # removal and one that creates it afresh both hold "the" lock.
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


# --- given servers that may not answer ------------------------------------------------------


def describe_dsn(dsn: str) -> str:
    """``postgresql://user@host:port/db`` without the password, for messages."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable)"
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    where = host if str(host).startswith("/") else f"{host}:{port}"
    return f"postgresql://{user}{where}/{params.get('dbname', '')}"


# A server that answers with one of these is on its way: wait for it.
_TRANSIENT_SERVER_MESSAGES = ("starting up", "shutting down", "in recovery mode", "too many clients")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # psycopg: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  x'
    for marker in ("FATAL:  ", "failed: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
            break
    return text.splitlines()[0].strip() if text else type(exc).__name__


def wait_for_database(dsn: str, *, timeout_s: float, stop: threading.Event, setting: str = "STEWARD_DATABASE_URL",
                      clock: Callable[[], float] = time.monotonic) -> None:
    """Return once the database accepts a connection; raise `StartError` when it refuses us
    for good (no such database, wrong password) or nothing answers within ``timeout_s``."""
    where = describe_dsn(dsn)
    deadline = clock() + timeout_s
    last_report = 0.0
    while True:
        if stop.is_set():
            raise Interrupted()
        left = deadline - clock()
        try:
            with psycopg.connect(dsn, connect_timeout=max(1, min(5, int(left) or 1))):
                return
        except psycopg.ProgrammingError as exc:  # not a connection string libpq understands
            raise StartError(f"{setting}: {_first_line(exc)}") from None
        except psycopg.OperationalError as exc:
            reason = _first_line(exc)
            answered = "FATAL:" in str(exc)
            if answered and not any(m in reason for m in _TRANSIENT_SERVER_MESSAGES):
                raise StartError(f"{setting} ({where}): the database refused the connection: {reason}") from None
        if clock() >= deadline:
            raise StartError(
                f"{setting} ({where}): no database answered within {timeout_s:g} s ({reason}); "
                "is the server running at that address?"
            )
        if clock() - last_report >= 5:
            log.warning("waiting for the database at %s (%s): %s", where, setting, reason)
            last_report = clock()
        stop.wait(min(1.0, max(0.0, deadline - clock())))


def wait_for_broker(endpoint: MqttEndpoint, *, timeout_s: float, stop: threading.Event,
                    setting: str = "STEWARD_MQTT_URL", clock: Callable[[], float] = time.monotonic) -> None:
    """Return once something accepts TCP connections at the broker's address; raise
    `StartError` when nothing does within ``timeout_s``. (Whether the broker lets the
    gateway in is seen by the gateway's own session: `broker_refused`.)"""
    deadline = clock() + timeout_s
    last_report = 0.0
    while True:
        if stop.is_set():
            raise Interrupted()
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=max(0.5, min(3.0, deadline - clock()))):
                return
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
        if clock() >= deadline:
            raise StartError(
                f"{setting} ({endpoint!r}): no MQTT broker answered at {endpoint.host}:{endpoint.port} "
                f"within {timeout_s:g} s ({reason}); is the broker running at that address?"
            )
        if clock() - last_report >= 5:
            log.warning("waiting for the MQTT broker at %s:%s (%s): %s", endpoint.host, endpoint.port, setting, reason)
            last_report = clock()
        stop.wait(min(1.0, max(0.0, deadline - clock())))


def broker_refused(endpoint: MqttEndpoint, setting: str = "STEWARD_MQTT_URL", answer: str | None = None) -> StartError:
    said = f"the broker said: {answer}" if answer else "the log above has the broker's answer"
    return StartError(
        f"{setting} ({endpoint!r}): the broker at {endpoint.host}:{endpoint.port} accepts connections but did not "
        "let the gateway in (login or subscription refused: check the user name and password in the URL and the "
        f"broker's ACL; {said})"
    )
