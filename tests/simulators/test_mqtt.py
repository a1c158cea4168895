"""Publishing over a real Mosquitto: nothing lost at a high rate, per-device credentials, live pacing."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.mqtt_client import stop_network
from simulators import build_fleet, simulate
from simulators.mqtt import BulkPublisher, LivePublisher, Publisher
from steward.brokers import MosquittoBroker

CST = dt.timezone(dt.timedelta(hours=8))
MONDAY = dt.datetime(2026, 11, 16, tzinfo=CST)


class Collector:
    """A QoS 1 subscriber that records (device, message id) of everything it receives."""

    def __init__(self, url_port: int, username: str | None = None, password: str | None = None) -> None:
        self.keys: set[tuple[str, str]] = set()
        self.count = 0
        self.payloads: list[dict] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{time.time_ns()}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe("community/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"

    def on_message(self, client, userdata, message) -> None:
        body = json.loads(message.payload)
        with self.lock:
            self.count += 1
            self.keys.add((message.topic.split("/")[3], body["id"]))
            self.payloads.append({**body, "_device": message.topic.split("/")[3]})

    def wait_for(self, n: int, deadline_s: float) -> bool:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if len(self.keys) >= n:
                return True
            time.sleep(0.05)
        return len(self.keys) >= n

    def close(self) -> None:
        stop_network(self.client)


def test_a_high_rate_run_loses_nothing_on_the_publisher_side(mosquitto: MosquittoBroker) -> None:
    fleet = build_fleet(2, preset="demo")
    messages = list(itertools.islice(simulate(fleet, days=1, start=MONDAY).messages(), 40_000))
    expected = {(m.device_id, json.loads(m.payload)["id"]) for m in messages}
    assert len(expected) == len(messages)
    collector = Collector(mosquitto.port)
    try:
        # A small in-flight bound forces the publisher to wait on acknowledgements constantly.
        bulk = BulkPublisher(mosquitto.url, pool_size=3, max_inflight=200)
        stats = bulk.run(messages)
        assert stats.published == stats.acknowledged == len(messages)
        assert bulk.publisher.peak_inflight <= 200
        assert collector.wait_for(len(messages), 60), f"received {len(collector.keys)} of {len(messages)}"
        assert collector.keys == expected  # (its speed is measured in simulators/README.md, not asserted)
    finally:
        collector.close()


def test_each_device_publishes_with_its_own_credentials(tmp_path: Path) -> None:
    fleet = build_fleet(4, preset="building")
    # (no scenarios: a reader reboot would send its own last will)
    sim = simulate(fleet, days=0.25, start=MONDAY, heartbeat_s=600, auto_incidents=False)
    chosen = {d.device_id for d in fleet.devices[:6]}
    messages = [m for m in sim.messages() if m.device_id in chosen]
    credentials = {d: f"pw-{i}" for i, d in enumerate(sorted(chosen))}
    users = {**credentials, "watcher": "watch-pw"}
    with MosquittoBroker(workdir=tmp_path / "mqtt", users=users, superusers=("watcher",)) as broker:
        collector = Collector(broker.port, "watcher", "watch-pw")
        try:
            pub = Publisher(broker.url, credentials=credentials)
            with pub:
                for m in messages:
                    pub.publish(m)
                assert pub.flush(30)
                assert set(pub._per_device) == {m.device_id for m in messages}
                assert all(c.client_id == d for d, c in pub._per_device.items())
            # The broker's ACL only lets a device write under its own id: everything arriving
            # proves each message went out on its own device's connection.
            assert collector.wait_for(len(messages) + len(chosen), 30), f"{len(collector.keys)} of {len(messages)}"
            assert pub.stats.acknowledged == pub.stats.published + pub.stats.control
            online = [p for p in collector.payloads if p["type"] == "online"]
            assert pub.stats.control == len(online) == len({m.device_id for m in messages})
            assert not [p for p in collector.payloads if p["type"] == "offline"], "a clean disconnect sends no will"
        finally:
            collector.close()
        log = broker.log_tail(400)
        for device_id in chosen:
            assert f"u'{device_id}'" in log or device_id in log


def test_live_publisher_paces_in_real_time_and_stops_promptly(mosquitto: MosquittoBroker) -> None:
    fleet = build_fleet(6, preset="building")
    collector = Collector(mosquitto.port)
    try:
        live = LivePublisher(fleet, mosquitto.url, speed=1.0, heartbeat_s=10, daily_incidents=0)
        started = time.time()
        live.start()
        assert collector.wait_for(10, 20), "no live traffic"
        t0 = time.monotonic()
        live.stop()
        assert time.monotonic() - t0 < 3.0
        assert live.done.is_set() and live.error is None
        # Real time: nothing is stamped in the future or before the start.
        now_ms = time.time() * 1000
        assert all(started * 1000 - 1000 <= p["ts"] <= now_ms + 1000 for p in collector.payloads)
    finally:
        collector.close()


def test_accelerated_live_run_replays_the_recent_past(mosquitto: MosquittoBroker) -> None:
    fleet = build_fleet(6, preset="building")
    collector = Collector(mosquitto.port)
    try:
        live = LivePublisher(fleet, mosquitto.url, speed=1200.0, duration=dt.timedelta(minutes=30),
                             heartbeat_s=120, daily_incidents=0)
        live.start()
        assert live.done.wait(20), "30 simulated minutes at 1200x should take about 1.5 s"
        live.stop()
        assert live.error is None
        assert collector.wait_for(live.stats.published, 20)
        now_ms = time.time() * 1000
        assert max(p["ts"] for p in collector.payloads) <= now_ms
    finally:
        collector.close()


def test_hundreds_of_per_device_connections_share_one_network_thread(mosquitto: MosquittoBroker) -> None:
    fleet = build_fleet(9, preset="demo")  # 337 devices, each its own client id
    messages = list(simulate(fleet, days=1 / 24, start=MONDAY, auto_incidents=False).messages())
    devices = {m.device_id for m in messages}
    assert len(devices) > 300
    collector = Collector(mosquitto.port)
    threads_before = threading.active_count()
    try:
        pub = Publisher(mosquitto.url, per_device=True, max_inflight=500)
        with pub:
            for m in messages:
                pub.publish(m)
            assert threading.active_count() <= threads_before + 2, "one network thread, not one per device"
            assert pub.flush(30)
        assert pub.stats.published == len(messages)
        assert pub.stats.acknowledged == len(messages) + pub.stats.control
        assert collector.wait_for(len(messages) + len(devices), 30), f"{len(collector.keys)} received"
        online = [p["_device"] for p in collector.payloads if p["type"] == "online"]
        assert sorted(online) == sorted(devices), "each device announces itself once, on its own connection"
    finally:
        collector.close()
    log = mosquitto.log_tail(5000)
    for device_id in list(devices)[:20]:
        assert f" as {device_id} " in log, device_id


@pytest.mark.parametrize("per_device", [False, True])
def test_publishing_survives_a_broker_restart(tmp_path: Path, per_device: bool) -> None:
    fleet = build_fleet(10, preset="building")
    messages = list(simulate(fleet, days=0.1, start=MONDAY, auto_incidents=False).messages())
    broker = MosquittoBroker(workdir=tmp_path / "mqtt").start()
    try:
        pub = Publisher(broker.url, per_device=per_device, max_inflight=300, ack_timeout_s=30).connect()
        half = len(messages) // 2
        for m in messages[:half]:
            pub.publish(m)
        assert pub.flush(20)
        broker.stop()
        restarted = threading.Timer(1.0, broker.start)
        restarted.start()
        for m in messages[half:]:  # queued by paho while the broker is away, then resent
            pub.publish(m)
        assert pub.flush(30), f"{pub.inflight} unacknowledged after the restart"
        restarted.join()
        assert pub.stats.published == len(messages)
        assert pub.stats.acknowledged == len(messages) + pub.stats.control
        pub.close()
    finally:
        broker.stop()


def test_live_publisher_stops_promptly_even_when_the_broker_is_gone(tmp_path: Path) -> None:
    fleet = build_fleet(6, preset="building")
    broker = MosquittoBroker(workdir=tmp_path / "mqtt").start()
    try:
        live = LivePublisher(fleet, broker.url, speed=1200.0, duration=dt.timedelta(hours=6), heartbeat_s=60,
                             daily_incidents=0, max_inflight=50)
        live.start()
        deadline = time.monotonic() + 20
        while live.stats.published < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.stats.published >= 200
        broker.stop()  # acknowledgements stop: the publisher blocks on its in-flight bound
        deadline = time.monotonic() + 20
        while live.publisher.inflight < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.publisher.inflight == 50, "publishing must block at the bound, not drop"
        # Blocked at its bound with nobody acknowledging, it still ends when asked (not when its
        # in-flight messages would time out): well inside a bound a loaded machine cannot miss.
        t0 = time.monotonic()
        live.stop(timeout_s=10.0)
        assert time.monotonic() - t0 < 10.0
        assert live.done.wait(5)
    finally:
        broker.stop()
