"""Publishing simulated traffic over MQTT, QoS 1, without ever dropping a message.

`Publisher` owns the connections: a small pool shared by all devices (the
default: cheap, fast, fine for an anonymous or superuser broker), or, when
``credentials`` are given, one connection per device with its own client id
and username/password, as real devices connect (needed where the broker's ACL
lets a device write only under its own id; each connection costs a socket and
a paho network thread, so keep such fleets to a few hundred devices per
process).

Every publish is counted in flight until its PUBACK arrives; `publish` blocks
while ``max_inflight`` messages are unacknowledged (paho drops a message with
``MQTT_ERR_QUEUE_SIZE`` past 65,535 of them), checks paho's return code, and
gives up with `PublishError` after ``ack_timeout_s`` without progress.

`BulkPublisher` sends a finite simulation as fast as acknowledgements allow;
`LivePublisher` paces an endless simulation on the wall clock (``speed`` 1 is
real time) from a background thread for ``steward run``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import selectors
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from domain.topics import topic_for
from gateway.mqtt_client import stop_network
from simulators.engine import Message, Simulation
from simulators.fleet import Fleet
from simulators.scenarios import Placement


class PublishError(RuntimeError):
    """The broker could not be reached or stopped acknowledging within the deadline."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://user:pass@host:1883`` (or ``mqtts://`` for TLS)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
    if not parsed.hostname:
        raise ValueError(f"MQTT URL {url!r} has no host")
    tls = parsed.scheme == "mqtts"
    return BrokerAddress(
        host=parsed.hostname, port=parsed.port or (8883 if tls else 1883),
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None, tls=tls,
    )


@dataclass
class PublishStats:
    """What was sent: counts per device ``type/kind`` and per payload type."""

    published: int = 0
    acknowledged: int = 0  # every PUBACK, the `control` messages' included
    control: int = 0  # retained online announcements of per-device connections
    retried: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    first_ts_ms: int | None = None
    last_ts_ms: int | None = None

    def count(self, msg: Message) -> None:
        self.published += 1
        self.by_kind[f"{msg.device.device_type}/{msg.device.kind}"] += 1
        self.by_type[msg.type] += 1
        if self.first_ts_ms is None:
            self.first_ts_ms = msg.ts_ms
        self.last_ts_ms = msg.ts_ms


