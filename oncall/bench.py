"""``steward bench oncall``: Level 1 event published → first notification received, end to end.

The whole pipeline runs for real in this process: a private Mosquitto, a
throw-away PostgreSQL database, the gateway (validate → COPY → detectors with
the closed-loop and on-call hooks, commit, acknowledge), the on-call service
(scheduler + webhook and push workers) and two receivers standing in for the
staff: a subscriber on ``staff/+/alerts`` (the staff app) and a local HTTP
server (the SMS gateway). Each incident is one elderly resident's SOS press
(Level 1, no confirmation window) on its own home hub, published with QoS 1;
the clock runs from just before ``publish()`` to the arrival of the first
notification for that incident at either receiver.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from domain.devices import Device, DeviceType
from ingest.migrate import migrate
from ingest.registry import upsert_devices
from oncall.config import apply_config, validate
from oncall.service import OnCallService
from oncall.settings import OnCallSettings
from steward.brokers import MosquittoBroker
from steward.databases import EmbeddedPostgres, create_database, drop_database, reachable

console = Console()
LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
COMMUNITY = "oncall-bench"


class _Arrivals:
    """First arrival time (time.perf_counter) of a notification per incident, per channel."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.by_device: dict[str, dict[str, float]] = {}

    def record(self, channel: str, device_ids: list[str]) -> None:
        now = time.perf_counter()
        with self.cond:
            for d in device_ids:
                self.by_device.setdefault(d, {}).setdefault(channel, now)
            self.cond.notify_all()

    def wait_for(self, device_id: str, timeout_s: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: device_id in self.by_device, timeout_s)


def _receiver(arrivals: _Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrivals.record("webhook", json.loads(body).get("device_ids") or [])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="bench-sms-gateway").start()
    return server


def _bench_config(now: dt.datetime) -> dict[str, Any]:
    return {
        "contacts": [{"staff_id": "bench-tech", "channel": "push"}, {"staff_id": "bench-tech", "channel": "webhook"}],
        "schedules": [{"id": "bench-sched", "community_id": COMMUNITY,
                       "rotations": [{"handoff_at": now - dt.timedelta(days=1), "shift_hours": 24 * 7,
                                      "participants": ["bench-tech"]}]}],
        "policies": [{"id": "bench-l1", "community_id": COMMUNITY, "tier": 1,
                      "steps": [{"targets": ["schedule:bench-sched"], "delay_minutes": 5}]}],
    }  # fmt: skip


