"""The MQTT gateway: broker → validate → batch → commit → acknowledge.

One stage a file, wired here:

- `gateway.session`: the persistent MQTT session; paho's network thread cuts
  PUBLISH packets out of large socket reads (`gateway.mqtt_client`) and
  validates each (`gateway.validate`);
- `gateway.inflight`: the bounded queue between the broker and the database,
  and the batches taken off it;
- `gateway.storing`: one batch's device check, rows and detectors, in one
  transaction (and a failing batch stored in parts);
- `gateway.writing`: the writer threads (two, each with its own connection; one
  when the detectors run), their retries and timers;
- `gateway.acknowledge`: PUBACKs only after the commit, batch by batch in the
  order the batches were taken.

A crash anywhere before the acknowledgement makes the broker redeliver, and the
events' unique key drops the copy, so nothing is lost and nothing is stored
twice. While the database is down the writers keep retrying their batches and
acknowledge nothing; the in-flight cap (the queue stops the socket reads when
full; with MQTT 5 also the Receive Maximum) makes the broker hold everything
else.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from domain.events import Event
from domain.topics import SUBSCRIPTION
from gateway.acknowledge import InOrderAcks
from gateway.endpoint import MqttEndpoint
from gateway.inflight import InFlight
from gateway.session import BrokerSession
from gateway.storing import BatchStore
from gateway.validate import Limits
from gateway.writing import Writers

UTC = dt.timezone.utc


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
    idle_in_transaction_timeout_s: float | None = None  # set for a shard's writers (see gateway/worker.py)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        sink: EventSink | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        topics: list[str] | None = None,
        fence: Callable[[psycopg.Connection], Any] | None = None,
        communities: Callable[[], set[str]] | None = None,
    ) -> None:
        """``topics``: what the session subscribes to (default: every community);
        ``fence``: run last in every storing transaction, it raises when this process
        may no longer commit; ``communities``: a shard's, whose devices the registry
        cache holds (default: all)."""
        self.config = config
        self.sink = sink
        now = clock or (lambda: dt.datetime.now(UTC))
        self._stop = threading.Event()
        self.inflight = InFlight(
            batch_size=config.batch_size,
            linger_s=config.batch_linger_s,
            max_in_flight=config.max_in_flight,
            stop=self._stop,
        )
        self.session = BrokerSession(
            endpoint=config.mqtt,
            client_id=config.client_id,
            protocol=config.protocol,
            topics=topics if topics is not None else [self.subscription],
            limits=config.limits,
            max_in_flight=config.max_in_flight,
            session_expiry_s=config.session_expiry_s,
            received=self.inflight.put,
            drained=self.inflight.drained,
            now=now,
            stop=self._stop,
        )
        self.acks = InOrderAcks(self.session.ack)
        self.store = BatchStore(device_policy=config.device_policy, sink=sink, fence=fence, communities=communities)
        self.writers = Writers(
            config,
            inflight=self.inflight,
            store=self.store,
            acks=self.acks,
            session=self.session,
            sink=sink,
            now=now,
            stop=self._stop,
        )

    # --- lifecycle -------------------------------------------------------------------

    @property
    def subscription(self) -> str:
        group = self.config.share_group
        return f"$share/{group}/{SUBSCRIPTION}" if group else SUBSCRIPTION

    def start(self) -> Gateway:
        self.writers.start()
        self.session.start()
        return self

    def start_connecting(self) -> threading.Thread:
        """`start`, with the first connection (retried while the broker is unreachable) in
        a thread of its own, returned: for a caller that must not wait for the broker
        (a shard worker's lease loop)."""
        self.writers.start()
        thread = threading.Thread(target=self.session.start, name=f"connect-{self.config.client_id}", daemon=True)
        thread.start()
        return thread

    def stop(self, timeout: float = 10.0) -> None:
        """Drain what was received, commit and acknowledge it, then disconnect."""
        self._stop.set()
        self.inflight.wake_all()
        self.writers.join(time.monotonic() + timeout)
        self.session.stop()

    def status(self) -> dict[str, Any]:
        return {
            "broker_connected": self.session.connected,
            "broker_refused": self.session.refused,
            "database_ok": self.writers.database_ok,
            "last_commit_at": self.writers.last_commit_at,
            "ingest_lag_seconds": self.writers.ingest_lag_s,
            "pending": self.inflight.pending,
            "write_error": next(iter(self.writers.errors.values()), None),
        }

    # --- what tests and the benchmark read -------------------------------------------------

    @property
    def committed(self) -> int:
        return self.inflight.committed

    @property
    def duplicates(self) -> int:
        return self.inflight.duplicates

    @property
    def rejected(self) -> int:
        return self.inflight.rejected

    @property
    def last_commit_at(self) -> dt.datetime | None:
        return self.writers.last_commit_at

    @property
    def database_ok(self) -> bool:
        return self.writers.database_ok

    def wait_committed(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` new events were stored since start (tests, bench)."""
        return self.inflight.wait_committed(n, timeout)


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
