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
import time

import psycopg

from oncall import metrics
from oncall.clock import Clock
from oncall.escalation import decide
from oncall.model import Decision, PendingStep
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
    start_round,
)

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
        self._lock = threading.Lock()  # tick() may be called from another thread (tests, admin commands)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn)
        return self._conn

    def tick(self) -> int:
        """Fire every step due now (in batches); return how many were handled."""
        handled = 0
        with self._lock:
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
                except Exception as exc:
                    log.exception("escalation step %s failed; retrying in %s", pending.pending_id, ERROR_RETRY)
                    conn.execute(
                        "UPDATE oncall_pending SET due_at = %s, reason = %s WHERE pending_id = %s",
                        (now + ERROR_RETRY, f"error: {type(exc).__name__}", pending.pending_id),
                    )
                    self.outcomes["error"] += 1
        return len(due)

    def _fire(self, conn: psycopg.Connection, pending: PendingStep, now: dt.datetime) -> None:
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
        metrics.DECISIONS.labels(pending.kind, decision.outcome).inc()
        log.info("incident %s %s %s: %s", pending.incident_id, pending.kind, decision.outcome, decision.reason)

    def sweep(self) -> int:
        """Start escalation for open incidents that have none (a hook that failed or was not installed).

        Only incidents opened within ``sweep_horizon`` count, so deploying
        on-call does not page for every old open incident.
        """
        now = self.clock.now()
        started = 0
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                rows = conn.execute(
                    "SELECT i.id, i.community_id, i.tier, i.opened_at, i.condition FROM incidents i"
                    " WHERE i.status = 'open' AND NOT i.work_order AND i.opened_at > %s AND i.opened_at <= %s"
                    " AND NOT EXISTS (SELECT 1 FROM oncall_escalations e WHERE e.incident_id = i.id)"
                    " ORDER BY i.opened_at LIMIT %s FOR UPDATE OF i SKIP LOCKED",
                    (now - self.settings.sweep_horizon, now, self.settings.batch_size),
                ).fetchall()
                for incident_id, community_id, tier, opened_at, condition in rows:
                    start_round(
                        conn, incident_id=incident_id, community_id=community_id, tier=tier, due_at=opened_at,
                        why=f"found open without an escalation by the sweep ({condition}, tier {tier})",
                    )  # fmt: skip
                    started += 1
        if started:
            log.warning("on-call sweep started escalation for %d incident(s) the hook missed", started)
        return started

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; survives database outages by reconnecting."""
        listener: psycopg.Connection | None = None
        next_sweep = 0.0
        while not stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = psycopg.connect(self.dsn, autocommit=True)
                    listener.execute(f"LISTEN {PENDING_CHANNEL}")
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + self.settings.sweep_interval_s
                self.tick()
                # Wake on NOTIFY (a new round is due now) or after the poll interval.
                for _ in listener.notifies(timeout=self.settings.poll_interval_s, stop_after=1):
                    pass
            except psycopg.OperationalError as exc:
                log.warning("escalation scheduler: database unavailable (%s); retrying", type(exc).__name__)
                with self._lock:
                    for c in (listener, self._conn):
                        if c is not None:
                            c.close()
                    listener, self._conn = None, None
                stop.wait(self.settings.poll_interval_s)
        if listener is not None:
            listener.close()
        if self._conn is not None:
            self._conn.close()
