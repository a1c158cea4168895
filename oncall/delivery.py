"""Delivery workers: one per channel, each in its own thread and event loop.

A worker claims its channel's due outbox rows (``FOR UPDATE SKIP LOCKED``,
pushing ``next_attempt_at`` forward by a lease so a crashed worker's rows come
back), renders each message in the person's language with fresh signed links,
sends up to ``send_concurrency`` at once, each bounded by the channel's
timeout, and stores every attempt in ``oncall_deliveries``. A failed attempt
is retried with exponential backoff until ``max_attempts``; a permanent
failure (4xx, refused mailbox) stops at once. A channel that is down only
delays its own rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from typing import Any

import psycopg

from oncall import metrics
from oncall.channels.base import OutboundMessage, Sender, SendResult
from oncall.clock import Clock
from oncall.links import link_url, make_token
from oncall.settings import OnCallSettings, scrub
from oncall.store import OUTBOX_CHANNEL
from oncall.templates import render

log = logging.getLogger(__name__)


def backoff(attempt: int, *, base_s: float, max_s: float) -> dt.timedelta:
    """Delay before attempt ``attempt + 1``: base, 2x base, 4x base... capped."""
    return dt.timedelta(seconds=min(max_s, base_s * 2 ** max(0, attempt - 1)))


def build_message(row: dict[str, Any], settings: OnCallSettings) -> OutboundMessage:
    """Render one outbox row: template in its locale, links signed now with the link secret."""
    msg = row["message"]
    secret = settings.link_secret.get_secret_value()
    expires_at = dt.datetime.fromisoformat(msg["links_expire_at"])
    urls = {
        action: link_url(
            settings.public_base_url,
            make_token(secret, incident_id=row["incident_id"], action=action, staff_id=row["staff_id"],
                       expires_at=expires_at, nonce=msg[f"{action}_nonce"]),
        )
        for action in ("ack", "resolve")
    }  # fmt: skip
    rendered = render(row["locale"], msg, ack_url=urls["ack"], resolve_url=urls["resolve"])
    data = {
        k: msg.get(k)
        for k in ("kind", "incident_id", "tier", "title", "condition", "community_id", "building_id", "device_ids",
                  "opened_at", "reason")
    }  # fmt: skip
    data["ack_url"], data["resolve_url"] = urls["ack"], urls["resolve"]
    return OutboundMessage(
        outbox_id=row["outbox_id"], incident_id=row["incident_id"], staff_id=row["staff_id"], address=row["address"],
        locale=row["locale"], subject=rendered.subject, text=rendered.text, data=data,
    )  # fmt: skip


CLAIM = """
UPDATE oncall_outbox o SET attempts = o.attempts + 1, next_attempt_at = %(lease_until)s
FROM (SELECT outbox_id FROM oncall_outbox WHERE channel = %(channel)s AND status = 'pending'
      AND next_attempt_at <= %(now)s ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due
WHERE o.outbox_id = due.outbox_id
RETURNING o.outbox_id, o.incident_id, o.staff_id, o.address, o.locale, o.message, o.attempts
"""


class ChannelWorker:
    """Sends one channel's outbox. ``run_once()`` for one pass; ``run()`` loops until stopped."""

    LEASE = dt.timedelta(minutes=5)

    def __init__(self, dsn: str, sender: Sender, settings: OnCallSettings, clock: Clock) -> None:
        self.dsn = dsn
        self.sender = sender
        self.channel = sender.channel
        self.settings = settings
        self.clock = clock
        self._secrets = settings.secrets()
        self._conn: psycopg.AsyncConnection | None = None
        self._sem = asyncio.Semaphore(settings.send_concurrency)
        self._db_lock = asyncio.Lock()  # one connection: transactions of concurrent sends must not interleave

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        return self._conn

    async def run_once(self) -> int:
        """Claim and send every due row of this channel once; return how many were attempted."""
        conn = await self._connection()
        now = self.clock.now()
        async with self._db_lock, conn.cursor() as cur:
            await cur.execute(
                CLAIM,
                {"channel": self.channel, "now": now, "lease_until": now + self.LEASE, "limit": self.settings.batch_size},
            )
            cols = [d.name for d in cur.description or ()]
            rows = [dict(zip(cols, r, strict=True)) for r in await cur.fetchall()]
        if rows:
            await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: dict[str, Any]) -> None:
        async with self._sem:
            started = time.monotonic()
            try:
                message = build_message(row, self.settings)
                result = await asyncio.wait_for(self.sender.send(message), timeout=self._send_timeout())
            except TimeoutError:
                result = SendResult(False, retryable=True, error=f"{self.channel}: timed out")
            except Exception as exc:
                log.exception("%s sender failed", self.channel)
                result = SendResult(False, retryable=True, error=f"{self.channel}: {type(exc).__name__}")
            duration_ms = (time.monotonic() - started) * 1000
        await self._record(row, result, duration_ms)

    def _send_timeout(self) -> float:
        per_channel = {
            "webhook": self.settings.webhook_timeout_s,
            "email": self.settings.smtp_timeout_s,
            "push": self.settings.push_timeout_s,
        }
        return per_channel.get(self.channel, 10.0) + 1.0

    async def _record(self, row: dict[str, Any], result: SendResult, duration_ms: float) -> None:
        now = self.clock.now()
        attempt = row["attempts"]
        error = scrub(result.error, self._secrets)
        if result.ok:
            outcome, status, next_at = "delivered", "sent", None
        elif result.retryable and attempt < self.settings.max_attempts:
            outcome, status = "retry", "pending"
            next_at = now + backoff(attempt, base_s=self.settings.backoff_base_s, max_s=self.settings.backoff_max_s)
        else:
            outcome, status, next_at = "failed", "failed", None
        metrics.DELIVERIES.labels(self.channel, outcome).inc()
        metrics.SEND_SECONDS.labels(self.channel).observe(duration_ms / 1000)
        async with self._db_lock:
            await self._store_attempt(row, attempt, outcome, status, next_at, error, now, duration_ms)
        if outcome != "delivered":
            log.warning("%s to %s attempt %s: %s (%s)", self.channel, row["staff_id"], attempt, outcome, error)

    async def _store_attempt(
        self, row: dict[str, Any], attempt: int, outcome: str, status: str, next_at: dt.datetime | None,
        error: str, now: dt.datetime, duration_ms: float,
    ) -> None:
        conn = await self._connection()
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO oncall_deliveries (outbox_id, incident_id, channel, recipient, attempt, outcome, error, at,"
                " duration_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (row["outbox_id"], row["incident_id"], self.channel, row["staff_id"], attempt, outcome, error, now,
                 duration_ms),
            )  # fmt: skip
            # A reminder superseded while this attempt ran stays superseded unless this attempt delivered it.
            await conn.execute(
                "UPDATE oncall_outbox SET status = CASE WHEN status = 'superseded' AND %s <> 'sent' THEN status"
                " ELSE %s END, next_attempt_at = coalesce(%s, next_attempt_at),"
                " sent_at = CASE WHEN %s = 'sent' THEN %s ELSE sent_at END WHERE outbox_id = %s",
                (status, status, next_at, status, now, row["outbox_id"]),
            )

    async def run(self, stop: threading.Event) -> None:
        await self.sender.start()
        listener: psycopg.AsyncConnection | None = None
        try:
            while not stop.is_set():
                try:
                    if listener is None or listener.closed:
                        listener = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                        await listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    if await self.run_once() >= self.settings.batch_size:
                        continue
                    async for _ in listener.notifies(timeout=self.settings.poll_interval_s, stop_after=1):
                        pass
                except psycopg.OperationalError as exc:
                    log.warning("%s worker: database unavailable (%s); retrying", self.channel, type(exc).__name__)
                    for c in (listener, self._conn):
                        if c is not None:
                            await c.close()
                    listener, self._conn = None, None
                    await asyncio.sleep(self.settings.poll_interval_s)
        finally:
            await self.sender.close()
            for c in (listener, self._conn):
                if c is not None:
                    await c.close()

    def run_in_thread(self, stop: threading.Event) -> None:
        """Thread target: this channel's own event loop, so no other channel can stall it."""
        asyncio.run(self.run(stop))
