"""Acknowledgement: a batch's PUBACKs leave only once it is committed, and batches are
acknowledged in the order they were taken, whichever writer commits first.

Mosquitto looks each PUBACK up by walking its in-flight list from the oldest
message, so acknowledging out of order costs it a walk past every older message
still unacknowledged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.inflight import Inbound


class InOrderAcks:
    def __init__(self, send: Callable[[list[Inbound]], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._due = 0  # the next batch number to acknowledge
        self._waiting: dict[int, list[Inbound]] = {}

    def acknowledge(self, number: int, batch: list[Inbound]) -> None:
        """Acknowledge batch ``number`` once every batch taken before it is acknowledged
        (an empty ``batch``: abandoned at stop, never committed, lets the next go)."""
        with self._lock:
            if number < self._due:  # already acknowledged: a retry after a failure past the ack
                return
            self._waiting[number] = batch
            while self._due in self._waiting:
                due = self._waiting.pop(self._due)
                self._due += 1
                self._send(due)
