"""Broker identity with the production Mosquitto configuration (deploy/mosquitto, issue 17 "Why" 2 and 3).

The broker here runs deploy/mosquitto/mosquitto.conf and its ACL files as they
are shipped; only paths and ports are rewritten for a private instance. Device
credentials are issued through the API into the devices' password file, the
services' accounts are written as entrypoint.sh writes them. A device then
tries what an attacker would: take the gateway's session (its client id,
clean or persistent session, MQTT 3.1.1 and 5) between every ten messages of a
publishing device; log in on the services' listener; read community/# and
staff/#; be provisioned under a service account's name. On-call push, the
other service account, cannot take the gateway's session either.
"""

from __future__ import annotations

import json
import queue
import re
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from api.app import create_app
from api.credentials import MosquittoPasswordFile
from gateway.endpoint import MqttEndpoint
from gateway.mqtt_client import stop_network
from gateway.service import Gateway, GatewayConfig
from steward.brokers import mosquitto_binary
from steward.identity import ServiceAccount, gateway_client_id, installation_id
from steward.settings import Settings
from tests.api.conftest import OWN, World, world  # noqa: F401 (the fixture)
from tests.production_broker import ProductionBroker

GATEWAY_PW, PUSH_PW = "gateway-secret-0123", "push-secret-0123"
T0_MS = 1_795_000_000_000  # 2026-11-18: event time is the device's, never this machine's clock


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ProductionBroker]:
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed: run the README's test command, which installs it")
    b = ProductionBroker(tmp_path / "mqtt", GATEWAY_PW, PUSH_PW).start()
    try:
        yield b
    finally:
        b.stop()