def _percentiles(values: list[float]) -> dict[str, float]:
    a = np.array(values) * 1000
    return {
        "n": float(len(a)),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


def run(
    *, incidents: int = 120, interval_s: float = 0.1, admin_dsn: str | None = None, timeout_s: float = 15.0
) -> dict[str, Any]:
    """Run the benchmark; return the figures (latencies in ms)."""
    from detectors.runtime import DetectorRuntime
    from gateway.service import Gateway, GatewayConfig
    from steward.settings import MqttEndpoint

    workdir = Path(tempfile.mkdtemp(prefix="steward-bench-oncall-"))
    embedded: EmbeddedPostgres | None = None
    if admin_dsn is None:
        if reachable(LOCAL_DSN):
            admin_dsn = LOCAL_DSN
        else:
            embedded = EmbeddedPostgres(workdir / "postgres")
            admin_dsn = embedded.start()
    dsn = create_database(admin_dsn, "steward_bench_oncall")
    broker = MosquittoBroker(workdir=workdir / "mqtt").start()
    arrivals = _Arrivals()
    http = _receiver(arrivals)
    app = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-staff-app")
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-devices")
    gateway = service = None
    try:
        migrate(dsn)
        devices = [
            Device(device_id=f"bench-hub-{i:05d}", community_id=COMMUNITY, device_type=DeviceType.ELDERLY,
                   kind="home_hub", building_id=f"b{i % 10}")
            for i in range(incidents)
        ]  # fmt: skip
        with psycopg.connect(dsn) as conn:
            upsert_devices(conn, devices)
            conn.execute("INSERT INTO teams (team_id, community_id, kind, name) VALUES ('bench-eng', %s, 'engineering', 'eng')", (COMMUNITY,))
            conn.execute("INSERT INTO staff (staff_id, community_id, team_id, name, phone) VALUES ('bench-tech', %s, 'bench-eng', 'tech', '+8613800000000')", (COMMUNITY,))
            apply_config(conn, validate(_bench_config(dt.datetime.now(dt.UTC))))

        subscribed = threading.Event()
        app.on_connect = lambda c, *a: c.subscribe("staff/+/alerts", qos=1)
        app.on_subscribe = lambda *a: subscribed.set()
        app.on_message = lambda c, u, m: arrivals.record("push", json.loads(m.payload).get("device_ids") or [])
        app.connect("127.0.0.1", broker.port)
        app.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the bench staff app could not subscribe")

        hooks = []
        for name in ("alerts.hooks", "oncall.hooks"):
            hooks.append(__import__(name, fromlist=["on_incident_changes"]).on_incident_changes)
        gateway = Gateway(
            GatewayConfig(mqtt=MqttEndpoint(broker.url), database_url=dsn, client_id="bench-gateway"),
            sink=DetectorRuntime(hooks=hooks),
        ).start()
        settings = OnCallSettings(
            link_secret=secrets.token_urlsafe(24),
            webhook_url=f"http://127.0.0.1:{http.server_address[1]}/send",
            webhook_secret=secrets.token_urlsafe(24),
            mqtt_url=broker.url,
            poll_interval_s=1.0,
        )
        service = OnCallService(dsn, settings).start()

        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        latencies: list[float] = []
        missing: list[str] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("Level 1 SOS → first notification", total=incidents)
            for i, device in enumerate(devices):
                topic = f"community/{COMMUNITY}/elderly/{device.device_id}/event"
                payload = json.dumps({"id": f"sos-{i}", "ts": int(time.time() * 1000), "type": "sos"})
                sent = time.perf_counter()
                publisher.publish(topic, payload, qos=1)
                if arrivals.wait_for(device.device_id, timeout_s):
                    with arrivals.cond:
                        got = dict(arrivals.by_device[device.device_id])
                    latencies.append(min(got.values()) - sent)
                else:
                    missing.append(device.device_id)
                progress.advance(task)
                time.sleep(interval_s)  # pacing between incidents, not a wait for a result
        # Let the slower channel of the last incidents finish before reading the delivery rows.
        with arrivals.cond:
            arrivals.cond.wait_for(
                lambda: all(len(arrivals.by_device.get(d.device_id, {})) == 2 for d in devices), timeout_s
            )
        with psycopg.connect(dsn) as conn:
            stages = conn.execute(
                "SELECT extract(epoch FROM (o.created_at - i.opened_at)), extract(epoch FROM (d.at - o.created_at)),"
                " o.channel FROM oncall_outbox o JOIN incidents i ON i.id = o.incident_id"
                " JOIN oncall_deliveries d ON d.outbox_id = o.outbox_id AND d.outcome = 'delivered'"
            ).fetchall()
            # recorded_at is the gateway transaction's start (now()); the step fires after its commit.
            stored = conn.execute(
                "SELECT extract(epoch FROM (t.recorded_at - i.opened_at)), extract(epoch FROM (p.fired_at - t.recorded_at))"
                " FROM incidents i JOIN incident_timeline t ON t.incident_id = i.id AND t.kind = 'opened'"
                " JOIN oncall_pending p ON p.incident_id = i.id AND p.kind = 'step' AND p.step = 0"
            ).fetchall()
        result: dict[str, Any] = {
            "incidents": incidents,
            "received": len(latencies),
            "missing": len(missing),
            "first_notification": _percentiles(latencies) if latencies else {},
            "event_to_batch_transaction": _percentiles([float(r[0]) for r in stored]) if stored else {},
            "batch_transaction_to_step_fired": _percentiles([float(r[1]) for r in stored]) if stored else {},
            "step_fired_to_delivered": {
                ch: _percentiles([float(r[1]) for r in stages if r[2] == ch]) for ch in ("push", "webhook")
                if any(r[2] == ch for r in stages)
            },
        }  # fmt: skip
        return result
    finally:
        publisher.loop_stop()
        app.loop_stop()
        if service is not None:
            service.stop()
        if gateway is not None:
            gateway.stop()
        http.shutdown()
        http.server_close()
        broker.stop()
        drop_database(admin_dsn, dsn)
        if embedded is not None:
            embedded.stop()


def oncall(
    incidents: Annotated[int, typer.Option(help="Level 1 incidents (one SOS each)")] = 120,
    interval_ms: Annotated[int, typer.Option(help="pause between two incidents")] = 100,
    database_url: Annotated[str | None, typer.Option(help="admin DSN for a throw-away database (default: local PostgreSQL, else embedded)")] = None,
    json_out: Annotated[Path | None, typer.Option(help="also write the figures to this JSON file")] = None,
) -> None:
    """Level 1 event published → first notification received (push or webhook), p50/p99 over N incidents."""
    if not MosquittoBroker.available():
        console.print("[red]needs the mosquitto binary (Debian: mosquitto)[/red]")
        raise typer.Exit(2)
    if incidents < 1:
        raise typer.BadParameter("incidents must be >= 1", param_hint="--incidents")
    result = run(incidents=incidents, interval_s=interval_ms / 1000, admin_dsn=database_url)
    table = Table(title=f"on-call: {result['received']}/{incidents} Level 1 incidents notified")
    for col in ("measure", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    rows = [("published → first notification received", result["first_notification"]),
            ("event time → gateway batch transaction began", result["event_to_batch_transaction"]),
            ("batch transaction began → escalation step fired", result["batch_transaction_to_step_fired"])]  # fmt: skip
    rows += [(f"step fired → {ch} delivered", v) for ch, v in result["step_fired_to_delivered"].items()]
    for label, f in rows:
        if f:
            table.add_row(label, f"{int(f['n'])}", f"{f['p50_ms']:.1f}", f"{f['p90_ms']:.1f}", f"{f['p99_ms']:.1f}", f"{f['max_ms']:.1f}")
    console.print(table)
    if result["missing"]:
        console.print(f"[red]{result['missing']} incident(s) got no notification within the timeout[/red]")
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    if result["missing"]:
        raise typer.Exit(1)


def register(bench_app: typer.Typer) -> None:
    """Add ``oncall`` to the ``steward bench`` group."""
    bench_app.command("oncall")(oncall)
