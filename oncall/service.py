"""The on-call service: the escalation scheduler and one delivery worker per channel, in background threads.

Used by ``steward run``::

    service = OnCallService(dsn, OnCallSettings(), SystemClock())
    service.start()
    ...
    service.stop()
"""

from __future__ import annotations

import logging
import threading
from typing import Self

from oncall.channels import Sender, build_senders
from oncall.clock import Clock, SystemClock
from oncall.delivery import ChannelWorker
from oncall.scheduler import EscalationScheduler
from oncall.settings import OnCallSettings

log = logging.getLogger(__name__)


class OnCallService:
    """Runs escalation and delivery until ``stop()``; safe to run in several processes at once."""

    def __init__(
        self,
        dsn: str,
        settings: OnCallSettings,
        clock: Clock | None = None,
        *,
        senders: dict[str, Sender] | None = None,
    ) -> None:
        self.dsn = dsn
        self.settings = settings
        self.clock = clock or SystemClock()
        self.scheduler = EscalationScheduler(dsn, settings, self.clock)
        self.workers = {
            channel: ChannelWorker(dsn, sender, settings, self.clock)
            for channel, sender in (senders if senders is not None else build_senders(settings)).items()
        }
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> OnCallService:
        if self._threads:
            raise RuntimeError("OnCallService already started")
        self._stop.clear()
        self._threads = [threading.Thread(target=self.scheduler.run, args=(self._stop,), name="oncall-escalation", daemon=True)]
        self._threads += [
            threading.Thread(target=w.run_in_thread, args=(self._stop,), name=f"oncall-{name}", daemon=True)
            for name, w in self.workers.items()
        ]
        for t in self._threads:
            t.start()
        log.info("on-call started: channels %s", ", ".join(self.workers) or "none")
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)
            if t.is_alive():
                log.warning("on-call thread %s did not stop within %ss", t.name, timeout_s)
        self._threads = []

    def healthy(self) -> bool:
        """Every background thread is alive (for /health)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
