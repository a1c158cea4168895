"""A real paho publisher, a private Mosquitto, the gateway and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.mqtt_client import stop_network
from gateway.service import Gateway, GatewayConfig
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import (
    BASE_TS,
    GATEWAY_NOW,
    GATEWAY_NOW_MS,
    count,
    flow,
    register_meters,
    running_gateway,
    wait_for,
)


@pytest.fixture
def gateway(mosquitto: MosquittoBroker, database_url: str) -> Iterator[Gateway]:
    gw = Gateway(
        GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-test", batch_size=500),
        clock=lambda: GATEWAY_NOW,
    )
    gw.start()
    wait_for(lambda: gw.status()["broker_connected"], 10, "the gateway to connect")
    yield gw
    gw.stop()


def test_every_event_is_stored_exactly_once(gateway: Gateway, mosquitto: MosquittoBroker, database_url: str) -> None:
    devices = register_meters(database_url, 50)
    messages = [flow(devices[i % 50], i) for i in range(5000)]
    assert publish_all(mosquitto.url, messages) == 5000
    assert gateway.wait_committed(5000, timeout=60)
    assert count(database_url, "SELECT count(*) FROM events") == 5000
    assert count(database_url, "SELECT count(DISTINCT (device_id, msg_id)) FROM events") == 5000
    with psycopg.connect(database_url) as conn:
        value, fields = conn.execute(
            "SELECT value, fields FROM events WHERE device_id = %s AND msg_id = 'm51'", (devices[1],)
        ).fetchone()
    assert value == pytest.approx(0.1) and fields == {"flow_lpm": 0.1, "total_l": 1051.0}


def test_mqtt5_session_stores_everything_once(mosquitto: MosquittoBroker, database_url: str) -> None:
    """The MQTT 5 path (Receive Maximum as the in-flight cap) keeps the same promises."""
    devices = register_meters(database_url, 10)
    config = GatewayConfig(
        mqtt=MqttEndpoint(mosquitto.url),
        database_url=database_url,
        client_id="gw-v5",
        protocol="5",
        batch_size=300,
        max_in_flight=500,
    )
    with running_gateway(config) as gw:
        assert publish_all(mosquitto.url, [flow(devices[i % 10], i) for i in range(3000)]) == 3000
        assert gw.wait_committed(3000, timeout=60)
    assert count(database_url, "SELECT count(DISTINCT (device_id, msg_id)) FROM events") == 3000
    assert count(database_url, "SELECT count(*) FROM events") == 3000


def test_mqtt5_messages_with_properties_are_stored_with_the_rest(mosquitto: MosquittoBroker, database_url: str) -> None:
    """Mosquitto forwards a publisher's MQTT 5 properties; such packets take paho's own
    parser instead of the bulk path, and nothing is lost or reordered for it."""
    devices = register_meters(database_url, 4)
    config = GatewayConfig(
        mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-v5p", protocol="5"
    )
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="pub-v5", protocol=mqtt.MQTTv5)
    with running_gateway(config) as gw:
        through_paho: list[int] = []
        paho_path = gw.session.client.on_message  # type: ignore[union-attr]
        gw.session.client.on_message = lambda c, u, m: (through_paho.append(m.mid), paho_path(c, u, m))  # type: ignore[union-attr]
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        try:
            infos = []
            for i in range(400):
                topic, payload = flow(devices[i % 4], i)
                props = None
                if i % 3 == 0:
                    props = Properties(PacketTypes.PUBLISH)
                    props.UserProperty = ("firmware", "2.4.1")
                infos.append(publisher.publish(topic, payload, qos=1, properties=props))
            for info in infos:
                info.wait_for_publish(10)
            assert gw.wait_committed(400, timeout=60)
        finally:
            stop_network(publisher)
    assert count(database_url, "SELECT count(DISTINCT (device_id, msg_id)) FROM events") == 400
    assert count(database_url, "SELECT count(*) FROM events") == 400
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    assert len(through_paho) == 134  # every third message carried a property


def test_a_lone_message_is_committed_once_the_broker_has_nothing_more(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    """The batch linger is only the longest wait: when the socket runs dry there is no
    company to wait for, so a lone SOS is committed (and paged) at once."""
    (device,) = register_meters(database_url, 1)
    config = GatewayConfig(
        mqtt=MqttEndpoint(mosquitto.url),
        database_url=database_url,
        client_id="gw-lone",
        batch_size=10_000,
        batch_linger_s=30.0,
    )
    with running_gateway(config) as gw:
        assert publish_all(mosquitto.url, [flow(device, 1)]) == 1
        assert gw.wait_committed(1, timeout=10), "held back for the 30 s linger"


def test_a_repeated_id_is_stored_once(gateway: Gateway, mosquitto: MosquittoBroker, database_url: str) -> None:
    (device,) = register_meters(database_url, 1)
    message = flow(device, 7)
    publish_all(mosquitto.url, [message, message])
    assert gateway.wait_committed(1, timeout=20)
    wait_for(lambda: gateway.duplicates >= 1, 20, "the second copy to be counted as a duplicate")
    publish_all(mosquitto.url, [message])  # again, in a later batch
    wait_for(lambda: gateway.duplicates >= 2, 20, "the third copy to be counted as a duplicate")
    assert count(database_url, "SELECT count(*) FROM events") == 1


BAD_INPUTS = [
    # (topic, payload, reason, words the stored detail must contain)
    ("community/c1/water/wm00000/telemetry", b'{"id": "x", "ts": ', "malformed_json", "truncated"),
    ("community/c1/boiler/wm00000/telemetry", b"{}", "unknown_device_type", "boiler"),
    ("community/c1/water/wm00000/logs", b"{}", "unknown_stream", "logs"),
    ("community/c1/water/wm00000", b"{}", "bad_topic", "community/"),
    (
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "flow", "flow_lpm": "fast"}).encode(),
        "invalid_payload",
        "$.flow_lpm",
    ),
    (
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "flow"}).encode(),
        "invalid_payload",
        "flow_lpm",
    ),
    (
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a", "type": "flow", "flow_lpm": 1}).encode(),
        "invalid_payload",
        "ts",
    ),
    (  # PostgreSQL cannot store it: every attempt to store its batch would fail
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a\u0000b", "ts": BASE_TS, "type": "flow", "flow_lpm": 1}).encode(),
        "invalid_payload",
        "NUL",
    ),
    (
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "volcano"}).encode(),
        "unknown_type",
        "$.type",
    ),
    (
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "flow", "flow_lpm": 1, "pad": "x" * 70_000}).encode(),
        "oversized",
        "65536",
    ),
    (
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a", "ts": GATEWAY_NOW_MS + 3_600_000, "type": "flow", "flow_lpm": 1}).encode(),
        "future_timestamp",
        "ahead",
    ),
    (
        "community/c1/water/wm00000/telemetry",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "flow", "flow_lpm": 1, "device_id": "wm99999"}).encode(),
        "device_mismatch",
        "wm99999",
    ),
    (
        "community/c1/water/ghost/telemetry",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "flow", "flow_lpm": 1}).encode(),
        "unknown_device",
        "not registered",
    ),
    (
        "community/c2/water/wm00000/telemetry",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "flow", "flow_lpm": 1}).encode(),
        "unknown_device",
        "community 'c2'",
    ),
    (
        "community/c1/elevator/wm00000/event",
        json.dumps({"id": "a", "ts": BASE_TS, "type": "alarm_button"}).encode(),
        "unknown_device",
        "water device",
    ),
]


def test_bad_input_is_dead_lettered_with_its_reason_and_valid_traffic_flows(
    gateway: Gateway, mosquitto: MosquittoBroker, database_url: str
) -> None:
    register_meters(database_url, 1)
    messages = []
    for i, (topic, payload, _, _) in enumerate(BAD_INPUTS):
        messages.append(flow("wm00000", 2 * i))  # valid traffic interleaved with every bad message
        messages.append((topic, payload))
    publish_all(mosquitto.url, messages)
    wait_for(
        lambda: gateway.rejected >= len(BAD_INPUTS) and gateway.committed >= len(BAD_INPUTS),
        30,
        "all messages to be handled",
    )
    assert count(database_url, "SELECT count(*) FROM events") == len(BAD_INPUTS)
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT topic, reason, detail, payload, payload_size FROM dead_letters").fetchall()
    # Two writers commit batches side by side, so the letters' ids need not follow the
    # order of arrival: each is found by its topic and (kept) payload.
    by_input = {(topic, bytes(kept)): (reason, detail, size) for topic, reason, detail, kept, size in stored}
    assert len(stored) == len(by_input) == len(BAD_INPUTS)
    for topic, payload, reason, words in BAD_INPUTS:
        stored_reason, detail, size = by_input[(topic, payload[:4096])]
        assert stored_reason == reason and words in detail, (reason, stored_reason, detail)
        assert size == len(payload)


class RecordingDetectors:
    """Stands in for the detector runtime to observe when the gateway calls it."""

    def __init__(self) -> None:
        self.gateway: Gateway | None = None
        self.ticks_at_committed: list[int] = []
        self.processed = 0

    def restore(self, conn: object) -> None:
        pass

    def process(self, conn: object, events: list) -> None:
        self.processed += len(events)

    def tick(self, conn: object, now: object) -> None:
        assert self.gateway is not None
        self.ticks_at_committed.append(self.gateway.committed)

    def checkpoint(self, conn: object) -> None:
        pass


def test_detector_timers_wait_until_a_backlog_has_drained(mosquitto: MosquittoBroker, database_url: str) -> None:
    """After an outage the broker holds a backlog; "offline for 10 minutes" must not fire
    on the wall clock while the devices' messages are still waiting to be read."""
    devices = register_meters(database_url, 20)
    config = GatewayConfig(
        mqtt=MqttEndpoint(mosquitto.url),
        database_url=database_url,
        client_id="gw-backlog",
        batch_size=100,
        batch_linger_s=1.0,
        tick_interval_s=0.0,
        settle_s=0.5,
    )
    first = Gateway(config).start()
    wait_for(lambda: first.status()["broker_connected"], 10, "the session to exist")
    first.stop()
    publish_all(mosquitto.url, [flow(devices[i % 20], i) for i in range(3000)])  # the backlog
    detectors = RecordingDetectors()
    gw = Gateway(config, sink=detectors)
    detectors.gateway = gw
    gw.start()
    try:
        assert gw.wait_committed(3000, timeout=60)
        wait_for(lambda: len(detectors.ticks_at_committed) >= 2, 20, "ticks once caught up")
    finally:
        gw.stop()
    assert detectors.processed == 3000
    assert min(detectors.ticks_at_committed) == 3000, detectors.ticks_at_committed[:10]


def test_device_last_seen_and_battery_are_recorded(mosquitto: MosquittoBroker, database_url: str) -> None:
    (device,) = register_meters(database_url, 1)
    heartbeat = (
        f"community/c1/water/{device}/status",
        json.dumps({"id": "hb1", "ts": BASE_TS + 1000, "type": "heartbeat", "battery": 42}).encode(),
    )
    later, earlier = flow(device, 1, ts_ms=BASE_TS + 5000), flow(device, 2, ts_ms=BASE_TS)  # out of order
    gw = Gateway(GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-seen"))
    gw.start()
    try:
        wait_for(lambda: gw.status()["broker_connected"], 10, "the gateway to connect")
        publish_all(mosquitto.url, [heartbeat, later, earlier])
        assert gw.wait_committed(3, timeout=20)
    finally:
        gw.stop()  # flushes what is kept in memory between periodic flushes
    with psycopg.connect(database_url) as conn:
        seen, battery = conn.execute(
            "SELECT last_seen_at, battery FROM devices WHERE device_id = %s", (device,)
        ).fetchone()
    assert seen.timestamp() * 1000 == BASE_TS + 5000  # the newest event time, not the last received
    assert battery == 42
