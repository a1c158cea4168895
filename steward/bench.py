"""``steward bench ingest``: drain a QoS 1 backlog through the gateway, against
``mosquitto_sub`` draining the same backlog as the reference."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from domain.devices import Device, DeviceType
from gateway.endpoint import MqttEndpoint
from gateway.service import Gateway, GatewayConfig, tune_garbage_collector
from ingest.migrate import migrate
from ingest.registry import upsert_devices
from steward.brokers import MosquittoBroker
from steward.databases import EmbeddedPostgres, create_database, drop_database, reachable
from steward.publisher import publish_all

app = typer.Typer(no_args_is_help=True)
console = Console()
LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

_GATEWAY_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GatewayConfig)}

FAMILIES = [
    (DeviceType.WATER, "meter"),
    (DeviceType.ELEVATOR, "lift"),
    (DeviceType.ACCESS, "entrance"),
    (DeviceType.ELDERLY, "home_hub"),
]


def bench_devices(n: int) -> list[Device]:
    out = []
    for i in range(n):
        device_type, kind = FAMILIES[i % len(FAMILIES)]
        out.append(
            Device(
                device_id=f"bench-{device_type}-{i:05d}",
                community_id=f"bc{i % 10}",
                device_type=device_type,
                kind=kind,
                building_id=f"b{i % 40}",
            )
        )
    return out


def _uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 (RFC 9562: 48-bit Unix milliseconds, then random bits), a common device message id."""
    n = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def bench_messages(devices: list[Device], n: int, seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """≈200-byte payloads of every family, in event-time order.

    Each carries a UUIDv7 message id, an RFC 3339 event time with milliseconds
    and its own device id, as many devices send them, and each schema's full set
    of fields: the mean payload is about 200 bytes (the benchmark prints it).
    """
    rng = random.Random(seed)
    start_ms = int((dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).timestamp() * 1000)
    for i in range(n):
        d = devices[i % len(devices)]
        ts = start_ms + i * 5
        stamp = dt.datetime.fromtimestamp(ts / 1000, dt.timezone.utc).isoformat(timespec="milliseconds")
        base = {"id": _uuid7(ts, rng), "ts": stamp.replace("+00:00", "Z"), "device_id": d.device_id}
        if d.device_type is DeviceType.WATER:
            body = {
                **base,
                "type": "flow",
                "flow_lpm": round(rng.uniform(0, 20), 2),
                "total_l": round(1000 + i * 0.37, 2),
            }
            stream = "telemetry"
        elif d.device_type is DeviceType.ELEVATOR:
            body = {
                **base,
                "type": "status",
                "floor": rng.randint(1, 30),
                "moving": True,
                "door": "closed",
                "door_zone": False,
                "occupied": True,
                "direction": "up",
                "speed_mps": round(rng.uniform(0.5, 2.5), 2),
                "load_pct": round(rng.uniform(0, 100), 1),
                "vibration_mg": round(rng.uniform(2, 15), 1),
            }
            stream = "telemetry"
        elif d.device_type is DeviceType.ACCESS:
            body = {
                **base,
                "type": "access",
                "result": "granted",
                "credential": f"card-{rng.randint(1, 5000):06d}",
                "method": "card",
                "role": "resident",
            }
            stream = "event"
        else:
            body = {
                **base,
                "type": "door",
                "door": rng.choice(["front_door", "bedroom", "bathroom", "balcony"]),
                "state": rng.choice(["open", "closed"]),
            }
            stream = "event"
        yield (
            f"community/{d.community_id}/{d.device_type}/{d.device_id}/{stream}",
            json.dumps(body, separators=(",", ":")).encode(),
        )


def simulated_backlog(devices: int, messages: int) -> tuple[list[Device], Iterator[tuple[str, bytes]]]:
    """The first ``messages`` messages of a simulated community of about ``devices``
    devices, over the day that ends now (incidents and hard negatives included)."""
    from itertools import islice

    from simulators import fleet_for_devices
    from simulators.engine import Simulation

    fleet = fleet_for_devices(7, devices)
    now = dt.datetime.now(dt.timezone.utc)
    simulation = Simulation(fleet, seed=7, start=now - dt.timedelta(days=1), duration=dt.timedelta(days=1))
    return list(fleet.devices), ((m.topic, m.payload) for m in islice(simulation.messages(), messages))


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start_workers(
    n: int, broker: MosquittoBroker, dsn: str, batch_size: int, max_in_flight: int, db_writers: int, run: int
) -> list[subprocess.Popen[bytes]]:
    """``python -m gateway`` processes sharing one subscription (storage only)."""
    procs = []
    for i in range(n):
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env.update(
            STEWARD_MQTT_URL=broker.url,
            STEWARD_DATABASE_URL=dsn,
            STEWARD_MQTT_CLIENT_ID=f"steward-bench-gateway-{run}-{i}",
            STEWARD_MQTT_SHARE_GROUP=f"bench{run}",
            STEWARD_DETECTORS="false",
            STEWARD_BATCH_SIZE=str(batch_size),
            STEWARD_MAX_IN_FLIGHT=str(max_in_flight),
            STEWARD_DB_WRITERS=str(db_writers),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gateway"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    return procs


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(30)


@dataclasses.dataclass
class _Run:
    reference_s: float
    gateway_s: float
    rows: int
    distinct: int
    dead: int

    def ratio(self, messages: int) -> float:
        return (self.rows / self.gateway_s) / (messages / self.reference_s)


def _drain_gateway(
    config: GatewayConfig, sink: object, messages: int, workers: int, run: int, broker: MosquittoBroker
) -> float:
    """Seconds from starting the gateway until the whole backlog is committed."""
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as progress:
        task = progress.add_task("committed", total=messages)
        if workers == 1:
            gw = Gateway(config, sink=sink)  # type: ignore[arg-type]
            gw.start()
            while not gw.wait_committed(messages, timeout=1.0) and time.perf_counter() - t0 < 1800:
                progress.update(task, completed=gw.committed)
            elapsed = time.perf_counter() - t0
            progress.update(task, completed=gw.committed)
            gw.stop()
            return elapsed
        procs = _start_workers(
            workers, broker, config.database_url, config.batch_size, config.max_in_flight, config.writers, run
        )
        with psycopg.connect(config.database_url, autocommit=True) as conn:
            while True:
                stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
                progress.update(task, completed=stored)
                if stored >= messages or time.perf_counter() - t0 > 1800:
                    break
                time.sleep(0.2)  # polling the row count; bounded by the deadline above
        elapsed = time.perf_counter() - t0
        _stop_workers(procs)
        return elapsed


def _admin_dsn(explicit: str | None, workdir: Path) -> tuple[str, EmbeddedPostgres | None]:
    if explicit:
        return explicit, None
    if reachable(LOCAL_DSN):
        return LOCAL_DSN, None
    server = EmbeddedPostgres(workdir / "postgres")
    return server.start(), server


def _mosquitto_sub(port: int, *, count: int | None, client_id: str) -> list[str]:
    cmd = [
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-q",
        "1",
        "-c",
        "-i",
        client_id,
        "-t",
        "community/#",
    ]
    return cmd + (["-C", str(count)] if count else ["-W", "1"])


@app.command()
def ingest(
    messages: Annotated[int, typer.Option(help="backlog size")] = 200_000,
    devices: Annotated[int, typer.Option(help="distinct devices")] = 1_000,
    batch_size: Annotated[int, typer.Option(min=1, help="gateway batch size")] = _GATEWAY_DEFAULTS["batch_size"],
    max_in_flight: Annotated[int, typer.Option(min=1, max=65_535, help="gateway in-flight cap")] = _GATEWAY_DEFAULTS[
        "max_in_flight"
    ],
    db_writers: Annotated[
        int, typer.Option(min=1, max=8, help="database connections per gateway (1 with --detectors)")
    ] = _GATEWAY_DEFAULTS["writers"],
    detectors: Annotated[
        bool, typer.Option(help="run the detectors, closed loop and on-call hooks on the stream")
    ] = False,
    traffic: Annotated[
        str,
        typer.Option(
            help="synthetic: ~200-byte payloads, all families; simulated: a realistic community (simulators/), ends now"
        ),
    ] = "synthetic",
    workers: Annotated[
        int,
        typer.Option(min=1, max=16, help="gateway processes sharing $share/bench/community/# (detectors off when > 1)"),
    ] = 1,
    runs: Annotated[
        int, typer.Option(min=1, max=9, help="drains of the same backlog, each against its own reference; median")
    ] = 3,
    database_url: Annotated[
        str | None, typer.Option(help="admin DSN for a throw-away database (default: local PostgreSQL, else embedded)")
    ] = None,
    shards: Annotated[
        int,
        typer.Option(
            min=0, max=256, help="> 0: --workers worker processes owning this many shards (detectors as --detectors)"
        ),
    ] = 0,
    peer: Annotated[
        Path | None, typer.Option(help="a set-up copy of the Node-RED peer: its storage-only drain in the same run")
    ] = None,
) -> None:
    """Queue a QoS 1 backlog in a private Mosquitto, then measure how fast mosquitto_sub and the gateway drain it."""
    if traffic not in ("synthetic", "simulated"):
        console.print(f"[red]--traffic must be synthetic or simulated, not {traffic!r}[/red]")
        raise typer.Exit(2)
    if not MosquittoBroker.available() or not shutil.which("mosquitto_sub"):
        console.print(
            "[red]needs the mosquitto and mosquitto_sub binaries (Debian: mosquitto, mosquitto-clients)[/red]"
        )
        raise typer.Exit(2)
    if peer is not None:
        from steward import bench_peer

        problem = bench_peer.check(peer)
        if problem:
            console.print(f"[red]--peer: {problem}[/red]")
            raise typer.Exit(2)
    workdir = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    admin, embedded = _admin_dsn(database_url, workdir)
    dsn = create_database(admin, "steward_bench")
    # No save of the broker's store while a drain runs: with 200,000-400,000 queued,
    # each save stopped Mosquitto for 2-3 s, in about one run in three, for whichever
    # drain it fell on (mosquitto_sub's or the gateway's). It saves when it stops.
    broker = MosquittoBroker(workdir=workdir / "mqtt", autosave_interval_s=3600).start()
    try:
        mode, _ = migrate(dsn)
        if traffic == "synthetic":
            fleet = bench_devices(devices)
            backlog: Iterator[tuple[str, bytes]] = bench_messages(fleet, messages)
        else:
            fleet, backlog = simulated_backlog(devices, messages)
        with psycopg.connect(dsn) as conn:
            upsert_devices(conn, fleet)
        config = GatewayConfig(
            mqtt=MqttEndpoint(broker.url),
            database_url=dsn,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            writers=db_writers,
        )
        if shards:
            _sharded(broker, dsn, fleet, list(backlog), workers=workers, shards=shards, detectors=detectors,
                     batch_size=batch_size, peer=peer, runs=runs, workdir=workdir, title=f"{traffic} traffic, storage {mode}")
            return
        sink = None
        if detectors and workers == 1:
            from steward.app import Stack
            from steward.settings import load_settings

            sink = Stack(load_settings(database_url=dsn)).build_sink()
            runs = 1  # detector state would carry over from one run to the next
        backlog_list = list(backlog)  # the same messages for every run
        tune_garbage_collector()  # as `steward run` does for its gateway
        results: list[_Run] = []
        publish_rates: list[float] = []
        for run in range(runs):
            if run:
                with psycopg.connect(dsn) as conn:  # every run starts from empty tables
                    conn.execute("TRUNCATE events, dead_letters")
            # This run's two persistent sessions, then away, so that the backlog queues for
            # both and for nobody else: the broker is in the same state for both drains.
            reference_id, gateway_id = f"bench-reference-{run}", f"bench-gateway-{run}"
            subprocess.run(
                _mosquitto_sub(broker.port, count=None, client_id=reference_id),
                check=False,
                capture_output=True,
                timeout=30,
            )
            if workers == 1:
                gw = Gateway(dataclasses.replace(config, client_id=gateway_id), sink=sink).start()
                _wait(lambda: gw.status()["broker_connected"], 10, "the gateway to connect")  # noqa: B023
                gw.stop()
            else:
                procs = _start_workers(workers, broker, dsn, batch_size, max_in_flight, db_writers, run)
                _wait(
                    lambda: all(f"{gateway_id}-{i}" in broker.log_tail(400) for i in range(workers)),  # noqa: B023
                    30,
                    "the workers to connect",
                )
                _stop_workers(procs)

            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task(f"run {run + 1} of {runs}: queueing the backlog", total=messages)

                def counted() -> Iterator[tuple[str, bytes]]:
                    for i, m in enumerate(backlog_list):
                        if i % 5000 == 0:
                            progress.update(task, completed=i)  # noqa: B023
                        yield m
                    progress.update(task, completed=messages)  # noqa: B023

                t0 = time.perf_counter()
                published = publish_all(broker.url, counted(), client_id="bench-publisher")
                publish_rates.append(published / (time.perf_counter() - t0))
            if published != messages:
                raise RuntimeError(f"the broker acknowledged {published:,} of {messages:,} messages")

            console.print(f"run {run + 1} of {runs}: draining with mosquitto_sub (reference)...")
            t0 = time.perf_counter()
            ref = subprocess.run(
                _mosquitto_sub(broker.port, count=messages, client_id=reference_id),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=1800,
            )
            ref_s = time.perf_counter() - t0
            if ref.returncode != 0:
                raise RuntimeError(f"mosquitto_sub failed: {ref.stderr.decode()[:500]}")
            console.print(
                f"run {run + 1} of {runs}: draining with the Steward gateway, {workers} process(es) "
                "(validate, COPY, commit, then acknowledge)..."
            )
            gw_s = _drain_gateway(
                dataclasses.replace(config, client_id=gateway_id), sink, messages, workers, run, broker
            )
            with psycopg.connect(dsn) as conn:
                rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
                distinct = conn.execute("SELECT count(DISTINCT (device_id, msg_id)) FROM events").fetchone()[0]  # type: ignore[index]
                dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]  # type: ignore[index]
            results.append(_Run(ref_s, gw_s, rows, distinct, dead))

        table = Table(
            title=f"steward bench ingest: {messages:,} QoS 1 messages, {len(fleet):,} devices, {traffic} traffic, "
            f"storage {mode}; {workers} gateway process(es) x {1 if sink else db_writers} db writer(s), "
            f"detectors {'on' if sink else 'off'}, batch {batch_size}"
        )
        for col in (
            "run",
            "mosquitto_sub drain s",
            "msg/s",
            "gateway drain s",
            "committed rows/s",
            "ratio",
            "lost",
            "duplicated",
        ):
            table.add_column(col, justify="right")
        for i, r in enumerate(results, 1):
            table.add_row(
                str(i),
                f"{r.reference_s:.2f}",
                f"{messages / r.reference_s:,.0f}",
                f"{r.gateway_s:.2f}",
                f"{r.rows / r.gateway_s:,.0f}",
                f"{r.ratio(messages):.2f}",
                f"{messages - r.distinct:,}",
                f"{r.rows - r.distinct:,}",
            )
        console.print(table)
        payload_bytes = statistics.mean(len(payload) for _, payload in backlog_list)
        topic_bytes = statistics.mean(len(topic) for topic, _ in backlog_list)
        console.print(f"messages: payload {payload_bytes:,.0f} bytes, topic {topic_bytes:,.0f} bytes on average")
        console.print(
            f"publish (paho, QoS 1): {messages:,} acknowledged by the broker in each run, "
            f"{statistics.median(publish_rates):,.0f} msg/s (median)"
        )
        median = statistics.median(r.ratio(messages) for r in results)
        console.print(f"gateway / mosquitto_sub, median of {runs}: [bold]{median:.2f}[/bold] (target >= 0.5)")
        console.print(
            f"lost {sum(messages - r.distinct for r in results):,}, duplicated "
            f"{sum(r.rows - r.distinct for r in results):,}, dead-lettered {sum(r.dead for r in results):,} in all runs"
        )
        console.print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"PostgreSQL via {'embedded' if embedded else 'server'}"
        )
    finally:
        broker.stop()
        drop_database(admin, dsn)
        if embedded:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _sharded(
    broker: MosquittoBroker,
    dsn: str,
    fleet: list[Device],
    backlog: list[tuple[str, bytes]],
    *,
    workers: int,
    shards: int,
    detectors: bool,
    batch_size: int,
    peer: Path | None,
    runs: int,
    workdir: Path,
    title: str,
) -> None:
    """Worker processes owning shards, paused while the backlog queues, then timed; the
    peer's drain of as many messages between the runs when asked."""
    from steward import bench_peer, bench_shards

    messages = len(backlog)
    probes_by: dict[str, str] = {}
    for d in fleet:
        probes_by.setdefault(d.community_id, f"{d.device_type}/{d.device_id}")
    rows: list[tuple[str, float, int, dict[str, float]]] = []
    peer_rates: list[float] = []
    for run in range(runs):
        with psycopg.connect(dsn) as conn:  # every run from empty tables, the layout kept
            conn.execute("TRUNCATE events, dead_letters, incidents, incident_timeline, detector_snapshots, "
                         "detector_checkpoints CASCADE")
            conn.execute("UPDATE shard_leases SET owner = NULL, expires_at = '-infinity'")
        client_id = f"steward-bench-{run}"
        procs = bench_shards.start_workers(
            workers, broker, dsn, shards=shards, detectors=detectors, batch_size=batch_size, client_id=client_id,
            workdir=workdir,
        )
        try:
            bench_shards.wait_ready(broker, dsn, probes_by, shards)
            bench_shards.pause(procs)
            console.print(f"run {run + 1} of {runs}: queueing {messages:,} messages for {shards} shard sessions...")
            published = publish_all(broker.url, iter(backlog), client_id="bench-publisher")
            if published != messages:
                raise RuntimeError(f"the broker acknowledged {published:,} of {messages:,} messages")
            console.print(f"run {run + 1} of {runs}: draining with {workers} worker(s)...")
            result = bench_shards.drain(procs, broker, dsn, messages)
        finally:
            bench_shards.stop(procs)
        batches, batched = bench_shards.batches(workdir, client_id)
        with psycopg.connect(dsn) as conn:
            stored, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT (device_id, msg_id)) FROM events WHERE left(msg_id, 5) <> 'probe'"
            ).fetchone()  # type: ignore[misc]
            incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]  # type: ignore[index]
        rows.append((f"{run + 1}", result.seconds, stored, result.cpu))
        console.print(
            f"run {run + 1}: {stored / result.seconds:,.0f} rows/s, lost {messages - distinct:,}, "
            f"duplicated {stored - distinct:,}, incidents {incidents:,}; "
            f"{batches:,} batches committed, {batched / max(batches, 1):,.0f} messages a batch"
        )
        if peer is not None:
            console.print(f"run {run + 1} of {runs}: the Node-RED peer drains {messages:,} messages (storage only)...")
            p = bench_peer.drain(peer, messages)
            peer_rates.append(p.rows_per_s)
            console.print(f"peer: {p.rows_per_s:,.0f} rows/s, lost {p.lost:,}; CPU s {p.cpu}")
    table = Table(
        title=f"steward bench ingest --shards {shards} --workers {workers}: {messages:,} QoS 1 messages, {title}, "
        f"detectors {'on (closed loop, on-call)' if detectors else 'off'}"
    )
    for col in ("run", "drain s", "rows/s", "peer rows/s", "ratio", "CPU us/msg: " + ", ".join(rows[0][3])):
        table.add_column(col, justify="right")
    for i, (run_name, seconds, stored, cpu) in enumerate(rows):
        rate = stored / seconds
        peer_rate = peer_rates[i] if i < len(peer_rates) else None
        table.add_row(
            run_name,
            f"{seconds:.2f}",
            f"{rate:,.0f}",
            f"{peer_rate:,.0f}" if peer_rate else "-",
            f"{rate / peer_rate:.2f}" if peer_rate else "-",
            ", ".join(f"{1e6 * v / messages:.1f}" for v in cpu.values()),
        )
    console.print(table)
    worker_cpu = [sum(v for k, v in cpu.items() if k.startswith("worker")) / messages * 1e6 for _, _, _, cpu in rows]
    console.print(f"worker CPU per message, all workers together: {', '.join(f'{v:.1f}' for v in worker_cpu)} us")
    if peer_rates:
        # A peer drain that stored nothing (its broker dropped Node-RED, paused past 1.5 x its
        # keepalive while a loaded machine queued the backlog) has no ratio.
        ratios = [stored / seconds / p for (_, seconds, stored, _), p in zip(rows, peer_rates) if p > 0]
        if ratios:
            console.print(f"Steward / Node-RED peer, median of {len(ratios)}: [bold]{statistics.median(ratios):.2f}[/bold] (target >= 1.5)")
        if len(ratios) < len(peer_rates):
            console.print(f"[yellow]{len(peer_rates) - len(ratios)} peer drain(s) stored nothing (see its results folder)[/yellow]")
    console.print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
