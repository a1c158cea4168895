"""The writer threads: take a batch, store it, acknowledge it; retry what fails.

Each writer has its own database connection. A failure of the database itself
(down, restarting) keeps the batch and retries it with backoff, acknowledging
nothing; any other failure (a bug, a schema problem) is logged, counted, shown
in /health and retried every ``failure_retry_s``; a batch that failed twice is
stored in parts (`BatchStore.store_isolating`). The first writer (the only one
when the detectors run) also runs the detectors' timers and checkpoints, and
every writer records its devices' last-seen times every few seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg

from domain.events import Event
from gateway import metrics
from gateway.acknowledge import InOrderAcks
from gateway.inflight import Inbound, InFlight
from gateway.storing import BatchStore
from ingest import writer
from ingest.shards import Fenced

if TYPE_CHECKING:
    from gateway.service import EventSink, GatewayConfig
    from gateway.session import BrokerSession

log = logging.getLogger(__name__)

LastSeen = dict[str, tuple[dt.datetime, float | None]]


class Writers:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        inflight: InFlight,
        store: BatchStore,
        acks: InOrderAcks,
        session: BrokerSession,
        sink: EventSink | None,
        now: Callable[[], dt.datetime],
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.inflight = inflight
        self.store = store
        self.acks = acks
        self.session = session
        self.sink = sink
        self._now = now
        self._stop = stop
        self.threads: list[threading.Thread] = []
        self.last_commit_at: dt.datetime | None = None
        self.ingest_lag_s: float | None = None
        self.database_ok = False
        # Per writer thread, its last attempt's failure (a bug, a schema problem), until
        # an attempt succeeds: /health reports it, since no batch is stored meanwhile.
        self.errors: dict[str, str] = {}
        self.fenced = False  # this process lost the shard: it stopped without committing

    @property
    def count(self) -> int:
        return 1 if self.sink else max(1, self.config.writers)

    def start(self, name: str = "gateway-writer") -> None:
        self.threads = [
            threading.Thread(target=self._loop, args=(i == 0,), name=f"{name}-{i}", daemon=True)
            for i in range(self.count)
        ]
        for thread in self.threads:
            thread.start()

    def join(self, deadline: float) -> None:
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _open_connection(self) -> tuple[psycopg.Connection, writer.EventsTable]:
        conn = psycopg.connect(self.config.database_url, connect_timeout=5)
        if self.config.idle_in_transaction_timeout_s:
            # A worker paused inside a transaction holds its shard's lease row: the
            # server ends that transaction, so that a takeover waits at most this long.
            conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                (f"{int(self.config.idle_in_transaction_timeout_s * 1000)}",),
            )
            conn.commit()
        table = writer.prepare(conn)
        if self.sink:
            with conn.transaction():
                self.sink.restore(conn)
        self.store.load_devices(conn)
        return conn, table

    def _loop(self, leader: bool) -> None:
        """One writer: commit batches, then acknowledge them. The leader also runs the
        detectors' timers and checkpoints (a sink means a single writer)."""
        name = threading.current_thread().name
        cfg = self.config
        fence = self.store.fence
        conn: psycopg.Connection | None = None
        table: writer.EventsTable | None = None  # set with conn
        backoff = 0.1
        next_tick = next_checkpoint = next_flush = time.monotonic()
        last_seen: LastSeen = {}  # this writer's, until its next flush
        batch: list[Inbound] = []
        number = -1
        failures = 0  # of the batch in hand, for other reasons than the database being away
        stored_before = 0  # batches_stored at the first of those failures
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
                number, batch = self.inflight.take()
                failures = 0
            stopping = self._stop.is_set()
            if stopping and not batch:
                break
            try:
                if conn is None or conn.closed:
                    conn, table = self._open_connection()
                full = len(batch) >= cfg.batch_size
                assert table is not None
                if batch:
                    if failures >= 2 and self.count == 1:
                        # Alone, a writer commits nothing else while this batch fails: what
                        # waits behind it joins it (the order holds), so that isolating can
                        # tell one bad message from a stream that cannot be stored.
                        self.inflight.extend(batch)
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
                    self.session.connected
                    and now_mono - self.session.connected_at >= cfg.settle_s  # a backlog starts flowing at once
                    and not full
                )
                if self.sink and leader and caught_up and now_mono >= next_tick:
                    with conn.transaction():
                        self.sink.tick(conn, self._now())
                        if fence:
                            fence(conn)
                    next_tick = now_mono + cfg.tick_interval_s
                if now_mono >= next_flush or stopping:
                    with conn.transaction():
                        writer.record_last_seen(conn, last_seen)
                    last_seen.clear()  # only once written: a failed flush is retried with the rest
                    next_flush = now_mono + cfg.last_seen_flush_s
                if self.sink and leader and (now_mono >= next_checkpoint or stopping):
                    with conn.transaction():
                        self.sink.checkpoint(conn)
                        if fence:
                            fence(conn)
                    next_checkpoint = now_mono + cfg.checkpoint_interval_s
                self.database_ok = True
                self.errors.pop(name, None)
                backoff = 0.1
            except Fenced as exc:
                # Another worker owns the shard now: nothing more may commit here. What
                # is unacknowledged goes to the new owner through the broker's session.
                log.warning("stopping this shard's writer: %s", exc)
                self.fenced = True
                self._stop.set()
                break
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
                    stored_before = self.inflight.batches_stored
                self.errors[name] = f"{type(exc).__name__}: {str(exc).strip()}"[:300]
                log.exception("batch write failed; retrying in %.0fs", cfg.failure_retry_s)
                if conn is not None:
                    conn.close()
                conn = None
                if self._stop.wait(cfg.failure_retry_s) and stopping:
                    break
        if last_seen and conn is not None and not conn.closed:  # stopping: what is kept since the last flush
            try:
                with conn.transaction():
                    writer.record_last_seen(conn, last_seen)
            except psycopg.Error as exc:
                log.warning("could not record the devices' last-seen times on stopping (%s)", str(exc).strip()[:200])
        if batch:  # stopped with the database down: never acknowledged, so the broker keeps them
            self.acks.acknowledge(number, [])
            self.inflight.finish(len(batch), committed=0, duplicates=0, rejected=0)
        if conn is not None:
            conn.close()

    def _commit_batch(
        self,
        conn: psycopg.Connection,
        table: writer.EventsTable,
        number: int,
        batch: list[Inbound],
        last_seen: LastSeen,
        *,
        isolate: bool = False,
        stored_before: int = 0,
    ) -> None:
        """``isolate``: the batch failed twice; ``stored_before``: batches_stored when
        it first failed."""
        started = time.perf_counter()
        if isolate:
            # Two, not one: the other writer may have been finishing a batch when the
            # trouble began; a second one it took afterwards shows storing still works.
            new_events, duplicates, rejections = self.store.store_isolating(
                conn, table, batch, others_stored=self.inflight.batches_stored - stored_before >= 2
            )
        else:
            new_events, duplicates, rejections = self.store.store(conn, table, batch)
        # Committed: now, and only now, acknowledge.
        self.acks.acknowledge(number, batch)
        self.errors.pop(threading.current_thread().name, None)  # before waiters hear of it
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
        self.inflight.finish(len(batch), committed=len(new_events), duplicates=duplicates, rejected=len(rejections))


def _note_last_seen(seen: LastSeen, events: list[Event]) -> None:
    """Newest event time and last reported battery per device, until the next flush."""
    for e in events:
        battery = e.fields.get("battery") if e.type == "heartbeat" else None
        before = seen.get(e.device_id)
        if before is None:
            seen[e.device_id] = (e.ts, battery)
        elif e.ts > before[0] or battery is not None:
            seen[e.device_id] = (max(before[0], e.ts), before[1] if battery is None else battery)
