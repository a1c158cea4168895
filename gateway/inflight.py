"""The messages between the broker and the database: received, taken into a batch,
committed.

paho's network thread puts what one socket read brought (`InFlight.put`); writer
threads take batches (`InFlight.take`) and report them done (`InFlight.finish`).
The queue is bounded by the in-flight cap: when it is full, `put` blocks, which
stops the socket reads, so that the broker holds everything else (Telegraf's
``max_undelivered_messages`` works the same way).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from domain.events import Event, Rejection
from gateway import metrics

# One message in flight: (connection generation, packet id, QoS, what validation
# made of it, raw payload). A tuple, because one is built per message.
Inbound = tuple[int, int, int, Event | Rejection, bytes]


class InFlight:
    def __init__(self, *, batch_size: int, linger_s: float, max_in_flight: int, stop: threading.Event) -> None:
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.max_in_flight = max_in_flight
        self._stop = stop
        # Received, not yet taken by a writer: the lists the network thread queued, one per
        # socket read, so that neither side touches the queue once per message.
        self._queue: deque[list[Inbound]] = deque()
        self.queued = 0  # messages in _queue
        # The socket had nothing more to read: a batch need not wait for more company.
        self._broker_quiet = False
        self.taken = 0  # taken by a writer, not yet committed
        # Batches are numbered as they are taken; `gateway.acknowledge` sends their
        # PUBACKs in that order.
        self._batches_taken = 0
        # One lock, three conditions, so that a notification wakes only who can act on it:
        # writers waiting for messages, the network thread waiting for room, and
        # callers of wait_committed.
        self._lock = threading.Lock()
        self._has_messages = threading.Condition(self._lock)
        self._has_room = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self.batches_stored = 0  # by any writer: evidence that a failing batch is not the stream's fault
        self.committed = 0  # events newly stored since start (tests and the benchmark read it)
        self.duplicates = 0
        self.rejected = 0

    @property
    def pending(self) -> int:
        return self.queued + self.taken

    def wake_all(self) -> None:
        """Stopping: whoever waits looks at the stop flag."""
        with self._lock:
            for cond in (self._has_messages, self._has_room, self._progress):
                cond.notify_all()

    # --- the network thread's side ------------------------------------------------------

    def put(self, inbound: list[Inbound]) -> None:
        if self._stop.is_set():
            # Stopping (a shard handed back, a worker told to stop): what is queued is
            # drained, committed and acknowledged; what the broker keeps sending is left
            # unacknowledged, and its session gives it to whoever connects with this
            # client id next. Taken in, a stream that goes on would keep the drain busy
            # until its timeout, and the last commit, under way when the lease is
            # released, would be fenced and thrown away. QoS 0 messages are still
            # taken: nobody would deliver them again.
            inbound = [m for m in inbound if not m[2]]
            if not inbound:
                return
        with self._lock:
            # Backstop for brokers that ignore Receive Maximum: stop reading the socket.
            while self.queued + self.taken >= self.max_in_flight and not self._stop.is_set():
                self._has_room.wait(0.5)
            was_empty = not self.queued
            self._queue.append(inbound)
            self.queued += len(inbound)
            self._broker_quiet = False
            if was_empty or self.queued >= self.batch_size:
                self._has_messages.notify_all()  # the first starts the linger clock; a full batch goes now

    def drained(self) -> None:
        """The socket read found nothing more: the broker has sent all it had."""
        with self._lock:
            if not self._broker_quiet:
                self._broker_quiet = True
                if self.queued:
                    self._has_messages.notify_all()

    # --- the writers' side --------------------------------------------------------------

    def take(self) -> tuple[int, list[Inbound]]:
        """Take up to batch_size messages off the queue: when that many are waiting, when
        no other batch is being written (the database is idle: the head of a backlog
        starts at once), when the broker has nothing more to send for now (a lone SOS
        goes at once, and so does the tail of a backlog), or at the latest when the
        oldest has waited linger_s. They count as in flight until `finish`; the number
        is the batch's place in the acknowledgement order."""
        with self._lock:
            if not self.queued:
                self._has_messages.wait(0.2)
            if self.queued and self.queued < self.batch_size and not self._stop.is_set():
                deadline = time.monotonic() + self.linger_s
                while self.queued < self.batch_size and self.taken and not self._stop.is_set() and not self._broker_quiet:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._has_messages.wait(left)
            batch: list[Inbound] = []
            self._move_into(batch)
            if not batch:
                return -1, batch
            self._batches_taken += 1
            return self._batches_taken - 1, batch

    def extend(self, batch: list[Inbound]) -> None:
        """Add what waits in the queue to ``batch``, up to batch_size (a single writer's
        failing batch: nothing was taken after it, so it stays first in line)."""
        with self._lock:
            self._move_into(batch)

    def _move_into(self, batch: list[Inbound]) -> None:
        queue, room, added = self._queue, self.batch_size - len(batch), 0
        while queue and room > 0:
            if len(queue[0]) <= room:
                part = queue.popleft()
            else:  # split the read: the rest stays first in line
                part = queue[0][:room]
                del queue[0][:room]
            batch += part
            room -= len(part)
            added += len(part)
        self.queued -= added
        self.taken += added

    def finish(self, size: int, *, committed: int, duplicates: int, rejected: int) -> None:
        with self._lock:
            self.taken -= size
            if size and (committed or duplicates or rejected):
                self.batches_stored += 1
            self.committed += committed
            self.duplicates += duplicates
            self.rejected += rejected
            metrics.PENDING.set(self.queued + self.taken)
            self._has_room.notify()
            self._progress.notify_all()

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
