"""The MQTT gateway: broker → validate → batch → commit → acknowledge.

paho's network thread cuts PUBLISH packets out of large socket reads
(`gateway.mqtt_client`), validates each (pure, ~1.5 us) and queues what one
read brought. Writer threads (two, each with its own database connection; one
when the detectors run) commit batches and only then acknowledge them (paho
``manual_ack``), batch by batch in the order the batches were taken. A crash
anywhere before the acknowledgement makes the broker redeliver, and the
events' unique key drops the copy, so nothing is lost and nothing is stored
twice. While the database is down the writers keep retrying their batches and
acknowledge nothing; the in-flight cap (the queue stops the socket reads when
full; with MQTT 5 also the Receive Maximum) makes the broker hold everything
else.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from domain.devices import DEVICE_KINDS, Device, DeviceType
from domain.events import Event, Rejection
from domain.topics import SUBSCRIPTION, topic_for
from gateway import metrics
from gateway.endpoint import MqttEndpoint
from gateway.mqtt_client import BufferedClient, Publish
from gateway.validate import Limits, validate_publish
from ingest import writer
from ingest.registry import load_active_devices, upsert_devices

log = logging.getLogger(__name__)
UTC = dt.timezone.utc

# The kind a device gets when ``device_policy=auto`` registers it on first sight.
DEFAULT_KIND = {
    DeviceType.ELEVATOR: "lift",
    DeviceType.WATER: "meter",
    DeviceType.ACCESS: "entrance",
    DeviceType.ELDERLY: "home_hub",
}
assert all(DEFAULT_KIND[t] in DEVICE_KINDS[t] for t in DeviceType)


class EventSink(Protocol):
    """What runs on newly stored events inside the batch's transaction (the detectors)."""

    def process(self, conn: psycopg.Connection, events: list[Event]) -> Any: ...

    def tick(self, conn: psycopg.Connection, now: dt.datetime) -> Any: ...

    def checkpoint(self, conn: psycopg.Connection) -> None: ...

    def restore(self, conn: psycopg.Connection) -> None: ...


@dataclass
class GatewayConfig:
    mqtt: MqttEndpoint
    database_url: str
    client_id: str = "steward-gateway"
    protocol: str = "3.1.1"
    share_group: str | None = None
    batch_size: int = 10_000
    batch_linger_s: float = 0.05
    max_in_flight: int = 65_000
    # Database connections committing batches side by side, so that PostgreSQL
    # works on one batch while the next is prepared. With a sink (the detectors)
    # there is one: detector state must see a device's events in order.
    writers: int = 2
    limits: Limits = field(default_factory=Limits)
    device_policy: str = "registered"
    session_expiry_s: int = 7 * 24 * 3600
    tick_interval_s: float = 1.0
    checkpoint_interval_s: float = 30.0
    last_seen_flush_s: float = 5.0
    settle_s: float = 2.0  # after (re)connecting, wait this long before detector timers run
    failure_retry_s: float = 5.0  # after a failure that is not the database being away


# One message in flight: (connection generation, packet id, QoS, what validation
# made of it, raw payload). A tuple, because one is built per message.
_Inbound = tuple[int, int, int, Event | Rejection, bytes]


