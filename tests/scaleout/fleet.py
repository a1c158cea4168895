"""Worker processes, a registered fleet and a steady stream with labelled faults,
shared by the scale-out tests (several workers on one database and one broker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from domain.devices import Device, DeviceType
from ingest.registry import upsert_devices
from steward.publisher import publish_all
from tests.gateway.helpers import count, now_ms, wait_for

ROOT = Path(__file__).resolve().parents[2]
COMMUNITIES = [f"sc{i}" for i in range(8)]
METERS_PER_COMMUNITY = 10
PRESS_GAP_MS = 20_000  # three presses within alarm_press_window_s (120 s): one entrapment


def register_fleet(dsn: str) -> None:
    devices = []
    for c in COMMUNITIES:
        devices += [
            Device(device_id=f"{c}-m{i}", community_id=c, device_type=DeviceType.WATER, kind="meter", building_id="b1")
            for i in range(METERS_PER_COMMUNITY)
        ]
        devices.append(Device(device_id=f"{c}-lift", community_id=c, device_type=DeviceType.ELEVATOR, kind="lift"))
        devices.append(Device(device_id=f"{c}-hub", community_id=c, device_type=DeviceType.ELDERLY, kind="home_hub"))
    with psycopg.connect(dsn) as conn:
        upsert_devices(conn, devices)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Workers:
    """``python -m gateway`` processes with detectors, closed loop and on-call on."""

    mqtt_url: str
    database_url: str
    workdir: Path
    shards: int = 4
    lease_ttl_s: float = 2.0
    running: dict[str, Worker] = field(default_factory=dict)
    started: int = 0

    def start(self) -> Worker:
        self.started += 1
        name = f"w{self.started}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env.update(
            STEWARD_MQTT_URL=self.mqtt_url,
            STEWARD_DATABASE_URL=self.database_url,
            STEWARD_MQTT_CLIENT_ID="steward-inst-test",
            STEWARD_SHARDS=str(self.shards),
            STEWARD_LEASE_TTL_S=str(self.lease_ttl_s),
            STEWARD_WORKER_ID=name,
            STEWARD_BATCH_SIZE="500",
            STEWARD_DATA_DIR=str(self.workdir / name),
            STEWARD_ONCALL_LINK_SECRET="scaleout-test-secret-0123456789abcdef",
        )
        log = self.workdir / f"{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        worker = self.running[name] = Worker(name, process, log)
        return worker

    def owners(self) -> dict[int, str | None]:
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT shard, CASE WHEN expires_at > now() THEN owner END FROM shard_leases ORDER BY shard"
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def owned_by(self, name: str) -> list[int]:
        return [s for s, o in self.owners().items() if o == name]

    def wait_balanced(self, timeout: float = 90) -> None:
        """Every shard held by a running worker, each worker at its fair share."""

        def balanced() -> bool:
            owners = self.owners()
            if len(owners) != self.shards or any(o not in self.running for o in owners.values()):
                return False
            per = [list(owners.values()).count(n) for n in self.running]
            return max(per) - min(per) <= 1
        wait_for(balanced, timeout, f"{self.shards} shards balanced over {sorted(self.running)}", interval=0.2)

    def kill(self, name: str) -> None:
        worker = self.running.pop(name)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)

    def stop(self, name: str) -> None:
        worker = self.running.pop(name)
        worker.process.terminate()
        worker.process.wait(60)

    def close(self) -> None:
        for worker in list(self.running.values()):
            worker.process.send_signal(signal.SIGCONT)
            worker.process.terminate()
        for worker in list(self.running.values()):
            try:
                worker.process.wait(30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        self.running.clear()


def flow(community: str, i: int, base_ms: int) -> tuple[str, bytes]:
    device = f"{community}-m{i % METERS_PER_COMMUNITY}"
    body = {"id": f"f{i}", "ts": base_ms + i, "type": "flow", "flow_lpm": (i % 40) / 10, "total_l": 100 + i}
    return f"community/{community}/water/{device}/telemetry", json.dumps(body).encode()


def press(community: str, k: int, base_ms: int) -> tuple[str, bytes]:
    body = {"id": f"press{k}", "ts": base_ms + k * PRESS_GAP_MS, "type": "alarm_button", "floor": 3}
    return f"community/{community}/elevator/{community}-lift/event", json.dumps(body).encode()


def sos(community: str, base_ms: int) -> tuple[str, bytes]:
    body = {"id": "sos1", "ts": base_ms + 30_000, "type": "sos"}
    return f"community/{community}/elderly/{community}-hub/event", json.dumps(body).encode()


class Stream:
    """Flow readings over every community at a bounded pace, until stopped; faults
    (alarm presses, an SOS) injected between chunks when asked."""

    def __init__(self, mqtt_url: str, chunk: int = 80, pause_s: float = 0.05) -> None:
        self.mqtt_url = mqtt_url
        self.base_ms = now_ms() - 120_000
        self.chunk = chunk
        self.pause_s = pause_s
        self.published = 0  # messages acknowledged by the broker
        self.extra: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Stream:
        self._thread.start()
        return self

    def inject(self, messages: list[tuple[str, bytes]]) -> None:
        with self._lock:
            self.extra += messages

    def _messages(self) -> Iterator[tuple[str, bytes]]:
        i = 0
        while not self._stop.is_set():
            for _ in range(self.chunk):
                yield flow(COMMUNITIES[i % len(COMMUNITIES)], i, self.base_ms)
                i += 1
            with self._lock:
                extra, self.extra = self.extra, []
            yield from extra
            self.flows = i
            time.sleep(self.pause_s)  # the pace of the fleet, not a wait for a condition

    def _run(self) -> None:
        try:
            self.published = publish_all(self.mqtt_url, self._messages(), client_id="scaleout-fleet", timeout_s=900)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(120)
        if self.error:
            raise self.error
        with self._lock:
            assert not self.extra, "injected messages were not published"
        return self.published


def wait_stored(dsn: str, total: int, timeout: float) -> None:
    wait_for(lambda: count(dsn, "SELECT count(*) FROM events") >= total, timeout, f"{total} events stored", interval=0.5)


def wait_subscribed(mqtt_url: str, dsn: str, timeout: float = 90) -> None:
    """Every community's shard session subscribed: a probe published to each is stored.
    A probe published before its subscription is never delivered, so they are sent
    again until each is in (they are not part of the stream's count)."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        with psycopg.connect(dsn) as conn:
            have = {r[0] for r in conn.execute("SELECT DISTINCT community_id FROM events WHERE left(msg_id, 5) = 'probe'")}
        missing = [c for c in COMMUNITIES if c not in have]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no shard session subscribed to {missing} after {timeout}s")
        attempt += 1
        probes = [
            (
                f"community/{c}/elderly/{c}-hub/status",
                json.dumps({"id": f"probe{attempt}", "ts": now_ms() - 1000, "type": "heartbeat"}).encode(),
            )
            for c in missing
        ]
        publish_all(mqtt_url, probes, client_id="scaleout-probe")
        try:
            wait_for(
                lambda: count(dsn, "SELECT count(DISTINCT community_id) FROM events WHERE left(msg_id, 5) = 'probe'")
                >= len(COMMUNITIES),
                2,
                "probes",
            )
        except AssertionError:
            continue


STREAM = "SELECT count(*) FROM events WHERE left(msg_id, 5) <> 'probe'"
DISTINCT = "SELECT count(DISTINCT (device_id, msg_id)) FROM events WHERE left(msg_id, 5) <> 'probe'"
EXPECTED_INCIDENTS = sorted(
    [("entrapment", f"{c}-lift", 1) for c in COMMUNITIES] + [("sos", f"{c}-hub", 1) for c in COMMUNITIES]
)


def fault_incidents(dsn: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT condition, scope_id, count(*) FROM incidents WHERE condition IN ('entrapment', 'sos') "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()


def start_flowing(workers: Workers, stream: Stream, mqtt_url: str, dsn: str) -> None:
    """Three workers with their shards balanced and subscribed, the stream flowing, and
    every lift's first alarm press injected."""
    for _ in range(3):
        workers.start()
    workers.wait_balanced()
    wait_subscribed(mqtt_url, dsn)
    stream.start()
    wait_for(lambda: count(dsn, STREAM) >= 500, 60, "the stream to flow")
    stream.inject([press(c, 0, stream.base_ms) for c in COMMUNITIES])


def check_every_message_once_and_every_incident_once(dsn: str, stream: Stream) -> None:
    """Stop the stream; every published message stored once, nothing dead-lettered, each
    fault scenario's incident raised once."""
    total = stream.stop()
    wait_stored(dsn, total + count(dsn, "SELECT count(*) FROM events WHERE left(msg_id, 5) = 'probe'"), 120)
    assert count(dsn, STREAM) == total, "a message was lost or stored twice"
    assert count(dsn, DISTINCT) == total
    assert count(dsn, "SELECT count(*) FROM dead_letters") == 0
    # Stored is not yet decided: a lift's last press waits out its reorder window
    # (allowed_lateness_s, by receive time) after its commit, and a takeover's resume
    # moves that end by the time the shard was ownerless.
    wait_for(lambda: len(fault_incidents(dsn)) >= len(EXPECTED_INCIDENTS), 60, "every fault scenario's incident to open")
    assert fault_incidents(dsn) == EXPECTED_INCIDENTS, "an incident was missed, split or raised twice"