class Client:
    """A paho client whose CONNACK, PUBACKs and messages the test waits for (deadlines, never sleeps)."""

    def __init__(self, port: int, username: str, password: str, client_id: str, *, protocol: int = mqtt.MQTTv311,
                 clean: bool = True) -> None:
        self.port = port
        self.connected: queue.Queue[int] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subscribed: queue.Queue[list[int]] = queue.Queue()
        kwargs = {"clean_session": clean} if protocol != mqtt.MQTTv5 else {}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kwargs)
        self.c.username_pw_set(username, password)
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.put(rc.value)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.put([r.value for r in rcs])
        self.clean = clean
        self.protocol = protocol

    def connect(self) -> int:
        if self.protocol == mqtt.MQTTv5:
            self.c.connect("127.0.0.1", self.port, clean_start=self.clean)
        else:
            self.c.connect("127.0.0.1", self.port)
        self.c.loop_start()
        return self.connected.get(timeout=10)

    def publish_acked(self, topic: str, payload: dict[str, object]) -> None:
        info = self.c.publish(topic, json.dumps(payload), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"no PUBACK for {topic}"

    def close(self) -> None:
        stop_network(self.c)


def stored(dsn: str, device_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE device_id = %s", (device_id,)).fetchone()
    assert row is not None
    return int(row[0])


def wait_stored(dsn: str, device_id: str, count: int, deadline_s: float = 30.0) -> int:
    end = time.monotonic() + deadline_s
    while (n := stored(dsn, device_id)) < count and time.monotonic() < end:
        time.sleep(0.05)  # polling the database for the gateway's commit, bounded by the deadline
    return n


def provision(api: TestClient, headers: dict[str, str], device_id: str) -> str:
    r = api.post("/devices", headers=headers, json={"device_id": device_id, "community_id": OWN,
                                                    "device_type": "water", "kind": "meter"})
    assert r.status_code == 201, r.text
    assert r.json()["credentials"]["applied_to_broker"] is True
    return r.json()["credentials"]["password"]


@pytest.fixture
def api(world: World, broker: ProductionBroker) -> Iterator[TestClient]:
    store = MosquittoPasswordFile(broker.devices_passwd, reload=broker.hup)
    with TestClient(create_app(database_url=world.dsn, broker=store), raise_server_exceptions=False) as client:
        yield client


def start_gateway(world: World, broker: ProductionBroker) -> tuple[Gateway, str]:
    with psycopg.connect(world.dsn) as conn:
        client_id = gateway_client_id(installation_id(conn))
    url = f"mqtt://{ServiceAccount.GATEWAY}:{GATEWAY_PW}@127.0.0.1:{broker.service_port}"
    gateway = Gateway(GatewayConfig(mqtt=MqttEndpoint(url), database_url=world.dsn, client_id=client_id,
                                    batch_linger_s=0.01)).start()
    return gateway, client_id


def reading(i: int) -> dict[str, object]:
    return {"id": f"m-{i}", "ts": T0_MS + i * 1000, "type": "flow", "flow_lpm": 1.5}


def test_a_device_cannot_take_the_gateways_session_and_no_acknowledged_message_is_lost(
        world: World, broker: ProductionBroker, api: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    meter_pw = provision(api, admin, "north-meter-7")
    attacker_pw = provision(api, admin, "north-lock-9")
    gateway, gateway_id = start_gateway(world, broker)
    meter = Client(broker.device_port, "north-meter-7", meter_pw, "north-meter-7", clean=False)
    try:
        assert meter.connect() == 0
        topic = f"community/{OWN}/water/north-meter-7/telemetry"
        published = 0
        for round_ in range(30):
            # Every way of asking for the gateway's session, each on its own connection.
            protocol = (mqtt.MQTTv311, mqtt.MQTTv5)[round_ % 2]
            attacker = Client(broker.device_port, "north-lock-9", attacker_pw, gateway_id, protocol=protocol,
                              clean=round_ % 4 < 2)
            assert attacker.connect() == 0  # let in, as itself: its client id is its username
            for _ in range(10):
                meter.publish_acked(topic, reading(published))
                published += 1
            attacker.close()
        assert wait_stored(world.dsn, "north-meter-7", published) == published == 300
    finally:
        meter.close()
        gateway.stop()
    log = broker.log
    # The gateway connected once and was never disconnected by anybody else.
    assert len(re.findall(rf"New client connected from .* as {re.escape(gateway_id)} ", log)) == 1, log[-3000:]
    assert f"Client {gateway_id} already connected" not in log
    assert "as north-lock-9 " in log  # the attacker's sessions all carried its own id


def test_a_device_cannot_log_in_or_read_as_a_service(world: World, broker: ProductionBroker,
                                                     api: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    attacker_pw = provision(api, admin, "north-lock-9")
    meter_pw = provision(api, admin, "north-meter-7")
    # Its own credentials on the services' listener, or a service's name on its own: refused.
    for port, username in ((broker.service_port, "north-lock-9"), (broker.push_port, "north-lock-9"),
                           (broker.device_port, ServiceAccount.GATEWAY), (broker.device_port, ServiceAccount.PUSH)):
        refused = Client(port, username, attacker_pw, "whoever")
        assert refused.connect() in (134, 135), (port, username)  # bad user name or password / not authorised
        refused.close()
    gateway, gateway_id = start_gateway(world, broker)
    spy = Client(broker.device_port, "north-lock-9", attacker_pw, gateway_id)
    push = Client(broker.push_port, ServiceAccount.PUSH, PUSH_PW, "steward-push-test")
    meter = Client(broker.device_port, "north-meter-7", meter_pw, "north-meter-7")
    try:
        assert spy.connect() == 0 and push.connect() == 0 and meter.connect() == 0
        spy.c.subscribe([("community/#", 1), ("staff/#", 1), ("$SYS/#", 0)])
        spy.subscribed.get(timeout=10)
        push.publish_acked("staff/n-wang/alerts", {"text": "Level 1", "ack_url": "https://x/oncall/links/secret"})
        meter.publish_acked(f"community/{OWN}/water/north-meter-7/telemetry", reading(1))
        # The gateway stored the meter's reading, so the broker had delivered it: a spy allowed to read would
        # have it (and the page published before it) by now.
        assert wait_stored(world.dsn, "north-meter-7", 1) == 1
        with pytest.raises(queue.Empty):
            print(spy.messages.get_nowait())
    finally:
        for c in (spy, push, meter):
            c.close()
        gateway.stop()


def test_on_call_push_cannot_take_the_gateways_session(world: World, broker: ProductionBroker,
                                                      api: TestClient) -> None:
    # Client ids are one namespace across the broker's listeners: push on the services' listener used to be let
    # in with the gateway's client id and closed the gateway's connection ("already connected, closing old").
    gateway, gateway_id = start_gateway(world, broker)
    try:
        for port, username, password in ((broker.push_port, ServiceAccount.PUSH, PUSH_PW),
                                         (broker.service_port, ServiceAccount.PUSH, PUSH_PW),
                                         (broker.push_port, ServiceAccount.GATEWAY, GATEWAY_PW)):
            intruder = Client(port, username, password, gateway_id, clean=False)
            try:
                code = intruder.connect()
            except queue.Empty:
                code = -1  # no CONNACK at all: not let in either
            intruder.close()
            # Push is let in only on its own listener, as itself; the other two are refused outright.
            own = (port, username) == (broker.push_port, ServiceAccount.PUSH)
            assert code == 0 if own else code in (134, 135), (port, username, code)  # bad password / not authorised
        meter_pw = provision(api, world.headers(f"admin-{OWN}"), "north-meter-7")
        meter = Client(broker.device_port, "north-meter-7", meter_pw, "north-meter-7")
        try:
            assert meter.connect() == 0
            meter.publish_acked(f"community/{OWN}/water/north-meter-7/telemetry", reading(1))
            assert wait_stored(world.dsn, "north-meter-7", 1) == 1  # the gateway still has its session
        finally:
            meter.close()
    finally:
        gateway.stop()
    log = broker.log
    assert f"Client {gateway_id} already connected" not in log, log[-3000:]
    assert len(re.findall(rf"New client connected from .* as {re.escape(gateway_id)} ", log)) == 1, log[-3000:]
    assert re.search(r"as steward-push .*u'steward-push'", log), log[-3000:]  # push's session is its name


def test_a_device_id_in_the_service_namespace_is_refused(world: World, broker: ProductionBroker,
                                                         api: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    for device_id in ("steward-gateway", "Steward-Gateway", "steward-push", "steward-anything"):
        r = api.post("/devices", headers=admin, json={"device_id": device_id, "community_id": OWN,
                                                      "device_type": "water", "kind": "meter"})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["field"] == "body.device_id" and "reserved for Steward's own broker accounts" in error["message"]
    store = MosquittoPasswordFile(broker.devices_passwd, reload=broker.hup)
    with pytest.raises(ValueError, match="reserved"):
        store.set_password("steward-gateway", "attacker")
    with pytest.raises(ValueError, match="reserved"):
        store.revoke("steward-gateway")
    assert broker.devices_passwd.read_text() == ""
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM devices WHERE device_id ILIKE 'steward-%'").fetchone() == (0,)
    # The gateway still logs in with its own password.
    gateway = Client(broker.service_port, ServiceAccount.GATEWAY, GATEWAY_PW, "steward-gateway-check")
    assert gateway.connect() == 0
    gateway.close()


def test_the_gateways_client_id_is_per_installation_and_in_the_service_namespace(admin_dsn: str) -> None:
    from ingest.migrate import migrate
    from steward.databases import create_database, drop_database

    ids = []
    for _ in range(2):
        dsn = create_database(admin_dsn)
        try:
            migrate(dsn)
            migrate(dsn)  # made once
            with psycopg.connect(dsn) as conn:
                ids.append(installation_id(conn))
                assert installation_id(conn) == ids[-1]
        finally:
            drop_database(admin_dsn, dsn)
    assert ids[0] != ids[1] and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert gateway_client_id(ids[0]) == f"steward-gateway-{ids[0]}"
    assert Settings().mqtt_client_id is None  # no public default: derived from the installation id
    with pytest.raises(ValueError, match="namespace no device can be given"):
        Settings(mqtt_client_id="gateway-1")
