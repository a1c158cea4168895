"""``steward run`` as a new user starts it: embedded PostgreSQL, a private broker,
the simulated community; events arrive, Ctrl-C stops it cleanly, and a second
start finds the data of the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from steward.brokers import free_port
from tests.gateway.helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    log: Path  # its stdout and stderr, read while it runs

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(data_dir: Path, port: int, broker: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
    env.update(STEWARD_DATA_DIR=str(data_dir), STEWARD_DEMO_BROKER=broker)
    handle, name = tempfile.mkstemp(prefix="run-", suffix=".log", dir=data_dir.parent)
    with os.fdopen(handle, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "steward", "run", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    return Run(process, Path(name))


def started(run: Run) -> bool:
    """The banner is out: the start is over (the API answers before the simulator has started)."""
    return "Steward is running." in run.output()


def stop(run: Run) -> str:
    run.process.send_signal(signal.SIGINT)
    run.process.wait(timeout=60)
    return run.output()


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_steward_run_starts_ingests_stops_and_keeps_its_data(broker: str) -> None:
    # Not pytest's tmp_path: as root the embedded server runs as its own user, and
    # pytest keeps its temporary folders private to root.
    tmp_path = Path(tempfile.mkdtemp(prefix="steward-run-"))
    port = free_port()
    run = start(tmp_path / "data", port, broker)
    try:
        wait_for(lambda: started(run), 120, "the start to finish")
        wait_for(
            lambda: (h := health(port)) is not None and h["last_commit_at"] is not None,
            120,
            "the simulated community's first events to be committed",
        )
        h = health(port)
        assert h and h["status"] == "ok" and h["broker_connected"] and h["storage_mode"] == "plain"
        # On-call action links are switched on (the stack generated their secret): a
        # forged link is refused as forged, not answered "links are not enabled" (404).
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/oncall/links/{'A' * 40}.{'B' * 43}", timeout=5)
        assert refused.value.code in (400, 403), refused.value.read()
    finally:
        output = stop(run)
    assert run.process.returncode == 0, output
    assert "Steward is running." in output and f"http://127.0.0.1:{port}/" in output
    assert "stopped" in output.splitlines()[-1]
    password = (tmp_path / "data" / "admin-password").read_text().strip()
    assert f"admin / {password}" in output

    run = start(tmp_path / "data", port, broker)  # the same data folder: nothing is initialised again
    try:
        wait_for(lambda: started(run), 120, "the second start to finish")
        assert (h := health(port)) is not None and h["database_reachable"]
    finally:
        output = stop(run)
    assert run.process.returncode == 0, output
    assert f"admin / {password}" in output
