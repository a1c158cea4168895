"""Device credentials against a real Mosquitto: provisioning applies them, the ACL confines a device
to its own id, the gateway rejects a device outside its community, retiring revokes.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties

from api.app import create_app
from api.credentials import MosquittoPasswordFile
from gateway.mqtt_client import stop_network
from gateway.service import Gateway, GatewayConfig
from steward.brokers import MosquittoBroker
from steward.settings import MqttEndpoint
from tests.api.conftest import OTHER, OWN, World

GATEWAY_PW, OBSERVER_PW = "gateway-secret-1", "observer-secret-1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    if not MosquittoBroker.available():
        pytest.fail("mosquitto is not installed: run the README's test command, which installs it")
    with MosquittoBroker(workdir=tmp_path / "mqtt", users={"gateway": GATEWAY_PW, "observer": OBSERVER_PW},
                         superusers=("gateway", "observer")) as b:
        yield b


class Client:
    """A paho MQTT 5 client whose connect result and PUBACKs the test can wait for."""

    def __init__(self, port: int, username: str, password: str, client_id: str) -> None:
        self.port = port
        self.connected: queue.Queue[int] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: dict[int, int] = {}
        self._acked = threading.Condition()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(username, password)
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.put(rc.value)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.c.on_publish = self._on_publish

    def _on_publish(self, c: object, u: object, mid: int, rc: object, p: object) -> None:
        with self._acked:
            self.acks[mid] = rc.value  # type: ignore[attr-defined]
            self._acked.notify_all()

    def connect(self) -> int:
        self.c.connect("127.0.0.1", self.port)
        self.c.loop_start()
        return self.connected.get(timeout=10)

    def publish(self, topic: str, payload: dict[str, object]) -> int:
        info = self.c.publish(topic, json.dumps(payload), qos=1, properties=Properties(packetType=3))
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.acks, timeout=10), "no PUBACK"
            return self.acks[info.mid]

    def close(self) -> None:
        stop_network(self.c)


# The device's event time: a set instant (2026-11-18), never this machine's clock.
EVENT_TS_MS = 1_795_000_000_000


def heartbeat(msg_id: str) -> dict[str, object]:
    return {"id": msg_id, "ts": EVENT_TS_MS, "type": "heartbeat", "battery": 90}


def wait_for(query: str, params: tuple[object, ...], dsn: str, deadline_s: float = 15.0) -> list[tuple]:
    end = time.monotonic() + deadline_s
    while True:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(query, params).fetchall()
        if rows or time.monotonic() > end:
            return rows
        time.sleep(0.05)  # polling the database for the gateway's commit, bounded by the deadline


def test_device_credentials_confine_each_device_to_its_own_id(world: World, broker: MosquittoBroker) -> None:
    app = create_app(database_url=world.dsn, broker=MosquittoPasswordFile.for_broker(broker))
    admin = world.headers(f"admin-{OWN}")
    with TestClient(app) as api:
        creds = {}
        for device_id in ("north-lift-a", "north-lift-b"):
            r = api.post("/devices", headers=admin, json={"device_id": device_id, "community_id": OWN,
                                                          "device_type": "elevator", "kind": "lift"})
            assert r.status_code == 201, r.text
            creds[device_id] = r.json()["credentials"]
            assert creds[device_id]["applied_to_broker"] is True
        with psycopg.connect(world.dsn) as conn:
            stored = conn.execute("SELECT password_hash FROM device_credentials WHERE device_id = 'north-lift-a'").fetchone()
        assert stored and stored[0].startswith("$7$") and creds["north-lift-a"]["password"] not in stored[0]

        gateway = Gateway(GatewayConfig(mqtt=MqttEndpoint(f"mqtt://gateway:{GATEWAY_PW}@127.0.0.1:{broker.port}"),
                                        database_url=world.dsn, client_id="acl-test-gateway")).start()
        observer = Client(broker.port, "observer", OBSERVER_PW, "acl-observer")
        device = Client(broker.port, "north-lift-a", creds["north-lift-a"]["password"], "north-lift-a")
        try:
            assert observer.connect() == 0
            observer.c.subscribe("community/#", qos=1)
            assert device.connect() == 0

            forged = device.publish(f"community/{OWN}/elevator/north-lift-b/status", heartbeat("forged-1"))
            assert forged == 135  # MQTT 5 "Not authorized": the ACL pattern refuses another device's id
            foreign = device.publish(f"community/{OTHER}/elevator/north-lift-a/status", heartbeat("foreign-1"))
            assert foreign == 0  # its own id, so the broker lets it through; the gateway must refuse it
            assert device.publish(f"community/{OWN}/elevator/north-lift-a/status", heartbeat("own-1")) == 0

            seen = []
            deadline = time.monotonic() + 10
            while not any(t.endswith("north-lift-a/status") and OWN in t for t, _ in seen):
                seen.append(observer.messages.get(timeout=max(0.01, deadline - time.monotonic())))
            # The forged message was published first on the same connection: had it passed, it would be here.
            assert not [t for t, _ in seen if "north-lift-b" in t]

            events = wait_for("SELECT msg_id FROM events WHERE device_id = 'north-lift-a'", (), world.dsn)
            assert [e[0] for e in events] == ["own-1"]
            dead = wait_for("SELECT reason, community_id FROM dead_letters WHERE device_id = 'north-lift-a'", (),
                            world.dsn)
            assert dead == [("unknown_device", OTHER)]
        finally:
            device.close()
            observer.close()
            gateway.stop()

        # Retiring revokes: the old password no longer connects; a wrong password never did.
        assert api.post("/devices/north-lift-a/retire", headers=admin).status_code == 200
        assert not MosquittoPasswordFile.for_broker(broker).has_user("north-lift-a")
        retired = Client(broker.port, "north-lift-a", creds["north-lift-a"]["password"], "north-lift-a-2")
        wrong = Client(broker.port, "north-lift-b", "not-the-password", "north-lift-b-wrong")
        try:
            assert retired.connect() in (134, 135)  # bad username or password / not authorized
            assert wrong.connect() in (134, 135)
        finally:
            retired.close()
            wrong.close()
