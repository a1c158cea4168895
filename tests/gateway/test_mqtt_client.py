"""The gateway's bulk PUBLISH reader, fed byte streams over a real socket pair.

Every packet is built here by the MQTT wire rules, and each stream is cut at
every offset (or many), because a socket read can end anywhere: in the fixed
header, inside the Remaining Length, in the topic, the packet id or the payload.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.mqtt_client import BufferedClient, Publish


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: bytes, payload: bytes, *, qos: int = 1, mid: int = 1, properties: bytes | None = None) -> bytes:
    """A PUBLISH packet; ``properties`` given means MQTT 5 (b"" is an empty property list)."""
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if properties is not None:
        body += remaining_length(len(properties)) + properties
    body += payload
    return bytes([0x30 | (qos << 1)]) + remaining_length(len(body)) + body


PINGRESP = b"\xd0\x00"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    yield ours, broker
    ours.close()
    broker.close()


def connected_client(protocol: int = mqtt.MQTTv311) -> tuple[BufferedClient, list[Publish], socket.socket]:
    """A client whose socket's other end is played by the test (paho closes its socket when
    the client is collected, so each client gets a new pair)."""
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client, received = client_on(ours, protocol)
    return client, received, broker


def client_on(sock: socket.socket, protocol: int = mqtt.MQTTv311) -> tuple[BufferedClient, list[Publish]]:
    client = BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol, manual_ack=True
    )
    client._sock = sock  # what connect() would have set
    received: list[Publish] = []
    client.on_publishes = received.extend
    # paho's own path (packets the bulk path leaves to it) must land in the same list, in order.
    client.on_message = lambda c, u, m: received.append((bytes(m._topic), m.mid, m.qos, bytes(m.payload)))
    return client, received


def feed(client: BufferedClient, broker: socket.socket, stream: bytes, cuts: list[int]) -> None:
    start = 0
    for cut in [*cuts, len(stream)]:
        if cut > start:
            broker.sendall(stream[start:cut])
            assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
            start = cut


def split_points(n: int, limit: int = 400) -> Iterator[list[int]]:
    step = max(1, n // limit)
    for cut in range(1, n, step):
        yield [cut]
    yield list(range(1, n))  # one byte at a time


# (topic, packet id, QoS, payload): what on_publishes receives.
MIXED: list[Publish] = [
    (b"community/c1/water/wm1/telemetry", 1, 1, b'{"id":"a"}'),
    (b"community/c1/water/wm1/telemetry", 2, 1, b"x" * 200),  # 2-byte Remaining Length
    (b"community/c1/elderly/h1/event", 0, 0, b""),  # QoS 0, empty payload
    (b"community/c1/access/r1/event", 65_535, 1, b"y" * 20_000),  # 3-byte Remaining Length
    (b"community/c1/elevator/l1/event", 3, 1, "\u5e73\u5c42".encode()),  # UTF-8 payload
]


def test_publishes_arrive_whole_and_in_order_wherever_the_reads_end() -> None:
    stream = b"".join(publish(t, p, qos=q, mid=m) for t, m, q, p in MIXED[:3]) + PINGRESP
    stream += b"".join(publish(t, p, qos=q, mid=m) for t, m, q, p in MIXED[3:])
    for cuts in split_points(len(stream)):
        client, received, broker = connected_client()
        client._ping_t = 1.0  # waiting for a PINGRESP, which paho's own parser must clear
        feed(client, broker, stream, cuts)
        assert received == MIXED, cuts
        assert client._ping_t == 0
        assert client.pending_bytes() == 0
        broker.close()


def test_mqtt5_properties_go_through_paho_in_order() -> None:
    user_property = b"\x26" + struct.pack("!H", 1) + b"k" + struct.pack("!H", 1) + b"v"
    stream = (
        publish(b"community/c1/water/wm1/telemetry", b"plain", mid=1, properties=b"")
        + publish(b"community/c1/water/wm1/telemetry", b"with-user-property", mid=2, properties=user_property)
        + publish(b"community/c1/water/wm2/telemetry", b"plain-again", mid=3, properties=b"")
    )
    for cuts in split_points(len(stream), limit=150):
        client, received, broker = connected_client(mqtt.MQTTv5)
        feed(client, broker, stream, cuts)
        assert [(mid, payload) for _, mid, _, payload in received] == [
            (1, b"plain"),
            (2, b"with-user-property"),
            (3, b"plain-again"),
        ], cuts
        broker.close()


def test_an_over_long_remaining_length_closes_the_connection(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, broker = pair
    client, received = client_on(ours)
    lost: list[object] = []
    client.on_disconnect = lambda *args: lost.append(args)
    broker.sendall(publish(b"community/c1/water/wm1/telemetry", b"ok") + b"\x32\xff\xff\xff\xff\x01")
    rc = client.loop_read()
    assert rc == mqtt.MQTT_ERR_PROTOCOL
    assert [p for _, _, _, p in received] == [b"ok"]  # what came before is still delivered
    assert lost and client._sock is None


def test_the_broker_closing_the_socket_is_a_lost_connection(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, broker = pair
    client, received = client_on(ours)
    client.on_disconnect = lambda *args: None
    broker.sendall(publish(b"community/c1/water/wm1/telemetry", b"last")[:-2])  # cut inside the payload
    assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    broker.close()
    assert client.loop_read() == mqtt.MQTT_ERR_CONN_LOST
    assert received == []  # a partial packet is never delivered


def test_ack_many_writes_every_puback_in_one_packet_queue_entry() -> None:
    client = BufferedClient(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    client.ack_many([1, 2, 65_535])
    (queued,) = client._out_packet
    assert queued["packet"] == b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02\xff\xff"


def test_batches_are_acknowledged_in_the_order_they_were_taken() -> None:
    """Two writers may commit out of order; the PUBACKs still leave in arrival order, and
    never for a message received on an earlier connection."""
    from gateway.endpoint import MqttEndpoint
    from gateway.service import Gateway, GatewayConfig

    gw = Gateway(GatewayConfig(mqtt=MqttEndpoint("mqtt://127.0.0.1:1"), database_url="postgresql://unused"))
    gw.session.client = BufferedClient(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    gw.session.generation = 2

    def batch(*mids: int, generation: int = 2) -> list:
        return [(generation, mid, 1, None, b"") for mid in mids]

    def sent() -> list[int]:
        out = []
        while gw.session.client._out_packet:
            data = gw.session.client._out_packet.popleft()["packet"]
            out += [struct.unpack_from("!H", data, i + 2)[0] for i in range(0, len(data), 4)]
        return out

    gw.acks.acknowledge(1, batch(3, 4))  # the second batch committed first: held back
    assert sent() == []
    gw.acks.acknowledge(0, batch(1, 2) + batch(9, generation=1))  # the first: both go, in order
    assert sent() == [1, 2, 3, 4]
    gw.acks.acknowledge(3, batch(7))
    gw.acks.acknowledge(2, [])  # a batch abandoned at stop (never committed) lets the next one go
    assert sent() == [7]
