"""When a writer takes a batch, and what the gateway knows before its first message."""

from __future__ import annotations

import threading
import time

import psycopg
from paho.mqtt.client import ConnectFlags
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.service import Gateway, GatewayConfig
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import BASE_TS, flow, register_meters, running_gateway, wait_for


def _idle_gateway(linger_s: float) -> Gateway:
    """A gateway that is not started: its queue and batching only, no threads."""
    return Gateway(
        GatewayConfig(
            mqtt=MqttEndpoint("mqtt://127.0.0.1:1"),
            database_url="postgresql://unused",
            batch_size=1000,
            batch_linger_s=linger_s,
        )
    )


def _received(gw: Gateway, n: int) -> None:
    """n messages off one socket read, the broker still sending."""
    gw.inflight.put([(1, mid, 1, None, b"{}") for mid in range(1, n + 1)])  # type: ignore[misc]


def test_an_idle_database_takes_what_waits_without_lingering() -> None:
    gw = _idle_gateway(linger_s=30)
    _received(gw, 3)
    started = time.monotonic()
    number, batch = gw.inflight.take()
    assert (number, len(batch)) == (0, 3)
    assert time.monotonic() - started < 10  # not the 30 s linger


def test_while_a_batch_is_written_the_next_waits_for_company() -> None:
    gw = _idle_gateway(linger_s=0.3)
    _received(gw, 10)
    assert len(gw.inflight.take()[1]) == 10  # in flight: taken, not yet committed
    _received(gw, 3)
    started = time.monotonic()
    number, batch = gw.inflight.take()
    assert (number, len(batch)) == (1, 3)
    assert time.monotonic() - started >= 0.3  # it waited out the linger for more


def test_a_quiet_broker_ends_the_wait_at_once() -> None:
    gw = _idle_gateway(linger_s=30)
    _received(gw, 10)
    gw.inflight.take()
    _received(gw, 3)
    taken: list[int] = []
    writer = threading.Thread(target=lambda: taken.append(len(gw.inflight.take()[1])))
    writer.start()
    gw.inflight.drained()  # the socket read found nothing more
    writer.join(10)
    assert not writer.is_alive() and taken == [3]


def test_the_database_is_known_before_the_first_message(mosquitto: MosquittoBroker, database_url: str) -> None:
    config = GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-start")
    with running_gateway(config) as gw:
        wait_for(lambda: gw.status()["database_ok"], 10, "/health's database_ok before any message")
        # A device registered after the start is known when its first message comes.
        (device,) = register_meters(database_url, 1)
        publish_all(mosquitto.url, [flow(device, 1)])
        assert gw.wait_committed(1, timeout=20)
        assert gw.rejected == 0


def test_stopping_records_the_last_seen_time_kept_since_the_last_flush(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    (device,) = register_meters(database_url, 1)
    config = GatewayConfig(
        mqtt=MqttEndpoint(mosquitto.url),
        database_url=database_url,
        client_id="gw-seen-stop",
        writers=1,
        last_seen_flush_s=3600,  # after the first flush, only stopping writes it
    )
    with running_gateway(config) as gw:
        publish_all(mosquitto.url, [flow(device, 1, ts_ms=BASE_TS)])
        assert gw.wait_committed(1, timeout=20)
        publish_all(mosquitto.url, [flow(device, 2, ts_ms=BASE_TS + 5000)])
        assert gw.wait_committed(2, timeout=20)
    with psycopg.connect(database_url) as conn:
        (seen,) = conn.execute("SELECT last_seen_at FROM devices WHERE device_id = %s", (device,)).fetchone()
    assert seen.timestamp() * 1000 == BASE_TS + 5000


def test_connected_counts_from_the_subscription_acknowledged() -> None:
    """On a new session, a message published between the CONNACK and the SUBACK is
    never delivered: /health says connected only once the broker granted the
    subscription (paho's own client and reason codes; the broker's answers are
    played to the callbacks, since Mosquitto grants every subscription here)."""
    gw = _idle_gateway(linger_s=0.05)
    client = gw.session.make_client()  # never connected: subscribe() only queues
    gw.session.on_connect(client, None, ConnectFlags(session_present=False), ReasonCode(PacketTypes.CONNACK, "Success"), None)
    assert gw.status()["broker_connected"] is False
    gw.session.on_subscribe(client, None, 1, [ReasonCode(PacketTypes.SUBACK, "Unspecified error")], None)
    assert gw.status()["broker_connected"] is False
    gw.session.on_subscribe(client, None, 2, [ReasonCode(PacketTypes.SUBACK, "Granted QoS 1")], None)
    assert gw.status()["broker_connected"] is True
