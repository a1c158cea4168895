"""A QoS 1 bulk publisher that never drops a message (tests and benchmarks).

paho drops a publish when more than 65,535 are unacknowledged
(MQTT_ERR_QUEUE_SIZE), so in-flight messages are bounded and every return
code is checked; it returns only when the broker acknowledged every message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.endpoint import MqttEndpoint
from gateway.mqtt_client import stop_network


class PublishError(RuntimeError):
    pass


def publish_all(
    url: str,
    messages: Iterable[tuple[str, bytes]],
    *,
    client_id: str = "",
    username: str | None = None,
    password: str | None = None,
    max_in_flight: int = 100,
    max_queued: int = 1000,
    timeout_s: float = 600.0,
    protocol: int = mqtt.MQTTv311,
) -> int:
    """Publish every (topic, payload) with QoS 1; return how many the broker acknowledged."""
    endpoint = MqttEndpoint(url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    user = username or endpoint.username
    if user:
        client.username_pw_set(user, password or endpoint.password)
    # paho keeps at most ``max_in_flight`` on the wire and queues the rest itself; its
    # queue handling is linear in the queue length, so the total is kept small too.
    client.max_inflight_messages_set(max_in_flight)
    client.max_queued_messages_set(0)
    slots = threading.BoundedSemaphore(max_in_flight + max_queued)
    acked = 0
    lock = threading.Lock()
    connected = threading.Event()

    def on_publish(c: mqtt.Client, userdata: object, mid: int, reason_code: object, properties: object) -> None:
        nonlocal acked
        with lock:
            acked += 1
        slots.release()

    client.on_publish = on_publish
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.connect(endpoint.host, endpoint.port, keepalive=60)
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    try:
        if not connected.wait(10):
            raise PublishError(f"could not connect to {endpoint!r}")
        sent = 0
        for topic, payload in messages:
            if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise PublishError(f"timed out with {sent - acked} messages unacknowledged")
            info = client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise PublishError(f"publish returned {mqtt.error_string(info.rc)} after {sent} messages")
            sent += 1
        while True:
            with lock:
                if acked >= sent:
                    return acked
            if time.monotonic() > deadline:
                raise PublishError(f"only {acked} of {sent} messages acknowledged before the deadline")
            time.sleep(0.005)  # polling the counter; the deadline bounds the wait
    finally:
        stop_network(client)
