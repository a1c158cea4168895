"""``steward bench soak``: the gateway with its detectors under a steady live load for
minutes, and its resident memory (RSS) sampled all along.

A detector engine that keeps something per message (a timer entry, a key) grows
with traffic, not with devices; this command shows whether the gateway's memory
levels off once every device has been seen. It starts a private Mosquitto and a
throw-away database, runs ``steward gateway`` as its own process (detectors,
closed loop and on-call hooks on, as ``steward run`` has them), publishes live
traffic (event time = now) from ``--devices`` devices at ``--rate`` messages a
second for ``--minutes``, and reads the gateway's RSS from /proc every
``--sample-s`` seconds. It prints one row a minute and the slope of RSS over the
second half of the run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from domain.devices import Device, DeviceType
from ingest.migrate import migrate
from ingest.registry import upsert_devices
from steward.brokers import MosquittoBroker
from steward.databases import create_database, drop_database
from steward.publisher import publish_all

console = Console()
FAMILIES = [(DeviceType.WATER, "meter"), (DeviceType.ELEVATOR, "lift"), (DeviceType.ACCESS, "entrance"),
            (DeviceType.ELDERLY, "home_hub")]


def soak_devices(n: int) -> list[Device]:
    return [Device(device_id=f"soak-{t}-{i:05d}", community_id=f"sc{i % 4}", device_type=t, kind=kind,
                   building_id=f"sb{i % 40}", unit_id=f"su{i:05d}")
            for i in range(n) for t, kind in [FAMILIES[i % len(FAMILIES)]]]


def live_traffic(devices: list[Device], rate: float, seconds: float, stop: threading.Event) -> Iterator[tuple[str, bytes]]:
    """Ordinary live traffic, ``rate`` messages a second, stamped now: each device cycles
    through what it normally says (a meter's draws starting and stopping, a lift's rides,
    a door's passages, a resident moving about, heartbeats), so detector timers are set,
    moved and cleared all the time, but nothing is an incident."""
    rng = random.Random(7)
    step = [0] * len(devices)
    start = time.monotonic()
    sent = 0
    i = 0
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            return
        due = int(elapsed * rate)
        if sent >= due:
            time.sleep(min(0.01, (sent + 1) / rate - elapsed))
            continue
        d = devices[i % len(devices)]
        k = step[i % len(devices)]
        step[i % len(devices)] += 1
        i += 1
        sent += 1
        now_ms = int(time.time() * 1000)
        base = {"id": f"{now_ms:x}-{k}", "ts": now_ms}
        if k % 10 == 9:
            body, stream = {**base, "type": "heartbeat", "battery": 80}, "status"
        elif d.device_type is DeviceType.WATER:
            body, stream = {**base, "type": "flow", "flow_lpm": 3.0 if k % 2 else 0.0, "total_l": 1000 + k}, "telemetry"
        elif d.device_type is DeviceType.ELEVATOR:
            moving = k % 2 == 0
            body = {**base, "type": "status", "floor": 1 + k % 8, "moving": moving, "door": "closed" if moving else "open",
                    "door_zone": not moving, "occupied": True, "vibration_mg": round(rng.uniform(7, 14), 1) if moving else 1.0}
            stream = "telemetry"
        elif d.device_type is DeviceType.ACCESS:
            phase = k % 3
            if phase == 0:
                body = {**base, "type": "access", "result": "granted", "credential": f"card-{rng.randint(1, 500)}",
                        "method": "card", "role": "resident"}
            else:
                body = {**base, "type": "door", "state": "open" if phase == 1 else "closed"}
            stream = "event"
        else:
            body, stream = {**base, "type": "motion", "room": ("kitchen", "living_room", "bathroom", "hall")[k % 4]}, "event"
        yield (f"community/{d.community_id}/{d.device_type}/{d.device_id}/{stream}",
               json.dumps(body, separators=(",", ":")).encode())


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MiB per minute) of (seconds, MiB) points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return 60 * sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def soak(
    minutes: Annotated[float, typer.Option(min=0.5, help="how long to publish")] = 10.0,
    rate: Annotated[float, typer.Option(min=1, help="messages a second, stamped now")] = 2000.0,
    devices: Annotated[int, typer.Option(min=4, help="distinct devices (each says something every devices/rate s)")] = 2000,
    detectors: Annotated[bool, typer.Option(help="run the detectors (and hooks) in the gateway")] = True,
    sample_s: Annotated[float, typer.Option(min=1, help="seconds between RSS samples")] = 10.0,
    database_url: Annotated[str | None, typer.Option(help="admin DSN for a throw-away database (default: local PostgreSQL)")] = None,
) -> None:
    """Publish live traffic for minutes at a fixed rate and sample the gateway's RSS."""
    if not MosquittoBroker.available():
        console.print("[red]needs the mosquitto binary (Debian: mosquitto)[/red]")
        raise typer.Exit(2)
    admin = database_url or os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    workdir = Path(tempfile.mkdtemp(prefix="steward-soak-"))
    dsn = create_database(admin, "steward_soak")
    broker = MosquittoBroker(workdir=workdir / "mqtt").start()
    gateway = None
    try:
        migrate(dsn)
        fleet = soak_devices(devices)
        with psycopg.connect(dsn) as conn:
            upsert_devices(conn, fleet)
        env = {**os.environ, "STEWARD_DATABASE_URL": dsn, "STEWARD_MQTT_URL": broker.url,
               "STEWARD_DETECTORS": "true" if detectors else "false", "STEWARD_DATA_DIR": str(workdir / "data")}
        log = open(workdir / "gateway.log", "wb")  # noqa: SIM115  (closed with the process)
        gateway = subprocess.Popen([sys.executable, "-m", "steward", "gateway"], env=env, stdout=log, stderr=subprocess.STDOUT)
        _wait_connected(dsn, broker.url, gateway, workdir)
        stop = threading.Event()
        samples: list[tuple[float, float, int]] = []  # (seconds, RSS MiB, events stored)
        t0 = time.monotonic()

        def sample() -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not stop.wait(sample_s):
                    mib = rss_mib(gateway.pid)  # type: ignore[union-attr]
                    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
                    if mib is not None:
                        samples.append((time.monotonic() - t0, mib, int(stored)))

        sampler = threading.Thread(target=sample, daemon=True)
        start_rss = rss_mib(gateway.pid) or 0.0
        sampler.start()
        with console.status(f"publishing {rate:,.0f} msg/s from {devices:,} devices for {minutes:g} min"):
            published = publish_all(broker.url, live_traffic(fleet, rate, minutes * 60, stop), max_in_flight=1000,
                                    timeout_s=minutes * 60 + 600)
        time.sleep(sample_s + 1)
        stop.set()
        sampler.join(timeout=30)
        _report(samples, start_rss, published, rate, minutes, devices, detectors)
    finally:
        if gateway is not None:
            gateway.terminate()
            try:
                gateway.wait(60)
            except subprocess.TimeoutExpired:
                gateway.kill()
        broker.stop()
        drop_database(admin, dsn)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_connected(dsn: str, url: str, gateway: subprocess.Popen[bytes], workdir: Path) -> None:
    """Until a probe message is stored (the gateway is subscribed and committing)."""
    probe = soak_devices(4)[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if gateway.poll() is not None:
            raise RuntimeError(f"the gateway exited: {(workdir / 'gateway.log').read_text()[-2000:]}")
        now_ms = int(time.time() * 1000)
        body = json.dumps({"id": f"probe-{now_ms}", "ts": now_ms, "type": "heartbeat"}).encode()
        publish_all(url, [(f"community/{probe.community_id}/{probe.device_type}/{probe.device_id}/status", body)])
        time.sleep(1.0)
        with psycopg.connect(dsn) as conn:
            if conn.execute("SELECT count(*) FROM events").fetchone()[0]:
                return
    raise RuntimeError("the gateway did not store a probe message within 2 minutes")


def _report(samples: list[tuple[float, float, int]], start_rss: float, published: int, rate: float, minutes: float,
            devices: int, detectors: bool) -> None:
    table = Table(title=f"gateway RSS, detectors {'on' if detectors else 'off'}")
    for col in ("minute", "RSS MiB", "events stored", "stored msg/s"):
        table.add_column(col, justify="right")
    last_stored, last_t = 0, 0.0
    for minute in range(1, int(minutes) + 2):
        row = [s for s in samples if s[0] <= minute * 60]
        if not row:
            continue
        t, mib, stored = row[-1]
        table.add_row(str(minute), f"{mib:.1f}", f"{stored:,}", f"{(stored - last_stored) / max(t - last_t, 1):,.0f}")
        last_stored, last_t = stored, t
    console.print(table)
    half = [(t, mib) for t, mib, _ in samples if t >= minutes * 30]
    stored = samples[-1][2] if samples else 0
    peak = max((mib for _, mib, _ in samples), default=0.0)
    console.print(f"published {published:,} messages ({published / (minutes * 60):,.0f} msg/s asked {rate:,.0f}), "
                  f"stored {stored:,}; {devices:,} devices")
    console.print(f"RSS: {start_rss:.1f} MiB before the load, {samples[-1][1] if samples else 0:.1f} MiB at the end, "
                  f"peak {peak:.1f} MiB; slope over the second half {_slope(half):+.2f} MiB/min")
    console.print(f"machine: {os.cpu_count()} cores, {dt.date.today().isoformat()}")


def register(app: typer.Typer) -> None:
    app.command("soak")(soak)
