"""Real parts for the on-call tests: PostgreSQL, an SMTP server (aiosmtpd), an HTTP receiver, Mosquitto.

Time is a ManualClock the tests move; the service's threads run for real and
the tests wait on conditions with deadlines.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from aiosmtpd.controller import Controller

from domain.incidents import IncidentChange, StoredChange, Tier
from gateway.mqtt_client import stop_network
from ingest.migrate import migrate
from oncall.clock import ManualClock
from oncall.config import apply_config, validate
from oncall.hooks import on_incident_changes
from oncall.settings import OnCallSettings
from steward.brokers import free_port

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 Beijing time, a Monday (in the past: see start_round)
LINK_SECRET = "test-link-secret-0123456789abcdef"
WEBHOOK_SECRET = "test-webhook-secret-fedcba9876543210"

def wait_until(predicate: Callable[[], Any], *, timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Wait for ``predicate`` to be truthy (re-checked on a short interval) or fail after a deadline."""
    done = threading.Event()
    deadline = threading.Event()
    timer = threading.Timer(timeout_s, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            value = predicate()
            if value:
                return value
            done.wait(0.02)
    finally:
        timer.cancel()
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture
def oncall_db(empty_database: str) -> str:
    migrate(empty_database)
    with psycopg.connect(empty_database) as conn:
        seed_people(conn)
    return empty_database


def seed_people(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO teams (team_id, community_id, kind, name) VALUES"
        " ('c1-eng', 'c1', 'engineering', '工程部'), ('c1-sec', 'c1', 'security', '安保部')"
    )
    people = [
        ("s-wang", "c1-eng", "王工", "technician", "wang@c1.example", "+8613800000001"),
        ("s-li", "c1-eng", "李工", "technician", "li@c1.example", "+8613800000002"),
        ("s-zhao", "c1-eng", "赵主管", "supervisor", "zhao@c1.example", "+8613800000003"),
        ("s-qian", "c1-sec", "钱经理", "manager", "qian@c1.example", "+8613800000004"),
    ]
    for staff_id, team, name, role, mail, phone in people:
        conn.execute(
            "INSERT INTO staff (staff_id, community_id, team_id, name, role, email, phone)"
            " VALUES (%s, 'c1', %s, %s, %s, %s, %s)",
            (staff_id, team, name, role, mail, phone),
        )


# Level 1: engineering on call (daily 08:00 Beijing hand-off), then the supervisor, then the manager.
BASE_CONFIG: dict[str, Any] = {
    "contacts": [
        {"staff_id": s, "channel": ch, "locale": "en" if s == "s-li" else "zh-CN"}
        for s in ("s-wang", "s-li", "s-zhao", "s-qian")
        for ch in ("email", "webhook", "push")
    ],
    "schedules": [
        {
            "id": "c1-eng-oncall",
            "community_id": "c1",
            "name": "Engineering on call",
            "rotations": [
                {"handoff_at": dt.datetime(2026, 2, 28, 0, 0, tzinfo=dt.UTC), "shift_hours": 24,
                 "participants": ["s-wang", "s-li"]},
            ],
        }
    ],
    "policies": [
        {"id": "c1-l1", "community_id": "c1", "tier": 1, "repeat": 1, "ack_renotify_minutes": 30,
         "reminder_minutes": 10,
         "steps": [{"targets": ["schedule:c1-eng-oncall"], "delay_minutes": 5},
                   {"targets": ["staff:s-zhao"], "delay_minutes": 5},
                   {"targets": ["staff:s-qian"], "delay_minutes": 10}]},
        {"id": "c1-l2", "community_id": "c1", "tier": 2,
         "steps": [{"targets": ["schedule:c1-eng-oncall"], "delay_minutes": 15},
                   {"targets": ["staff:s-zhao"], "delay_minutes": 15}]},
    ],
}  # fmt: skip


@pytest.fixture
def configured_db(oncall_db: str) -> str:
    with psycopg.connect(oncall_db) as conn:
        apply_config(conn, validate(BASE_CONFIG))
    return oncall_db


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def open_incident(
    dsn: str,
    *,
    at: dt.datetime,
    tier: Tier = Tier.LIFE_SAFETY,
    condition: str = "entrapment",
    device_ids: tuple[str, ...] = ("lift-1",),
    building_id: str = "b1",
    title: str = "1号楼1号电梯困人",
) -> int:
    """Store an incident and run the on-call hook in the same transaction, as the detector runtime does."""
    change = IncidentChange(
        kind="opened", dedup_key=f"{device_ids[0]}:{condition}", community_id="c1", scope="device",
        scope_id=device_ids[0], condition=condition, tier=tier, ts=at, title=title, device_ids=device_ids,
    )  # fmt: skip
    with psycopg.connect(dsn) as conn:
        (incident_id,) = conn.execute(
            "INSERT INTO incidents (dedup_key, community_id, scope, scope_id, building_id, condition, tier, title,"
            " device_ids, status, opened_at, updated_at) VALUES (%s, 'c1', 'device', %s, %s, %s, %s, %s, %s,"
            " 'open', %s, %s) RETURNING id",
            (change.dedup_key, change.scope_id, building_id, condition, int(tier), title, list(device_ids), at, at),
        ).fetchone()  # type: ignore[misc]
        on_incident_changes(conn, [StoredChange(incident_id=incident_id, change=change)])
    return int(incident_id)


# ---- SMTP --------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd server; ``start()`` again on the same port after ``stop()`` (a channel outage)."""

    port: int
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        msg["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        with self.cond:
            self.messages.append(msg)  # type: ignore[arg-type]
            self.cond.notify_all()
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.cond:
            return [m for m in self.messages if address in m["X-Envelope-To"]]

    def wait_for(self, address: str, count: int = 1, timeout_s: float = 10.0) -> list[email.message.EmailMessage]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len([m for m in self.messages if address in m["X-Envelope-To"]]) >= count,
                                    timeout_s)  # fmt: skip
        assert ok, f"no {count} mail(s) for {address} within {timeout_s}s; got {len(self.to(address))}"
        return self.to(address)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    box.start()
    yield box
    box.stop()


# ---- HTTP receiver (the SMS/IM gateway) ---------------------------------------------------


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    status: int = 200  # what the gateway answers; 503 simulates an outage

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def for_staff(self, staff_id: str) -> list[dict[str, Any]]:
        with self.cond:
            return [r for r in self.requests if r["json"].get("staff_id") == staff_id]

    def wait_for(self, staff_id: str, count: int = 1, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len([r for r in self.requests if r["json"].get("staff_id") == staff_id])
                                    >= count, timeout_s)  # fmt: skip
        assert ok, f"no {count} webhook call(s) for {staff_id} within {timeout_s}s"
        return self.for_staff(staff_id)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = holder["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with rec.cond:
                status = rec.status
                rec.requests.append(
                    {"status": status, "headers": dict(self.headers), "body": body, "json": json.loads(body)}
                )
                rec.cond.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(server=server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["r"]
    server.shutdown()
    server.server_close()


# ---- staff app over MQTT --------------------------------------------------------------------


@dataclass
class StaffApp:
    """A subscriber on staff/+/alerts, as the staff phone app is."""

    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    client: mqtt.Client | None = None

    @classmethod
    def connect(cls, port: int) -> StaffApp:
        app = cls()
        subscribed = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"staff-app-test-{port}")

        def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            with app.cond:
                app.messages.append((msg.topic, json.loads(msg.payload)))
                app.cond.notify_all()

        client.on_connect = lambda c, *a: c.subscribe("staff/+/alerts", qos=1)
        client.on_subscribe = lambda *a: subscribed.set()
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        assert subscribed.wait(10), "staff app did not subscribe"
        app.client = client
        return app

    def close(self) -> None:
        if self.client is not None:
            stop_network(self.client)

    def for_staff(self, staff_id: str) -> list[dict[str, Any]]:
        with self.cond:
            return [p for t, p in self.messages if t == f"staff/{staff_id}/alerts"]

    def wait_for(self, staff_id: str, count: int = 1, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        topic = f"staff/{staff_id}/alerts"
        with self.cond:
            ok = self.cond.wait_for(lambda: len([1 for t, _ in self.messages if t == topic]) >= count, timeout_s)
        assert ok, f"no {count} push(es) for {staff_id} within {timeout_s}s"
        return self.for_staff(staff_id)


@pytest.fixture
def staff_app(mosquitto: Any) -> Iterator[StaffApp]:
    app = StaffApp.connect(mosquitto.port)
    yield app
    app.close()


@pytest.fixture
def settings(mailbox: Mailbox, receiver: Receiver, mosquitto: Any) -> OnCallSettings:
    return OnCallSettings(
        link_secret=LINK_SECRET,
        public_base_url="http://steward.test",
        webhook_url=receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_timeout_s=2,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_timeout_s=2,
        mqtt_url=mosquitto.url,
        push_timeout_s=2,
        poll_interval_s=0.05,
        backoff_base_s=30,
        backoff_max_s=600,
        max_attempts=5,
    )
