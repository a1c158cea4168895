"""``steward run`` as a real process, driven by signals in every state.

Each test starts the command, waits for a state (starting, running, stopping)
by watching the process and its data folder, sends signals, and then checks by
pid that nothing it started is left: not the private Mosquitto, not the
embedded PostgreSQL (which ``pg_ctl`` detaches, so it is no child of ours).
Also: a given database or broker that answers nothing fails the start within
the start timeout naming the setting; a second ``steward run`` on the same
data folder refuses to start; an open live stream does not hold the shutdown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from steward.brokers import MosquittoBroker, free_port
from tests.gateway.helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]
STOP_DEADLINE_S = 60  # a stop on a loaded machine; a hung stop exceeds it by far


class Run:
    """One ``steward run`` process; its output goes to files so that it never blocks on a pipe."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None, stdout_pipe: bool = False):
        self.data_dir = data_dir
        self.port = free_port()
        self.out_path = Path(tempfile.mkstemp(prefix="steward-run-out-")[1])
        self.err_path = Path(tempfile.mkstemp(prefix="steward-run-err-")[1])
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        full_env.update(STEWARD_DATA_DIR=str(data_dir), STEWARD_DEMO_BROKER="mosquitto", **(env or {}))
        self._err = self.err_path.open("wb")
        self._out = None if stdout_pipe else self.out_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "steward", "run", "--port", str(self.port), *args],
            cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._out, stderr=self._err,
        )
        self.pids: set[int] = set()  # everything seen running on its behalf

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def note_pids(self) -> set[int]:
        """Record the process's descendants and the embedded PostgreSQL it runs."""
        try:
            self.pids |= {p.pid for p in psutil.Process(self.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
        postmaster = self.postmaster_pid()
        if postmaster is not None and psutil.pid_exists(postmaster):
            self.pids.add(postmaster)
        return self.pids

    def signal(self, sig: signal.Signals) -> None:
        self.note_pids()
        self.process.send_signal(sig)

    def wait_exit(self, deadline_s: float = STOP_DEADLINE_S) -> int:
        try:
            code = self.process.wait(deadline_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"steward did not exit within {deadline_s} s:\n{self.stderr()[-3000:]}") from None
        self._err.close()
        if self._out:
            self._out.close()
        return code

    def assert_nothing_left(self) -> None:
        """No process it started still runs (zombies of the test's own children aside)."""
        def alive(pid: int) -> bool:
            try:
                return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        wait_for(lambda: not any(alive(p) for p in self.pids), 10, f"processes {sorted(self.pids)} to end")
        assert self.postmaster_pid() is None or not alive(self.postmaster_pid() or 0), "PostgreSQL still runs"

    def kill(self) -> None:
        """Test clean-up after a failure: nothing of this run may outlive the test."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in self.note_pids():
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """One data folder for the module: the embedded database is created once (initdb) and
    every test starts on it, one after the other, as a user's restarts would.
    Not pytest's tmp_path: as root the embedded server runs as its own user."""
    return Path(tempfile.mkdtemp(prefix="steward-lifecycle-")) / "data"


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


def start(runs: list[Run], data_dir: Path, *args: str, **kwargs: object) -> Run:
    run = Run(data_dir, *args, **kwargs)  # type: ignore[arg-type]
    runs.append(run)
    return run


def running(run: Run) -> None:
    wait_for(lambda: run.process.poll() is not None or ((h := run.health()) is not None and h["status"] == "ok"),
             120, "steward run to report ok")
    assert run.process.poll() is None, run.stderr()[-3000:]
    run.note_pids()
    assert run.postmaster_pid() in run.pids and len(run.pids) >= 2, run.pids  # PostgreSQL and Mosquitto


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "BrokenPipeError" not in text, text[-3000:]


# --- signals in every state ----------------------------------------------------------------


def test_sigterm_while_running_stops_every_child(runs: list[Run], data_dir: Path) -> None:
    run = start(runs, data_dir, "--no-simulator")
    running(run)
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0, run.stderr()[-3000:]
    run.assert_nothing_left()
    assert run.stdout().splitlines()[-1] == "stopped"
    no_traceback(run.stderr())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_starting_stops_what_had_started(runs: list[Run], data_dir: Path, sig: signal.Signals) -> None:
    # Started with a broker that does not answer (and a long start timeout), the process
    # sits in its start with the embedded database up: the signal reaches it there.
    run = start(runs, data_dir, "--no-simulator",
                env={"STEWARD_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}", "STEWARD_START_TIMEOUT_SECONDS": "300"})
    wait_for(lambda: "waiting for the MQTT broker" in run.stderr() or run.process.poll() is not None, 120,
             "the start to wait for the broker")
    assert run.postmaster_pid() is not None
    run.signal(sig)
    assert run.wait_exit() == 0, run.stderr()[-3000:]
    run.assert_nothing_left()
    assert f"stopping ({sig.name} while starting)" in run.stdout()
    no_traceback(run.stderr())


def test_ctrl_c_as_soon_as_the_database_starts(runs: list[Run], data_dir: Path) -> None:
    """The earliest moment something is worth leaving behind: the database has just appeared."""
    run = start(runs, data_dir)
    wait_for(lambda: run.postmaster_pid() is not None or run.process.poll() is not None, 120,
             "the embedded database to start")
    run.signal(signal.SIGINT)
    assert run.wait_exit() == 0, run.stderr()[-3000:]
    run.note_pids()
    run.assert_nothing_left()


def test_more_signals_while_stopping_do_not_cut_the_stop_short(runs: list[Run], data_dir: Path) -> None:
    run = start(runs, data_dir)  # with the simulated community publishing: there is something to drain
    running(run)
    run.signal(signal.SIGINT)
    wait_for(lambda: "stopping (committing" in run.stdout() or run.process.poll() is not None, 30, "the stop to begin")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        if run.process.poll() is None:
            run.signal(sig)
    assert run.wait_exit() == 0, run.stderr()[-3000:]
    run.assert_nothing_left()
    assert run.stdout().splitlines()[-1] == "stopped"


def test_ctrl_c_with_the_output_piped_to_a_tee_that_is_gone(runs: list[Run], data_dir: Path) -> None:
    """``steward run | tee log``: Ctrl-C ends ``tee`` first, and every later line meets a closed pipe."""
    run = start(runs, data_dir, "--no-simulator", stdout_pipe=True)
    assert run.process.stdout is not None
    wait_for(lambda: run.process.poll() is not None or run.health() is not None, 120, "the API to answer")
    for line in run.process.stdout:  # the banner, as tee would have shown it
        if line.startswith(b"Press Ctrl-C"):
            break
    running(run)
    run.process.stdout.close()  # tee is gone
    run.signal(signal.SIGINT)
    assert run.wait_exit() == 0, run.stderr()[-3000:]
    run.assert_nothing_left()
    no_traceback(run.stderr())


def test_after_a_sigkill_the_next_run_stops_what_the_killed_one_left(runs: list[Run], data_dir: Path) -> None:
    """SIGKILL cannot be handled: its children live on. The next run on the folder takes
    them over (the database) or stops them (the broker, which would share its store)."""
    killed = start(runs, data_dir, "--no-simulator")
    running(killed)
    killed.signal(signal.SIGKILL)
    killed.wait_exit()
    left = {pid for pid in killed.pids if psutil.pid_exists(pid)}
    assert killed.postmaster_pid() in left and len(left) >= 2, (left, killed.pids)  # what SIGKILL leaves
    mosquitto = left - {killed.postmaster_pid()}
    run = start(runs, data_dir, "--no-simulator")
    running(run)
    assert not any(psutil.pid_exists(pid) for pid in mosquitto), "the killed run's Mosquitto still runs"
    assert run.postmaster_pid() == killed.postmaster_pid()  # the database was taken over, not started twice
    assert "a killed run left behind" in run.stderr()
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0
    run.pids |= left
    run.assert_nothing_left()


# --- one run per data folder -----------------------------------------------------------------


def test_a_second_run_on_the_same_data_folder_refuses_naming_the_first(runs: list[Run], data_dir: Path) -> None:
    first = start(runs, data_dir, "--no-simulator")
    running(first)
    postmaster = first.postmaster_pid()
    second = start(runs, data_dir, "--no-simulator")
    assert second.wait_exit() == 1
    message = second.stderr()
    assert f"pid {first.pid}" in message and str(data_dir) in message and "STEWARD_DATA_DIR" in message, message
    no_traceback(message)
    # The first goes on undisturbed: same database server, still healthy.
    assert first.postmaster_pid() == postmaster and psutil.pid_exists(postmaster or 0)
    assert (h := first.health()) is not None and h["status"] == "ok"
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    first.assert_nothing_left()


# --- shutdown with a control-room page open --------------------------------------------------------


def test_shutdown_with_a_live_stream_open_is_prompt(runs: list[Run], data_dir: Path) -> None:
    run = start(runs, data_dir, "--no-simulator")
    running(run)
    password = (data_dir / "admin-password").read_text().strip()
    form = f"username=admin&password={password}".encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/auth/token", data=form, timeout=10) as r:
        token = json.loads(r.read())["access_token"]
    stream = urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{run.port}/stream", headers={"Authorization": f"Bearer {token}"}), timeout=60)
    assert stream.readline().startswith(b"retry:")  # the page is connected
    ended = threading.Event()

    def read_to_the_end() -> None:
        try:
            while stream.readline():
                pass
        except OSError:
            pass
        ended.set()

    threading.Thread(target=read_to_the_end, daemon=True).start()
    began = time.monotonic()
    run.signal(signal.SIGINT)
    assert run.wait_exit() == 0, run.stderr()[-3000:]
    took = time.monotonic() - began
    assert ended.wait(5), "the stream was not closed"
    run.assert_nothing_left()
    # The stream ended by itself: the API neither waited out its grace nor gave up on it.
    assert "did not stop" not in run.stderr() and "timeout graceful shutdown" not in run.stderr(), run.stderr()
    assert took < 10, f"the stop took {took:.1f} s with a live stream open"  # 12 s when it waited out a 10 s join
    print(f"stop with a live stream open: {took:.1f} s")


# --- given servers that answer nothing ----------------------------------------------------------------


def test_a_database_that_answers_nothing_fails_the_start_naming_the_setting(runs: list[Run]) -> None:
    port = free_port()
    run = start(runs, Path(tempfile.mkdtemp(prefix="steward-nodb-")), "--no-simulator",
                env={"STEWARD_DATABASE_URL": f"postgresql://steward:s3cret@127.0.0.1:{port}/steward",
                     "STEWARD_START_TIMEOUT_SECONDS": "3"})
    assert run.wait_exit(60) == 1
    err = run.stderr()
    assert "STEWARD_DATABASE_URL" in err and f"127.0.0.1:{port}" in err and "within 3 s" in err, err
    assert "s3cret" not in err + run.stdout()
    no_traceback(err)
    run.note_pids()
    run.assert_nothing_left()


def test_a_storage_mode_the_database_cannot_have_fails_in_one_line(runs: list[Run], data_dir: Path) -> None:
    run = start(runs, data_dir, "--no-simulator", env={"STEWARD_STORAGE_MODE": "timescale"})  # embedded: no TimescaleDB
    assert run.wait_exit() == 1
    err = run.stderr()
    assert "steward: could not start:" in err and "timescale" in err, err
    no_traceback(err)
    run.assert_nothing_left()


def test_a_database_that_refuses_us_fails_at_once(runs: list[Run], admin_dsn: str) -> None:
    from steward.databases import with_database

    dsn = with_database(admin_dsn, "steward_no_such_database")
    run = start(runs, Path(tempfile.mkdtemp(prefix="steward-nodb-")), "--no-simulator",
                env={"STEWARD_DATABASE_URL": dsn, "STEWARD_START_TIMEOUT_SECONDS": "300"})
    assert run.wait_exit(60) == 1  # not after the 300 s: the server said no
    err = run.stderr()
    assert "STEWARD_DATABASE_URL" in err and '"steward_no_such_database" does not exist' in err, err
    no_traceback(err)


def test_a_broker_that_answers_nothing_fails_the_start_naming_the_setting(runs: list[Run],
                                                                         database_url: str) -> None:
    port = free_port()
    run = start(runs, Path(tempfile.mkdtemp(prefix="steward-nomqtt-")), "--no-simulator",
                env={"STEWARD_DATABASE_URL": database_url, "STEWARD_START_TIMEOUT_SECONDS": "3",
                     "STEWARD_MQTT_URL": f"mqtt://steward-gateway:s3cret@127.0.0.1:{port}"})
    assert run.wait_exit(60) == 1
    err = run.stderr()
    assert "STEWARD_MQTT_URL" in err and f"127.0.0.1:{port}" in err and "within 3 s" in err, err
    assert "s3cret" not in err + run.stdout()
    no_traceback(err)


def test_a_broker_that_refuses_the_login_fails_the_start_naming_the_setting(
        runs: list[Run], database_url: str, tmp_path: Path) -> None:
    with MosquittoBroker(workdir=tmp_path / "mqtt", users={"steward-gateway": "right"},
                         superusers=("steward-gateway",)) as broker:
        run = start(runs, Path(tempfile.mkdtemp(prefix="steward-badlogin-")), "--no-simulator",
                    env={"STEWARD_DATABASE_URL": database_url, "STEWARD_START_TIMEOUT_SECONDS": "300",
                         "STEWARD_MQTT_URL": f"mqtt://steward-gateway:wrong@127.0.0.1:{broker.port}"})
        assert run.wait_exit(120) == 1  # not after the 300 s: the broker said no
    err = run.stderr()
    assert "STEWARD_MQTT_URL" in err and "did not let the gateway in" in err, err
    assert "the broker said: connection refused: Not authorized" in err, err
    assert "wrong@" not in err
    no_traceback(err)
