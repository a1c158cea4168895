"""``steward bench ingest --shards S --workers N``: drain a QoS 1 backlog with N worker
processes owning S shards of communities (detectors, closed loop and on-call on
with ``--detectors``), and measure rows/s and CPU seconds per message of each
process: every worker, the broker and PostgreSQL.

The workers start first and subscribe (their shard sessions exist), then are
paused with SIGSTOP while the backlog is queued and while the reference
(``mosquitto_sub``) drains its own copy, then resumed: the drain is timed from
SIGCONT to the last row committed, and each process's CPU is read from /proc
at both ends, so start-up costs are not counted. The same method as the
Node-RED peer's ``capacity.sh``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from steward.brokers import MosquittoBroker
from steward.publisher import publish_all

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of a process; with ``children``, plus its live children's and
    what its exited children left in cutime/cstime (PostgreSQL's backends)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = int(fields[11]) + int(fields[12])
    if children:
        total += int(fields[13]) + int(fields[14])
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    child = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(child[1]) == pid:
                total += int(child[11]) + int(child[12])
    return total / TICKS


def postmaster_pid(conn: psycopg.Connection) -> int | None:
    """The server's postmaster, when it runs on this machine (its data directory is readable)."""
    try:
        data = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
        return int(Path(data, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, psycopg.Error):
        return None


@dataclass
class ShardedDrain:
    seconds: float
    rows: int
    cpu: dict[str, float]  # process -> CPU seconds during the drain


def start_workers(
    n: int, broker: MosquittoBroker, dsn: str, *, shards: int, detectors: bool, batch_size: int, client_id: str,
    workdir: Path,
) -> list[subprocess.Popen[bytes]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Announce the workers before they start, so that each takes its share at once
        # instead of the first taking every shard and handing them back mid-drain.
        conn.execute("DELETE FROM shard_workers")
        for i in range(n):
            conn.execute(
                "INSERT INTO shard_workers (worker_id, seen_until) VALUES (%s, now() + interval '60 s')",
                (f"bench-w{i}",),
            )
    procs = []
    for i in range(n):
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env.update(
            STEWARD_MQTT_URL=broker.url,
            STEWARD_DATABASE_URL=dsn,
            STEWARD_MQTT_CLIENT_ID=client_id,
            STEWARD_SHARDS=str(shards),
            STEWARD_WORKER_ID=f"bench-w{i}",
            # Paused while the backlog is queued: the leases must outlast that.
            STEWARD_LEASE_TTL_S="600",
            STEWARD_DETECTORS="true" if detectors else "false",
            STEWARD_BATCH_SIZE=str(batch_size),
            STEWARD_DATA_DIR=str(workdir / f"w{i}"),
            STEWARD_ONCALL_LINK_SECRET="bench-link-secret-0123456789abcdef0123",
            # As docker-compose.cluster.yml: on-call runs in one process, not in every worker.
            STEWARD_RUN_ONCALL="true" if i == 0 else "false",
        )
        log = (workdir / f"{client_id}-w{i}.log").open("ab")
        procs.append(subprocess.Popen([sys.executable, "-m", "gateway"], env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def wait_ready(broker: MosquittoBroker, dsn: str, probes_by: dict[str, str], shards: int, timeout: float = 120) -> None:
    """Every shard owned and every community's session subscribed: a heartbeat from one
    registered device of each community (``probes_by``: community -> "type/device")
    stored. Probes are not part of the backlog's count."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        with psycopg.connect(dsn) as conn:
            owned = conn.execute("SELECT count(*) FROM shard_leases WHERE owner IS NOT NULL").fetchone()[0]  # type: ignore[index]
            have = {r[0] for r in conn.execute("SELECT DISTINCT community_id FROM events WHERE left(msg_id, 5) = 'probe'")}
        missing = [c for c in probes_by if c not in have]
        if owned == shards and not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not ready after {timeout}s: {owned} of {shards} shards, no probe from {missing}")
        attempt += 1
        probes = [
            (
                f"community/{c}/{probes_by[c]}/status",
                json.dumps({"id": f"probe{attempt}", "ts": int(time.time() * 1000), "type": "heartbeat"}).encode(),
            )
            for c in missing
        ]
        if probes:
            publish_all(broker.url, probes, client_id="bench-probe")
        time.sleep(0.5)  # polling the database; the deadline bounds it


def drain(
    procs: list[subprocess.Popen[bytes]], broker: MosquittoBroker, dsn: str, messages: int, timeout: float = 1800
) -> ShardedDrain:
    """Resume the paused workers and time them until ``messages`` rows are committed."""
    stream = "SELECT count(*) FROM events WHERE left(msg_id, 5) <> 'probe'"
    with psycopg.connect(dsn, autocommit=True) as conn:
        pg = postmaster_pid(conn)
        assert broker.process is not None
        before = {f"worker {i + 1}": cpu_seconds(p.pid) for i, p in enumerate(procs)}
        before["mosquitto"] = cpu_seconds(broker.process.pid)
        if pg:
            before["postgresql"] = cpu_seconds(pg, children=True)
        t0 = time.perf_counter()
        for p in procs:
            p.send_signal(signal.SIGCONT)
        while True:
            rows = conn.execute(stream).fetchone()[0]  # type: ignore[index]
            if rows >= messages or time.perf_counter() - t0 > timeout:
                break
            time.sleep(0.05)  # polling the row count; bounded by the deadline
        seconds = time.perf_counter() - t0
        after = {f"worker {i + 1}": cpu_seconds(p.pid) for i, p in enumerate(procs)}
        after["mosquitto"] = cpu_seconds(broker.process.pid)
        if pg:
            after["postgresql"] = cpu_seconds(pg, children=True)
    return ShardedDrain(seconds, rows, {k: after[k] - before[k] for k in before})


def batches(workdir: Path, client_id: str) -> tuple[int, int]:
    """(batches, events) the workers of a run stored, from what each logged when it stopped."""
    total_batches = total_events = 0
    for path in workdir.glob(f"{client_id}-w*.log"):
        for m in re.finditer(r"shard \d+: (\d+) batches stored, (\d+) events", path.read_text(errors="replace")):
            total_batches += int(m[1])
            total_events += int(m[2])
    return total_batches, total_events


def pause(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGSTOP)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGCONT)
        p.terminate()
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
