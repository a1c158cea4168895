"""The gateway's MQTT session: connect, subscribe, receive and validate.

Runs on paho's network thread. What one socket read brought is validated
message by message (pure, ~1.5 us each) and handed to the in-flight queue as
one list. The session is persistent (MQTT 3.1.1 ``clean_session=false``, MQTT
5 a session expiry), so the broker keeps whatever was not acknowledged while
the gateway is away; `generation` counts connections, so that a PUBACK is
never sent on a later connection than the message came on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from domain.events import Rejection
from gateway import metrics
from gateway.endpoint import MqttEndpoint
from gateway.inflight import Inbound
from gateway.mqtt_client import BufferedClient, Publish, stop_network
from gateway.validate import Limits, validate_publish

log = logging.getLogger(__name__)


class BrokerSession:
    def __init__(
        self,
        *,
        endpoint: MqttEndpoint,
        client_id: str,
        protocol: str,
        topics: Iterable[str],
        limits: Limits,
        max_in_flight: int,
        session_expiry_s: int,
        received: Callable[[list[Inbound]], None],
        drained: Callable[[], None],
        now: Callable[[], dt.datetime],
        stop: threading.Event,
        # Short: a broker node that is back must find the session subscribed before
        # devices publish much (paho's default backoff reached 7 s after an outage).
        reconnect_delay_s: tuple[float, float] = (0.25, 2.0),
        may_reconnect: Callable[[], bool] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.protocol = protocol
        self.topics = list(topics)
        self.limits = limits
        self.max_in_flight = max_in_flight
        self.session_expiry_s = session_expiry_s
        self._received = received
        self._drained = drained
        self._now = now
        self._stop = stop
        self._reconnect_delay_s = reconnect_delay_s
        self.generation = 0  # changed only on the network thread (on_connect)
        self.connected = False  # from the SUBACK on
        self.connected_at = 0.0  # monotonic
        self.client: BufferedClient | None = None
        # Asked when the connection is lost (a shard's worker: "is the lease still
        # mine?"); False stops reconnecting, so that a worker that was paused does not
        # take the session back from the shard's new owner.
        self._may_reconnect = may_reconnect
        self.gave_up = False
        # The broker's last "no" (CONNACK or SUBACK), until it lets us in: a start fails on it at once.
        self.refused: str | None = None
        self._next_host = 0
        self._topics_lock = threading.Lock()
        self._lifecycle = threading.Lock()  # start's loop_start against stop's stop_network

    # --- lifecycle ------------------------------------------------------------------------

    def make_client(self) -> BufferedClient:
        v5 = self.protocol == "5"
        client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=self._reconnect_delay_s[0], max_delay=self._reconnect_delay_s[1])
        client.suppress_exceptions = True  # a bug in a callback is logged; it never stops the network loop
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_subscribe = self.on_subscribe
        client.on_message = self.on_message
        client.on_publishes = self.on_publishes
        client.on_drained = self._drained
        return client

    def start(self) -> None:
        """Connect (retrying while the broker is unreachable, until stopped) and start the
        network thread; a stop during the retries leaves no thread behind."""
        self.client = self.make_client()
        self.client.host, self.client.port = self.endpoint.hosts[0]
        self._connect()
        with self._lifecycle:
            if self._stop.is_set():  # stopped while connecting: no thread that would reconnect
                return
            self.client.loop_start()

    def _connect(self) -> None:
        assert self.client is not None
        while not self._stop.is_set():
            try:
                if self.protocol == "5":
                    props = Properties(PacketTypes.CONNECT)
                    props.SessionExpiryInterval = self.session_expiry_s
                    props.ReceiveMaximum = min(self.max_in_flight, 65_535)
                    self.client.connect(
                        self.client.host, self.client.port, keepalive=30, clean_start=False, properties=props
                    )
                else:
                    self.client.connect(self.client.host, self.client.port, keepalive=30)
                return
            except OSError as exc:
                log.warning("broker %s:%s unreachable (%s); retrying", self.client.host, self.client.port, exc)
                self._rotate()
                self._stop.wait(self._reconnect_delay_s[0])

    def _rotate(self) -> None:
        """Next time, the next node of a clustered broker."""
        hosts = self.endpoint.hosts
        if len(hosts) > 1 and self.client is not None:
            self._next_host = (self._next_host + 1) % len(hosts)
            # paho's host/port setters refuse while its state is "connection lost",
            # which is when this runs; its reconnect reads these fields.
            self.client._host, self.client._port = hosts[self._next_host]

    def add_topics(self, topics: list[str]) -> None:
        """Subscribe to more topics (a community newly assigned to a shard)."""
        with self._topics_lock:
            fresh = [t for t in topics if t not in self.topics]
            self.topics += fresh
        if fresh and self.client is not None and self.connected:
            self.client.subscribe([(topic, 1) for topic in fresh])

    def stop(self) -> None:
        with self._lifecycle:
            if self.client:
                stop_network(self.client)

    def ack(self, due: list[Inbound]) -> None:
        """PUBACK the QoS 1 messages of ``due`` that came on this connection; the broker
        redelivers the others and the events' key drops the copy."""
        client = self.client
        if client is not None:
            generation = self.generation
            client.ack_many([mid for gen, mid, qos, _, _ in due if qos and gen == generation])

    # --- paho's callbacks (its network thread) ----------------------------------------------

    def on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            self.refused = f"connection refused: {reason_code}"
            return
        self.generation += 1
        self.connected_at = time.monotonic()
        with self._topics_lock:
            topics = list(self.topics)
        if topics:
            client.subscribe([(topic, 1) for topic in topics])
        else:  # nothing to subscribe to yet (a shard without communities)
            self.refused = None
            self.connected = True
        log.info("connected to %r as %s, session present: %s", self.endpoint, self.client_id, flags.session_present)

    def on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        # Connected counts from the SUBACK: on a new session, a message published
        # between the CONNACK and the subscription is never delivered to us.
        if any(rc.is_failure for rc in reason_codes):
            log.error("broker refused the subscription to %s: %s", self.topics, reason_codes)
            self.refused = f"subscription refused: {', '.join(str(rc) for rc in reason_codes if rc.is_failure)}"
            return
        self.refused = None
        self.connected = True
        metrics.BROKER_CONNECTED.set(1)

    def on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.connected = False
        metrics.BROKER_CONNECTED.set(0)
        if self._stop.is_set():
            return
        if self._may_reconnect is not None and not self._may_reconnect():
            log.warning("disconnected (%s) from %s and no longer sure to own it: not reconnecting", reason_code, self.client_id)
            self.gave_up = True
            client.disconnect()  # ends paho's reconnect loop
            return
        self._rotate()
        log.warning("disconnected from the broker (%s); reconnecting to %s:%s", reason_code, client.host, client.port)

    def on_publishes(self, batch: list[Publish]) -> None:
        """What one socket read brought: validate each message, queue them together."""
        received_at = self._now()
        limits = self.limits
        generation = self.generation
        inbound: list[Inbound] = []
        append = inbound.append
        for topic, mid, qos, payload in batch:
            try:
                item = validate_publish(topic, payload, received_at, limits)
            except Exception as exc:  # a bug in validation must not stop the gateway: dead-letter it
                item = _validation_crashed(topic, payload, received_at, exc)
            append((generation, mid, qos, item, payload))
        self._received(inbound)

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """A message paho parsed itself (e.g. an MQTT 5 PUBLISH with a topic alias)."""
        self.on_publishes([(bytes(message._topic), message.mid, message.qos, bytes(message.payload))])


def _validation_crashed(topic: bytes, payload: bytes, received_at: dt.datetime, exc: Exception) -> Rejection:
    text = topic.decode("utf-8", "replace")
    log.exception("validation crashed on %s", text)
    return Rejection(topic=text, reason="internal_error", detail=repr(exc)[:500], received_at=received_at, payload=payload)
