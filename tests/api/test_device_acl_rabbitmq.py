"""Device credentials on the clustered broker (RabbitMQ, ``docker-compose.cluster.yml``),
against a real node of Debian's RabbitMQ with the MQTT and management plugins:
provisioning creates the device's user through the management API, its topic
permission confines it to its own id (a dot in the id included), retiring deletes it.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from api.app import create_app
from api.credentials import RabbitMQUsers
from gateway.mqtt_client import stop_network
from steward import rabbitmq
from steward.brokers import free_port, wait_for_port
from tests.api.conftest import OWN, World


@pytest.fixture
def node(tmp_path: Path) -> Iterator[rabbitmq.RabbitNode]:
    if not rabbitmq.available():
        pytest.fail("rabbitmq-server is not installed: run the README's test command, which installs it")
    n = rabbitmq.RabbitNode(
        name=f"steward-acl-{os.getpid()}@localhost", workdir=tmp_path / "rmq", amqp_port=free_port(),
        mqtt_port=free_port(), dist_port=free_port(), epmd_port=free_port(), cookie=os.urandom(16).hex().upper(),
        management_port=free_port(), anonymous=False,
    )
    n.start()
    try:
        n.wait_started()
        assert n.management_port is not None
        wait_for_port("127.0.0.1", n.management_port, 120)
        yield n
    finally:
        n.stop()


class Client:
    """An MQTT 3.1.1 client (RabbitMQ 3.10 speaks no MQTT 5): connect result, PUBACKs, disconnects."""

    def __init__(self, port: int, username: str, password: str, client_id: str) -> None:
        self.port = port
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.c.username_pw_set(username, password)
        self.c.on_connect = lambda c, u, f, rc, p: self.events.put(("connect", rc.value))
        self.c.on_message = lambda c, u, m: self.events.put(("message", m.topic))
        self.c.on_publish = lambda c, u, mid, rc, p: self.events.put(("puback", mid))
        self.c.on_disconnect = lambda c, u, f, rc, p: self.events.put(("disconnect", rc.value))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.events.put(("suback", mid))

    def next(self, kind: str, timeout: float = 20) -> object:
        deadline = time.monotonic() + timeout
        while True:
            got, value = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if got == kind:
                return value

    def connect(self) -> int:
        self.c.connect("127.0.0.1", self.port)
        self.c.loop_start()
        return int(self.next("connect"))  # type: ignore[call-overload]

    def publish(self, topic: str, msg_id: str) -> int:
        body = {"id": msg_id, "ts": 1_795_000_000_000, "type": "heartbeat"}  # a set event time, not this clock
        return self.c.publish(topic, json.dumps(body), qos=1).mid

    def close(self) -> None:
        stop_network(self.c)


def test_device_credentials_on_rabbitmq_confine_each_device_to_its_own_id(world: World, node: rabbitmq.RabbitNode) -> None:
    users = RabbitMQUsers(f"http://guest:guest@127.0.0.1:{node.management_port}")
    app = create_app(database_url=world.dsn, broker=users)
    admin = world.headers(f"admin-{OWN}")
    with TestClient(app) as api:
        # A dot is a level separator to RabbitMQ: such an id could not be confined, so it gets
        # no credentials (and is not registered: the transaction rolls back).
        r = api.post("/devices", headers=admin, json={"device_id": "lift.7", "community_id": OWN,
                                                      "device_type": "elevator", "kind": "lift"})
        assert r.status_code == 422 and "without dots" in r.text and not users.has_user("lift.7")
        assert api.get("/devices/lift.7", headers=admin).status_code == 404
        creds = {}
        for device_id in ("lift-7", "lift-8"):
            r = api.post("/devices", headers=admin, json={"device_id": device_id, "community_id": OWN,
                                                          "device_type": "elevator", "kind": "lift"})
            assert r.status_code == 201, r.text
            creds[device_id] = r.json()["credentials"]
            assert creds[device_id]["applied_to_broker"] is True and users.has_user(device_id)

        observer = Client(node.mqtt_port, "guest", "guest", "acl-observer")
        device = Client(node.mqtt_port, "lift-7", creds["lift-7"]["password"], "lift-7")
        try:
            assert observer.connect() == 0
            observer.c.subscribe("community/#", qos=1)
            observer.next("suback")
            assert device.connect() == 0
            own = device.publish(f"community/{OWN}/elevator/lift-7/status", "own-1")
            assert device.next("puback") == own
            assert observer.next("message") == f"community/{OWN}/elevator/lift-7/status"

            # Another device's id: RabbitMQ refuses the publish and closes the connection.
            device.publish(f"community/{OWN}/elevator/lift-8/status", "forged-1")
            device.next("disconnect")
            # A marker published after the refusal: had the forged message been routed, the
            # observer's queue would hold it before the marker.
            observer.c.publish("community/marker/elevator/none/status", b"{}", qos=1)
            assert observer.next("message") == "community/marker/elevator/none/status"
        finally:
            device.close()
            observer.close()

        # Retiring deletes the user: a connection it has open is closed, the old password no
        # longer connects; a wrong one never did.
        other = Client(node.mqtt_port, "lift-8", creds["lift-8"]["password"], "lift-8")
        assert other.connect() == 0
        assert api.post("/devices/lift-8/retire", headers=admin).status_code == 200
        other.next("disconnect")
        other.close()
        assert api.post("/devices/lift-7/retire", headers=admin).status_code == 200
        assert not users.has_user("lift-7")
        retired = Client(node.mqtt_port, "lift-7", creds["lift-7"]["password"], "lift-7-again")
        wrong = Client(node.mqtt_port, "lift-9", "not-the-password", "lift-9-wrong")
        try:
            assert retired.connect() in (134, 135)  # bad username or password / not authorised (paho's codes)
            assert wrong.connect() in (134, 135)
        finally:
            retired.close()
            wrong.close()


def test_the_management_api_refuses_a_service_account() -> None:
    users = RabbitMQUsers("http://admin:pw@127.0.0.1:1")  # never reached: refused before any request
    with pytest.raises(ValueError, match="reserved"):
        users.set_password("steward-gateway", "x")
    with pytest.raises(ValueError, match="http"):
        RabbitMQUsers("amqp://admin:pw@rabbitmq-1:5672")


def test_service_accounts_on_rabbitmq_have_least_privilege(node: rabbitmq.RabbitNode) -> None:
    """docker-compose.cluster.yml's rabbitmq-accounts: on-call push publishes staff alerts and
    nothing else (no community/# subscription, no device topic); the gateway reads community/#
    through its own session and cannot read staff/#."""
    # As the compose file's rabbitmq-accounts service runs it.
    env = {**os.environ, "STEWARD_RABBITMQ_MANAGEMENT_URL": f"http://guest:guest@127.0.0.1:{node.management_port}",
           "STEWARD_MQTT_PASSWORD": "gateway-pw", "STEWARD_MQTT_PUSH_PASSWORD": "push-pw"}
    done = subprocess.run([sys.executable, "-m", "steward", "rabbitmq-accounts", "--wait", "60"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    users = RabbitMQUsers(env["STEWARD_RABBITMQ_MANAGEMENT_URL"])
    assert users.has_user("steward-push") and users.has_user("steward-gateway")

    def suback(client: Client, topic: str) -> str:
        """'granted', 'refused' (SUBACK 0x80) or 'closed' (the broker closed the connection)."""
        codes: queue.Queue[list[int]] = queue.Queue()
        client.c.on_subscribe = lambda c, u, mid, rcs, p: codes.put([rc.value for rc in rcs])
        client.c.subscribe(topic, qos=1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                got = codes.get(timeout=0.1)
                return "refused" if got[0] >= 0x80 else "granted"
            except queue.Empty:
                pass
            try:
                kind, _ = client.events.get_nowait()
                if kind == "disconnect":
                    return "closed"
            except queue.Empty:
                pass
        raise AssertionError(f"no SUBACK nor disconnect for {topic} within 20 s")

    observer = Client(node.mqtt_port, "guest", "guest", "svc-observer")
    try:
        assert observer.connect() == 0
        assert suback(observer, "#") == "granted"

        push = Client(node.mqtt_port, "steward-push", "push-pw", "steward-push-inst-1")
        try:
            assert push.connect() == 0
            mid = push.publish("staff/s1/alerts", "alert-1")
            assert push.next("puback") == mid
            assert observer.next("message") == "staff/s1/alerts"
            assert suback(push, "community/#") in ("refused", "closed")
        finally:
            push.close()
        push = Client(node.mqtt_port, "steward-push", "push-pw", "steward-push-inst-2")
        try:
            assert push.connect() == 0
            push.publish(f"community/{OWN}/elevator/lift-7/status", "forged-by-push")
            push.next("disconnect")
        finally:
            push.close()
        # Had the forged message been routed, the observer would get it before this marker.
        observer.c.publish("community/marker/elevator/none/status", b"{}", qos=1)
        assert observer.next("message") == "community/marker/elevator/none/status"

        gateway = Client(node.mqtt_port, "steward-gateway", "gateway-pw", "steward-gateway-inst")
        gateway.c._clean_session = False  # the gateway's persistent session
        try:
            assert gateway.connect() == 0
            assert suback(gateway, "community/#") == "granted"
            observer.c.publish(f"community/{OWN}/elevator/lift-7/status", b"{}", qos=1)
            assert gateway.next("message") == f"community/{OWN}/elevator/lift-7/status"
            assert suback(gateway, "staff/#") in ("refused", "closed")
        finally:
            gateway.close()
    finally:
        observer.close()