class Gateway:
    def __init__(
        self, config: GatewayConfig, *, sink: EventSink | None = None, clock: Callable[[], dt.datetime] | None = None
    ) -> None:
        self.config = config
        self.sink = sink
        self._now = clock or (lambda: dt.datetime.now(UTC))
        # Received, not yet taken by a writer: the lists the network thread queued, one per
        # socket read, so that neither side touches the queue once per message.
        self._queue: deque[list[_Inbound]] = deque()
        self._queued = 0  # messages in _queue
        # The socket had nothing more to read: a batch need not wait for more company.
        self._broker_quiet = False
        self._taken = 0  # taken by a writer, not yet committed
        # Batches are numbered as they are taken and acknowledged in that order, whichever
        # writer commits first: Mosquitto looks each PUBACK up by walking its in-flight
        # list from the oldest message, so acknowledging out of order costs it a walk
        # past every older message still unacknowledged.
        self._batches_taken = 0
        self._acks_due = 0
        self._acks_waiting: dict[int, list[_Inbound]] = {}
        self._ack_lock = threading.Lock()
        # One lock, three conditions, so that a notification wakes only who can act on it:
        # writers waiting for messages, the network thread waiting for room, and
        # callers of wait_committed.
        self._lock = threading.Lock()
        self._has_messages = threading.Condition(self._lock)
        self._has_room = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._generation = 0
        self._connected = False
        self._connected_at = 0.0
        self._writers: list[threading.Thread] = []
        self._client: BufferedClient | None = None
        self._devices: dict[str, Device] = {}
        self.last_commit_at: dt.datetime | None = None
        self.ingest_lag_s: float | None = None
        self.database_ok = False
        # Per writer thread, its last attempt's failure (a bug, a schema problem), until
        # an attempt succeeds: /health reports it, since no batch is stored meanwhile.
        self._write_errors: dict[str, str] = {}
        self._batches_stored = 0  # by any writer: evidence that a failing batch is not the stream's fault
        self.committed = 0  # events newly stored since start (tests and the benchmark read it)
        self.duplicates = 0
        self.rejected = 0

    # --- lifecycle -------------------------------------------------------------------

    @property
    def writer_count(self) -> int:
        return 1 if self.sink else max(1, self.config.writers)

    def start(self) -> Gateway:
        self._writers = [
            threading.Thread(target=self._write_loop, args=(i == 0,), name=f"gateway-writer-{i}", daemon=True)
            for i in range(self.writer_count)
        ]
        for thread in self._writers:
            thread.start()
        self._client = self._make_client()
        self._connect()
        self._client.loop_start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Drain what was received, commit and acknowledge it, then disconnect."""
        self._stop.set()
        with self._lock:
            for cond in (self._has_messages, self._has_room, self._progress):
                cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._writers:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._client:
            self._client.disconnect()
            self._client.loop_stop()

    def status(self) -> dict[str, Any]:
        return {
            "broker_connected": self._connected,
            "database_ok": self.database_ok,
            "last_commit_at": self.last_commit_at,
            "ingest_lag_seconds": self.ingest_lag_s,
            "pending": self._queued + self._taken,
            "write_error": next(iter(self._write_errors.values()), None),
        }

    def wait_committed(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` new events were stored since start (tests, bench)."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.committed < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._progress.wait(min(left, 0.5))
        return True

    # --- MQTT side (paho's network thread) -------------------------------------------------

    def _make_client(self) -> BufferedClient:
        cfg = self.config
        v5 = cfg.protocol == "5"
        client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if cfg.mqtt.username:
            client.username_pw_set(cfg.mqtt.username, cfg.mqtt.password)
        if cfg.mqtt.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.suppress_exceptions = True  # a bug in a callback is logged; it never stops the network loop
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publishes = self._on_publishes
        client.on_drained = self._on_drained
        return client

    def _connect(self) -> None:
        cfg = self.config
        assert self._client is not None
        while not self._stop.is_set():
            try:
                if cfg.protocol == "5":
                    props = Properties(PacketTypes.CONNECT)
                    props.SessionExpiryInterval = cfg.session_expiry_s
                    props.ReceiveMaximum = min(cfg.max_in_flight, 65_535)
                    self._client.connect(
                        cfg.mqtt.host, cfg.mqtt.port, keepalive=30, clean_start=False, properties=props
                    )
                else:
                    self._client.connect(cfg.mqtt.host, cfg.mqtt.port, keepalive=30)
                return
            except OSError as exc:
                log.warning("broker %r unreachable (%s); retrying", cfg.mqtt, exc)
                self._stop.wait(1.0)

    @property
    def subscription(self) -> str:
        group = self.config.share_group
        return f"$share/{group}/{SUBSCRIPTION}" if group else SUBSCRIPTION

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        with self._lock:
            # Acknowledgements of messages received on an earlier connection must not
            # be sent on this one: the broker redelivers those and the key drops the copy.
            self._generation += 1
        self._connected_at = time.monotonic()
        client.subscribe(self.subscription, qos=1)
        log.info("connected to %r, session present: %s", self.config.mqtt, flags.session_present)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        # Connected counts from the SUBACK: on a new session, a message published
        # between the CONNACK and the subscription is never delivered to us.
        if any(rc.is_failure for rc in reason_codes):
            log.error("broker refused the subscription to %s: %s", self.subscription, reason_codes)
            return
        self._connected = True
        metrics.BROKER_CONNECTED.set(1)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected = False
        metrics.BROKER_CONNECTED.set(0)
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); paho reconnects with backoff", reason_code)

    def _on_publishes(self, batch: list[Publish]) -> None:
        """What one socket read brought: validate each message, queue them together."""
        received_at = self._now()
        limits = self.config.limits
        generation = self._generation  # only this thread (in _on_connect) changes it
        inbound: list[_Inbound] = []
        append = inbound.append
        for topic, mid, qos, payload in batch:
            try:
                item = validate_publish(topic, payload, received_at, limits)
            except Exception as exc:  # a bug in validation must not stop the gateway: dead-letter it
                item = self._validation_crashed(topic, payload, received_at, exc)
            append((generation, mid, qos, item, payload))
        self._enqueue(inbound)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """A message paho parsed itself (e.g. an MQTT 5 PUBLISH with a topic alias)."""
        self._on_publishes([(bytes(message._topic), message.mid, message.qos, bytes(message.payload))])

    @staticmethod
    def _validation_crashed(topic: bytes, payload: bytes, received_at: dt.datetime, exc: Exception) -> Rejection:
        text = topic.decode("utf-8", "replace")
        log.exception("validation crashed on %s", text)
        return Rejection(
            topic=text, reason="internal_error", detail=repr(exc)[:500], received_at=received_at, payload=payload
        )

    def _on_drained(self) -> None:
        with self._lock:
            if not self._broker_quiet:
                self._broker_quiet = True
                if self._queued:
                    self._has_messages.notify_all()

    def _enqueue(self, inbound: list[_Inbound]) -> None:
        with self._lock:
            # Backstop for brokers that ignore Receive Maximum: stop reading the socket.
            while self._queued + self._taken >= self.config.max_in_flight and not self._stop.is_set():
                self._has_room.wait(0.5)
            was_empty = not self._queued
            self._queue.append(inbound)
            self._queued += len(inbound)
            self._broker_quiet = False
            if was_empty or self._queued >= self.config.batch_size:
                self._has_messages.notify_all()  # the first starts the linger clock; a full batch goes now

    # --- database side (writer threads) ---------------------------------------------------

    def _take_batch(self) -> tuple[int, list[_Inbound]]:
        """Take up to batch_size messages off the queue: when that many are waiting, when
        no other batch is being written (the database is idle: the head of a backlog
        starts at once), when the broker has nothing more to send for now (a lone SOS
        goes at once, and so does the tail of a backlog), or at the latest when the
        oldest has waited batch_linger_s. They count as in flight until
        `_finish_batch`; the number is the batch's place in the acknowledgement order."""
        cfg = self.config
        with self._lock:
            if not self._queued:
                self._has_messages.wait(0.2)
            if self._queued and self._queued < cfg.batch_size and not self._stop.is_set():
                deadline = time.monotonic() + cfg.batch_linger_s
                while (
                    self._queued < cfg.batch_size and self._taken and not self._stop.is_set() and not self._broker_quiet
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._has_messages.wait(left)
            queue = self._queue
            batch: list[_Inbound] = []
            while queue and len(batch) < cfg.batch_size:
                room = cfg.batch_size - len(batch)
                if len(queue[0]) <= room:
                    batch += queue.popleft()
                else:  # split the read: the rest stays first in line
                    batch += queue[0][:room]
                    del queue[0][:room]
            if not batch:
                return -1, batch
            self._queued -= len(batch)
            self._taken += len(batch)
            self._batches_taken += 1
            return self._batches_taken - 1, batch

    def _extend_batch(self, batch: list[_Inbound]) -> None:
        """Add what waits in the queue to ``batch``, up to batch_size (a single writer's
        failing batch: nothing was taken after it, so it stays first in line)."""
        with self._lock:
            queue, room, added = self._queue, self.config.batch_size - len(batch), 0
            while queue and room > 0:
                if len(queue[0]) <= room:
                    part = queue.popleft()
                else:
                    part = queue[0][:room]
                    del queue[0][:room]
                batch += part
                room -= len(part)
                added += len(part)
            self._queued -= added
            self._taken += added

    def _write_loop(self, leader: bool) -> None:
        """One writer: commit batches, then acknowledge them. The leader also runs the
        detectors' timers and checkpoints (a sink means a single writer)."""
        name = threading.current_thread().name
        conn: psycopg.Connection | None = None
        table: writer.EventsTable | None = None  # set with conn
        backoff = 0.1
        next_tick = next_checkpoint = next_flush = time.monotonic()
        last_seen: dict[str, tuple[dt.datetime, float | None]] = {}  # this writer's, until its next flush
        batch: list[_Inbound] = []
        number = -1
        failures = 0  # of the batch in hand, for other reasons than the database being away
        stored_before = 0  # _batches_stored at the first of those failures
        try:
            # At once, not with the first batch: /health knows the database from the
            # start, and the head of a backlog need not wait for a connection or
            # the registry.
            conn, table = self._open_connection()
            self.database_ok = True
        except psycopg.Error as exc:  # the loop below retries, with backoff and the full story
            log.warning("database unavailable at start (%s)", str(exc).strip()[:200])
        while True:
            if not batch:
                number, batch = self._take_batch()
                failures = 0
            stopping = self._stop.is_set()
            if stopping and not batch:
                break
            try:
                if conn is None or conn.closed:
                    conn, table = self._open_connection()
                full = len(batch) >= self.config.batch_size
                assert table is not None
                if batch:
                    if failures >= 2 and self.writer_count == 1:
                        # Alone, a writer commits nothing else while this batch fails: what
                        # waits behind it joins it (the order holds), so that isolating can
                        # tell one bad message from a stream that cannot be stored.
                        self._extend_batch(batch)
                    self._commit_batch(
                        conn, table, number, batch, last_seen, isolate=failures >= 2, stored_before=stored_before
                    )
                    batch, failures = [], 0
                # A full batch means a backlog is draining (after an outage or a restart).
                # The detectors' timers ("offline for 10 min", "no motion since 07:30") must
                # not run on the wall clock ahead of messages still waiting in the broker:
                # tick only once caught up.
                now_mono = time.monotonic()
                caught_up = (
                    self._connected
                    and now_mono - self._connected_at >= self.config.settle_s  # a backlog starts flowing at once
                    and not full
                )
                if self.sink and leader and caught_up and now_mono >= next_tick:
                    with conn.transaction():
                        self.sink.tick(conn, self._now())
                    next_tick = now_mono + self.config.tick_interval_s
                if now_mono >= next_flush or stopping:
                    with conn.transaction():
                        writer.record_last_seen(conn, last_seen)
                    last_seen.clear()  # only once written: a failed flush is retried with the rest
                    next_flush = now_mono + self.config.last_seen_flush_s
                if self.sink and leader and (now_mono >= next_checkpoint or stopping):
                    with conn.transaction():
                        self.sink.checkpoint(conn)
                    next_checkpoint = now_mono + self.config.checkpoint_interval_s
                self.database_ok = True
                self._write_errors.pop(name, None)
                backoff = 0.1
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                # Temporary: the server is down or restarting. Keep the batch, ack nothing.
                metrics.DB_ERRORS.inc()
                self.database_ok = False
                log.warning("database unavailable (%s); retrying in %.1fs", str(exc).strip()[:200], backoff)
                if conn is not None:
                    conn.close()
                conn = None
                if self._stop.wait(backoff) and stopping:
                    break
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:
                # Anything else is a bug or a schema problem. Retrying the same batch at once
                # would spin; ending the thread would stall the gateway silently (nothing
                # stored, nothing acknowledged). So: log it with its traceback, count it,
                # show it in /health, and retry slower, on a fresh connection.
                if isinstance(exc, psycopg.Error):
                    metrics.DB_ERRORS.inc()
                    self.database_ok = False
                metrics.WRITE_FAILURES.inc()
                failures += 1  # twice for the same batch: the next attempt isolates the culprit
                if failures == 1:
                    stored_before = self._batches_stored
                self._write_errors[name] = f"{type(exc).__name__}: {str(exc).strip()}"[:300]
                log.exception("batch write failed; retrying in %.0fs", self.config.failure_retry_s)
                if conn is not None:
                    conn.close()
                conn = None
                if self._stop.wait(self.config.failure_retry_s) and stopping:
                    break
        if last_seen and conn is not None and not conn.closed:  # stopping: what is kept since the last flush
            try:
                with conn.transaction():
                    writer.record_last_seen(conn, last_seen)
            except psycopg.Error as exc:
                log.warning("could not record the devices' last-seen times on stopping (%s)", str(exc).strip()[:200])
        if batch:  # stopped with the database down: never acknowledged, so the broker keeps them
            self._acknowledge(number, [])
            self._finish_batch(len(batch), committed=0, duplicates=0, rejected=0)
        if conn is not None:
            conn.close()

    def _open_connection(self) -> tuple[psycopg.Connection, writer.EventsTable]:
        conn = psycopg.connect(self.config.database_url, connect_timeout=5)
        table = writer.prepare(conn)
        if self.sink:
            with conn.transaction():
                self.sink.restore(conn)
        with conn.transaction():
            self._devices = load_active_devices(conn)
        return conn, table

    def _check_devices(
        self, conn: psycopg.Connection, unsure: list[tuple[Event, bytes]]
    ) -> tuple[list[Event], list[Rejection], dict[str, Device]]:
        """The events of a batch whose device the cache does not vouch for: unknown, or
        known in another community or type. Their devices are looked up again, all in
        one query, so that a device registered, moved or retired a moment ago is
        judged by what the registry says now (a flood from an unknown device costs one
        query a batch). Returns the events to store, the rejections, and the devices
        that ``device_policy=auto`` registers."""
        ids = {e.device_id for e, _ in unsure}
        with conn.transaction():
            found = load_active_devices(conn, only=ids)
        devices = self._devices
        for device_id in ids:
            if device_id in found:
                devices[device_id] = found[device_id]
            else:  # retired or removed since the cache was filled
                devices.pop(device_id, None)
        accepted: list[Event] = []
        rejected: list[Rejection] = []
        new_devices: dict[str, Device] = {}
        for event, payload in unsure:
            device = found.get(event.device_id) or new_devices.get(event.device_id)
            if device is None and self.config.device_policy == "auto":
                device = new_devices[event.device_id] = Device(
                    device_id=event.device_id,
                    community_id=event.community_id,
                    device_type=event.device_type,
                    kind=DEFAULT_KIND[event.device_type],
                )
            problem = self._device_problem(event, device)
            if problem is None:
                accepted.append(event)
            else:
                rejected.append(self._reject(event, payload, "unknown_device", problem))
        return accepted, rejected, new_devices

    @staticmethod
    def _device_problem(event: Event, device: Device | None) -> str | None:
        if device is None:
            return f"device {event.device_id!r} is not registered (or retired)"
        if device.community_id != event.community_id:
            return f"device {event.device_id!r} is not registered in community {event.community_id!r}"
        if device.device_type != event.device_type:
            return f"device {event.device_id!r} is a {device.device_type} device, not {event.device_type}"
        return None

    @staticmethod
    def _reject(event: Event, payload: bytes, reason: str, detail: str) -> Rejection:
        return Rejection(
            topic=topic_for(event.community_id, event.device_type, event.device_id, event.stream),
            reason=reason,
            detail=detail,
            received_at=event.received_at,
            payload=payload,
            community_id=event.community_id,
            device_id=event.device_id,
        )

    def _commit_batch(
        self,
        conn: psycopg.Connection,
        table: writer.EventsTable,
        number: int,
        batch: list[_Inbound],
        last_seen: dict[str, tuple[dt.datetime, float | None]],
        *,
        isolate: bool = False,
        stored_before: int = 0,
    ) -> None:
        """``isolate``: the batch failed twice; ``stored_before``: `_batches_stored` when
        it first failed."""
        started = time.perf_counter()
        if isolate:
            # Two, not one: the other writer may have been finishing a batch when the
            # trouble began; a second one it took afterwards shows storing still works.
            new_events, duplicates, rejections = self._store_isolating(
                conn, table, batch, others_stored=self._batches_stored - stored_before >= 2
            )
        else:
            new_events, duplicates, rejections = self._store(conn, table, batch)
        # Committed: now, and only now, acknowledge.
        self._acknowledge(number, batch)
        self._write_errors.pop(threading.current_thread().name, None)  # before waiters hear of it
        _note_last_seen(last_seen, new_events)
        finished = self._now()
        oldest = batch[0][3].received_at if batch else None  # the queue is in arrival order
        self.ingest_lag_s = (finished - oldest).total_seconds() if oldest else None
        self.last_commit_at = finished
        metrics.RECEIVED.inc(len(batch))
        metrics.STORED.inc(len(new_events))
        metrics.DUPLICATES.inc(duplicates)
        for r in rejections:
            metrics.REJECTED.labels(reason=r.reason).inc()
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        if self.ingest_lag_s is not None:
            metrics.INGEST_LAG.set(self.ingest_lag_s)
        self._finish_batch(len(batch), committed=len(new_events), duplicates=duplicates, rejected=len(rejections))

    def _store(
        self, conn: psycopg.Connection, table: writer.EventsTable, batch: list[_Inbound]
    ) -> tuple[list[Event], int, list[Rejection]]:
        """Store messages in one transaction: (new events, duplicates, rejections)."""
        events: list[Event] = []
        rejections: list[Rejection] = []
        unsure: list[tuple[Event, bytes]] = []
        new_devices: dict[str, Device] = {}
        devices = self._devices
        for _, _, _, item, payload in batch:
            if type(item) is Event:
                known = devices.get(item.device_id)
                if (
                    known is not None
                    and known.community_id == item.community_id
                    and known.device_type is item.device_type
                ):
                    events.append(item)  # the common case, without a call
                else:
                    unsure.append((item, payload))
            else:
                rejections.append(item)  # type: ignore[arg-type]
        if unsure:
            accepted, refused, new_devices = self._check_devices(conn, unsure)
            events += accepted
            rejections += refused
        with conn.transaction():
            if new_devices:
                upsert_devices(conn, new_devices.values())
            result = writer.write_batch(conn, table, events, rejections)
            if self.sink and result.new_events:
                self.sink.process(conn, result.new_events)
        self._devices.update(new_devices)
        return result.new_events, result.duplicates, rejections

    def _store_isolating(
        self, conn: psycopg.Connection, table: writer.EventsTable, batch: list[_Inbound], *, others_stored: bool
    ) -> tuple[list[Event], int, list[Rejection]]:
        """Store a batch that failed twice, a part at a time, to find the message(s) that
        make it fail: halves, then halves of the halves that fail, down to single
        messages. A message that fails on its own is dead-lettered (``internal_error``,
        with what went wrong; its payload is kept), so that one message the database
        refuses, or that trips a bug in a detector, cannot hold up everything behind it.

        But only when something else could be stored (another part of this batch, or
        another batch since this one first failed, ``others_stored``): when nothing can
        be, the fault is the whole stream's (a bug that fails every event), and
        dead-lettering the stream would not fix it, so the batch is retried as it is.
        Until that is known, a part that fails is set aside unsplit, which keeps a
        failing stream to about twice log2(batch size) attempts."""
        new_events: list[Event] = []
        duplicates = 0
        rejections: list[Rejection] = []
        refused: list[tuple[_Inbound, Exception]] = []
        set_aside: list[list[_Inbound]] = []
        evidence = others_stored
        first_failure: Exception | None = None
        todo = [batch]
        while todo:
            part = todo.pop()
            try:
                stored, dup, rej = self._store(conn, table, part)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the database went away: the batch is retried whole, as usual
            except Exception as exc:
                if not _isolable(exc):
                    raise
                first_failure = first_failure or exc
                if self.sink:  # the failed part may have changed what the detectors hold
                    with conn.transaction():
                        self.sink.restore(conn)
                if len(part) == 1:
                    refused.append((part[0], exc))
                elif evidence or not set_aside and not refused:  # split the first failure at once
                    half = len(part) // 2
                    todo += [part[half:], part[:half]]  # popped from the end: in arrival order
                else:
                    set_aside.append(part)
                continue
            new_events += stored
            duplicates += dup
            rejections += rej
            if not evidence:
                evidence = True
                todo += reversed(set_aside)
                set_aside = []
        if not evidence:
            assert first_failure is not None
            raise first_failure  # nothing could be stored: not one message's doing
        letters = [self._refused(message, exc) for message, exc in refused]
        for message, exc in refused:
            log.error("dead-lettering a message its batch cannot be stored with (%r): %r", exc, message[4][:200])
        if letters:
            with conn.transaction():
                writer.write_batch(conn, table, [], letters)
            rejections += letters
        return new_events, duplicates, rejections

    @staticmethod
    def _refused(message: _Inbound, exc: Exception) -> Rejection:
        item, payload = message[3], message[4]
        detail = f"storing it failed: {type(exc).__name__}: {str(exc).strip()}"[:2000].replace("\x00", "")
        if isinstance(item, Event):
            return Gateway._reject(item, payload, "internal_error", detail)
        return Rejection(
            topic=item.topic.replace("\x00", ""),
            reason="internal_error",
            detail=detail,
            received_at=item.received_at,
            payload=payload,
            community_id=item.community_id,
            device_id=item.device_id,
        )

    def _finish_batch(self, size: int, *, committed: int, duplicates: int, rejected: int) -> None:
        with self._lock:
            self._taken -= size
            if size and (committed or duplicates or rejected):
                self._batches_stored += 1
            self.committed += committed
            self.duplicates += duplicates
            self.rejected += rejected
            metrics.PENDING.set(self._queued + self._taken)
            self._has_room.notify()
            self._progress.notify_all()

    def _acknowledge(self, number: int, batch: list[_Inbound]) -> None:
        """Acknowledge batch ``number`` once every batch taken before it is acknowledged."""
        with self._ack_lock:
            if number < self._acks_due:  # already acknowledged: a retry after a failure past the ack
                return
            self._acks_waiting[number] = batch
            client = self._client
            while self._acks_due in self._acks_waiting:
                due = self._acks_waiting.pop(self._acks_due)
                self._acks_due += 1
                if client is not None:
                    # Never on a newer connection: the broker redelivers those and the key drops the copy.
                    generation = self._generation
                    client.ack_many([mid for gen, mid, qos, _, _ in due if qos and gen == generation])


def _isolable(exc: BaseException) -> bool:
    """Whether a failure may be one message's doing. The database refusing a value
    (class 22, data exceptions; class 23, a constraint) or a bug in our code may be;
    a schema or permission problem (undefined column, insufficient privilege) is the
    whole stream's, and dead-lettering the stream would not fix it: it is retried,
    and reported, until it is fixed."""
    if isinstance(exc, psycopg.Error):
        return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))
    return isinstance(exc, Exception)


def tune_garbage_collector() -> None:
    """For a process whose main job is the gateway; call once, after start-up imports.

    The in-flight window keeps tens of thousands of messages alive, and with
    CPython's default thresholds (700, 10, 10) the collector ran so often that
    it took about a twelfth of the receive thread's time in a profile of a
    backlog drain (2.2 % of all CPU there, 0.5 % after this). Freezing moves
    what start-up allocated (imported modules, settings) out of every later
    collection; the larger first threshold collects young objects in bigger,
    rarer passes. Reference cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _note_last_seen(seen: dict[str, tuple[dt.datetime, float | None]], events: list[Event]) -> None:
    """Newest event time and last reported battery per device, until the next flush."""
    for e in events:
        battery = e.fields.get("battery") if e.type == "heartbeat" else None
        before = seen.get(e.device_id)
        if before is None:
            seen[e.device_id] = (e.ts, battery)
        elif e.ts > before[0] or battery is not None:
            seen[e.device_id] = (max(before[0], e.ts), before[1] if battery is None else battery)
