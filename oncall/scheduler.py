"""The escalation scheduler: claims due pending steps, decides, stores the decision.

A step's decision, its outbox rows and its next step commit in one
transaction with the step's status change, and steps are claimed with
``FOR UPDATE SKIP LOCKED``: across restarts and between several schedulers a
step fires exactly once. The scheduler wakes on ``NOTIFY oncall_pending`` (a
new round is due now) and otherwise looks again every ``poll_interval_s``.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading

import psycopg

from oncall.clock import Clock
from oncall.escalation import decide
from oncall.settings import OnCallSettings
from oncall.store import (
    PENDING_CHANNEL,
    apply_decision,
    claim_due,
    load_directory,
    load_incident,
    load_policy,
    load_windows,
    round_policy,
)
from oncall.model import Decision

log = logging.getLogger(__name__)

ERROR_RETRY = dt.timedelta(seconds=30)


class EscalationScheduler:
    """Fires due escalation steps. ``tick()`` does one pass; ``run()`` loops until stopped."""

    def __init__(self, dsn: str, settings: OnCallSettings, clock: Clock) -> None:
        self.dsn = dsn
        self.settings = settings
        self.clock = clock
        self.outcomes: collections.Counter[str] = collections.Counter()  # decisions by outcome, for metrics
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn)
        return self._conn

    def tick(self) -> int:
        """Fire every step due now (in batches); return how many were handled."""
        handled = 0
        while True:
            n = self._one_batch()
            handled += n
            if n < self.settings.batch_size:
                return handled

    def _one_batch(self) -> int:
        conn = self._connection()
        now = self.clock.now()
        with conn.transaction():
            due = claim_due(conn, now, self.settings.batch_size)
            for pending in due:
                try:
                    with conn.transaction():  # a savepoint: one bad step never blocks the others
                        self._fire(conn, pending, now)
                except Exception as exc:  # noqa: BLE001 - logged and retried later, never lost
                    log.exception("escalation step %s failed; retrying in %s", pending.pending_id, ERROR_RETRY)
                    conn.execute(
                        "UPDATE oncall_pending SET due_at = %s, reason = %s WHERE pending_id = %s",
                        (now + ERROR_RETRY, f"error: {type(exc).__name__}", pending.pending_id),
                    )
                    self.outcomes["error"] += 1
        return len(due)

    def _fire(self, conn: psycopg.Connection, pending, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
        policy_id = round_policy(conn, pending.incident_id, pending.round)
        loaded = load_incident(conn, pending.incident_id)
        if policy_id is False:
            decision = Decision("cancelled", f"round {pending.round} is no longer current")
        else:
            incident = loaded[0] if loaded else None
            policy = load_policy(conn, policy_id)  # type: ignore[arg-type]
            community = incident.community_id if incident else ""
            decision = decide(
                pending,
                incident,
                policy,
                load_directory(conn, community),
                load_windows(conn, community, now),
                now,
            )
        apply_decision(
            conn,
            pending,
            decision,
            loaded[1] if loaded else None,
            now=now,
            enabled_channels=self.settings.enabled_channels,
            link_ttl=self.settings.link_ttl,
        )
        self.outcomes[decision.outcome] += 1
        log.info("incident %s %s %s: %s", pending.incident_id, pending.kind, decision.outcome, decision.reason)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; survives database outages by reconnecting."""
        listener: psycopg.Connection | None = None
        while not stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = psycopg.connect(self.dsn, autocommit=True)
                    listener.execute(f"LISTEN {PENDING_CHANNEL}")
                self.tick()
                # Wake on NOTIFY (a new round is due now) or after the poll interval.
                for _ in listener.notifies(timeout=self.settings.poll_interval_s, stop_after=1):
                    pass
            except psycopg.OperationalError as exc:
                log.warning("escalation scheduler: database unavailable (%s); retrying", type(exc).__name__)
                for c in (listener, self._conn):
                    if c is not None:
                        c.close()
                listener, self._conn = None, None
                stop.wait(self.settings.poll_interval_s)
        if listener is not None:
            listener.close()
        if self._conn is not None:
            self._conn.close()