class _Connection:
    def __init__(self, owner: Publisher, client_id: str, username: str | None, password: str | None) -> None:
        self.owner = owner
        self.client_id = client_id
        self.connected = threading.Event()
        self.refused: str | None = None
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                             protocol=paho.MQTTv311)
        if username is not None:
            client.username_pw_set(username, password)
        if owner.address.tls:
            client.tls_set()
        # Our own bound keeps paho far below its 65,535 message ids; let all of it be on the wire.
        # (paho scans a client's whole outgoing table on every PUBACK, so a modest bound spread
        # over several connections is faster than one deep window: measured ~8k vs ~2k msg/s.)
        client.max_inflight_messages_set(max(20, owner.max_inflight))
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(0.2, 5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = owner._on_publish
        self.client = client

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        else:
            self.refused = None
            self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()

    def start(self, deadline_s: float, loop: _NetworkLoop | None = None) -> None:
        """Connect and wait for the CONNACK; with ``loop`` that thread drives the socket,
        otherwise paho's own network thread does."""
        self.loop = loop
        if loop is not None:
            loop.attach(self.client)
        try:
            self.client.connect(self.owner.address.host, self.owner.address.port, keepalive=30)
        except OSError as exc:
            raise PublishError(f"cannot connect to {self.owner.address.host}:{self.owner.address.port} "
                               f"as {self.client_id}: {exc}") from None
        if loop is None:
            self.client.loop_start()
        if not self.connected.wait(deadline_s):
            self.stop()
            raise PublishError(f"{self.client_id}: no CONNACK within {deadline_s}s"
                               + (f" (refused: {self.refused})" if self.refused else ""))

    def stop(self) -> None:
        if getattr(self, "loop", None) is not None:
            self.client.disconnect()  # the shared loop writes DISCONNECT and closes the socket
            return
        stop_network(self.client)


class _NetworkLoop:
    """One thread drives many paho clients through a selector (paho's external-loop API),
    so thousands of per-device connections do not need thousands of threads.

    Sockets are (un)registered only in this thread: paho's callbacks, which may fire in
    the publishing thread, just queue the request and wake the selector.
    """

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.clients: dict[int, paho.Client] = {}  # by fileno
        self.opened: list[tuple[paho.Client, Any]] = []
        self.closed: list[Any] = []
        self.writers: set[paho.Client] = set()
        self.broken: dict[paho.Client, float] = {}
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.stopping = False
        self.stop_deadline = float("inf")
        self.thread = threading.Thread(target=self._run, name="steward-sim-mqtt-loop", daemon=True)
        self.thread.start()

    def attach(self, client: paho.Client) -> None:
        client.on_socket_open = self._on_open
        client.on_socket_close = self._on_close
        client.on_socket_register_write = self._on_want_write
        client.on_socket_unregister_write = None

    def _poke(self) -> None:
        try:
            self.wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (the pipe is full) or shutting down

    def _on_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        with self.lock:
            self.opened.append((client, sock))
        self._poke()

    def _on_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        with self.lock:
            self.closed.append(sock)
            if not self.stopping:
                self.broken[client] = time.monotonic() + 1.0  # reconnect in a second
        self._poke()

    def _on_want_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        with self.lock:
            self.writers.add(client)
        self._poke()

    def _run(self) -> None:
        last_misc = time.monotonic()
        while True:
            with self.lock:
                opened, self.opened = self.opened, []
                closed, self.closed = self.closed, []
                writers, self.writers = self.writers, set()
                due = [c for c, t in self.broken.items() if t <= time.monotonic()]
                for c in due:
                    del self.broken[c]
                stopping = self.stopping
            for sock in closed:
                try:
                    self.sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
                self.clients = {fd: c for fd, c in self.clients.items() if c.socket() is not None}
            for client, sock in opened:
                try:
                    self.sel.register(sock, selectors.EVENT_READ, client)
                except (KeyError, ValueError):
                    self.sel.modify(sock, selectors.EVENT_READ, client)
            for client in writers:
                self._write(client)
            # Done when every client socket is closed (only the wake pipe is left) or time is up.
            if stopping and (len(self.sel.get_map()) <= 1 or time.monotonic() > self.stop_deadline):
                return
            for client in due:
                try:
                    client.reconnect()
                except OSError:
                    with self.lock:
                        self.broken[client] = time.monotonic() + 2.0
            for key, mask in self.sel.select(timeout=0.2):
                client = key.data
                if client is None:
                    try:
                        while self.wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                if mask & selectors.EVENT_READ:
                    client.loop_read()
                if mask & selectors.EVENT_WRITE:
                    self._write(client)
            now = time.monotonic()
            if now - last_misc >= 1.0:
                last_misc = now
                for key in list(self.sel.get_map().values()):
                    if key.data is not None:
                        key.data.loop_misc()

    def _write(self, client: paho.Client) -> None:
        sock = client.socket()
        if sock is None:
            return
        client.loop_write()
        sock = client.socket()
        if sock is None:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
        try:
            self.sel.modify(sock, events, client)
        except (KeyError, ValueError):
            self.sel.register(sock, events, client)

    def stop(self, disconnect: Iterable[paho.Client] = (), timeout_s: float = 5.0) -> None:
        """Disconnect ``disconnect`` cleanly (no reconnects from now on) and end the thread."""
        with self.lock:
            self.stopping = True
            self.stop_deadline = time.monotonic() + timeout_s
        for client in disconnect:
            client.disconnect()
        self._poke()
        self.thread.join(timeout_s + 1.0)
        self.sel.close()
        self.wake_r.close()
        self.wake_w.close()


class Publisher:
    """QoS 1 publishing with a bound on unacknowledged messages (see the module docstring)."""

    def __init__(
        self,
        mqtt_url: str,
        *,
        pool_size: int = 8,
        credentials: dict[str, str] | None = None,
        per_device: bool = False,
        max_inflight: int = 500,
        ack_timeout_s: float = 30.0,
        client_prefix: str = "steward-sim",
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        if not 1 <= max_inflight <= 60_000:
            raise ValueError(f"max_inflight must be within 1..60000 (paho has 65,535 message ids), got {max_inflight}")
        self.address = parse_mqtt_url(mqtt_url)
        self.credentials = credentials
        # One connection per device: always with credentials; without, on request (an
        # anonymous broker that still should see each device's own client id).
        self.per_device = per_device or credentials is not None
        self.max_inflight = max_inflight
        self.ack_timeout_s = ack_timeout_s
        self.stats = PublishStats()
        self._cond = threading.Condition()
        self._inflight = 0
        self.peak_inflight = 0
        self._pool: list[_Connection] = []
        self._per_device: dict[str, _Connection] = {}
        self._pool_size = pool_size
        self._prefix = client_prefix
        self._closed = False
        self._loop: _NetworkLoop | None = None

    # paho's network threads call this on every PUBACK.
    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._cond:
            self._inflight -= 1
            self.stats.acknowledged += 1
            self._cond.notify_all()

    @property
    def inflight(self) -> int:
        return self._inflight

    def connect(self) -> Publisher:
        if not self.per_device and not self._pool:
            stamp = f"{int(time.time() * 1000) % 10_000_000:x}"
            for i in range(self._pool_size):
                conn = _Connection(self, f"{self._prefix}-{stamp}-{i}", self.address.username, self.address.password)
                if self._loop is None:
                    self._loop = _NetworkLoop()
                conn.start(self.ack_timeout_s, self._loop)
                self._pool.append(conn)
        return self

    def _connection_for(self, msg: Message) -> _Connection:
        device_id = msg.device_id
        if not self.per_device:
            return self._pool[zlib.crc32(device_id.encode()) % len(self._pool)]
        conn = self._per_device.get(device_id)
        if conn is None:
            if self.credentials is not None:
                password = self.credentials.get(device_id)
                if password is None:
                    raise PublishError(f"no credentials for device {device_id!r}")
                conn = _Connection(self, device_id, device_id, password)
            else:
                conn = _Connection(self, device_id, self.address.username, self.address.password)
            # As a real device: the broker announces it offline (retained last will) if the
            # connection dies, and it announces itself online (retained) once connected.
            d = msg.device
            status = topic_for(d.community_id, d.device_type, device_id, "status")
            now = int(time.time() * 1000)
            conn.client.will_set(status, msgspec.json.encode({"id": f"lwt-{now:x}", "ts": now, "type": "offline"}),
                                 qos=1, retain=True)
            if self._loop is None:
                self._loop = _NetworkLoop()
            conn.start(self.ack_timeout_s, self._loop)
            self._per_device[device_id] = conn
            with self._cond:
                self._inflight += 1
                self.stats.control += 1
            info = conn.client.publish(status, msgspec.json.encode({"id": f"on-{now:x}", "ts": now, "type": "online"}),
                                       qos=1, retain=True)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                with self._cond:
                    self._inflight -= 1
                raise PublishError(f"{device_id}: cannot announce online: {paho.error_string(info.rc)}")
        return conn

    def publish(self, msg: Message) -> None:
        """Send one message with QoS 1; blocks while the in-flight bound is reached."""
        if self._closed:
            raise PublishError("publisher is closed")
        conn = self._connection_for(msg)
        deadline = time.monotonic() + self.ack_timeout_s
        while True:
            with self._cond:
                while self._inflight >= self.max_inflight:
                    if self._closed:
                        raise PublishError("publisher closed while waiting for acknowledgements")
                    if not self._cond.wait(max(0.0, deadline - time.monotonic())) and \
                            time.monotonic() >= deadline:
                        raise PublishError(f"{self._inflight} messages unacknowledged for {self.ack_timeout_s}s")
                self._inflight += 1
                self.peak_inflight = max(self.peak_inflight, self._inflight)
            info = conn.client.publish(msg.topic, msg.payload, qos=1)
            # NO_CONN: paho keeps the message and sends it after reconnecting (clean_session=False).
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self.stats.count(msg)
                return
            with self._cond:
                self._inflight -= 1
            if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                raise PublishError(f"publish to {msg.topic} failed: {paho.error_string(info.rc)}")
            # paho refused (queue full): the message was NOT taken; wait for acks and retry it.
            self.stats.retried += 1
            if time.monotonic() >= deadline:
                raise PublishError(f"paho queue stayed full for {self.ack_timeout_s}s")
            with self._cond:
                self._cond.wait(0.05)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every published message is acknowledged; False on timeout."""
        deadline = time.monotonic() + (self.ack_timeout_s if timeout_s is None else timeout_s)
        with self._cond:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, flush_timeout_s: float = 10.0) -> bool:
        """Flush (bounded), then disconnect every connection. Returns whether all were acknowledged."""
        ok = self.flush(flush_timeout_s) if not self._closed else self._inflight == 0
        with self._cond:
            self._closed = True
            self._cond.notify_all()  # wake a publish blocked on the in-flight bound
        if self._loop is not None:
            self._loop.stop([c.client for c in itertools.chain(self._pool, self._per_device.values())])
            self._loop = None
        self._pool.clear()
        self._per_device.clear()
        return ok

    def __enter__(self) -> Publisher:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()


class BulkPublisher:
    """Send a finite simulation as fast as the broker acknowledges it (accelerated replay)."""

    def __init__(self, mqtt_url: str, **publisher_kwargs: Any) -> None:
        self.publisher = Publisher(mqtt_url, **publisher_kwargs)

    def run(self, messages: Iterable[Message], *, progress: Callable[[Message], None] | None = None,
            stop: threading.Event | None = None) -> PublishStats:
        pub = self.publisher.connect()
        try:
            for msg in messages:
                if stop is not None and stop.is_set():
                    break
                pub.publish(msg)
                if progress is not None:
                    progress(msg)
            if not pub.flush():
                raise PublishError(f"{pub.inflight} messages still unacknowledged after {pub.ack_timeout_s}s")
        finally:
            pub.close()
        return pub.stats


class LivePublisher:
    """Publishes a fleet's traffic on the wall clock from a background thread.

    ``speed`` 1 is real time and runs until `stop` (endless: incidents are planned
    ``daily_incidents`` a day). ``speed`` > 1 replays ``duration`` of simulated time
    that ends now, ``speed`` times faster than real time, so no timestamp is ever in
    the future for the gateway. ``placements`` are scripted incidents (e.g. the
    demo's first minutes), placed like a scenario file's.
    """

    def __init__(
        self,
        fleet: Fleet,
        mqtt_url: str,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        credentials: dict[str, str] | None = None,
        duration: dt.timedelta | None = None,
        heartbeat_s: float = 300.0,
        daily_incidents: int = 3,
        pool_size: int = 2,
        max_inflight: int = 500,
        per_device: bool = False,
        placements: list[Placement] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if speed > 1 and duration is None:
            raise ValueError("an accelerated live run needs a duration (simulated time may not run ahead of now)")
        self.fleet = fleet
        self.speed = speed
        self.duration = duration
        self.publisher = Publisher(mqtt_url, credentials=credentials, pool_size=pool_size, max_inflight=max_inflight,
                                   per_device=per_device)
        now = dt.datetime.now(dt.UTC)
        start = now if speed == 1 or duration is None else now - duration
        self.simulation = Simulation(fleet, seed=seed, start=start, duration=duration, heartbeat_s=heartbeat_s,
                                     daily_incidents=daily_incidents, placements=placements)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    @property
    def stats(self) -> PublishStats:
        return self.publisher.stats

    def ground_truth(self) -> dict[str, Any]:
        return self.simulation.ground_truth()

    def start(self) -> LivePublisher:
        self.publisher.connect()
        self._thread = threading.Thread(target=self._run, name="steward-simulator", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        wall0 = time.monotonic()
        sim0 = self.simulation.start_ms
        try:
            for msg in self.simulation.deliveries():
                due = wall0 + (msg.deliver_ms - sim0) / 1000 / self.speed
                while True:
                    wait = due - time.monotonic()
                    if wait <= 0 or self._stop.is_set():
                        break
                    self._stop.wait(min(wait, 0.5))
                if self._stop.is_set():
                    return
                self.publisher.publish(msg)
        except BaseException as exc:  # reported through .error; the thread must not die silently
            self.error = exc
        finally:
            self.done.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop publishing and disconnect; returns within about ``timeout_s``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(min(0.5, timeout_s))
            if self._thread.is_alive():  # blocked on the in-flight bound: the broker stopped acknowledging
                self.publisher.close(flush_timeout_s=0)
            self._thread.join(timeout_s)
        self.publisher.close(flush_timeout_s=min(timeout_s, 2.0))

    def __enter__(self) -> LivePublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
