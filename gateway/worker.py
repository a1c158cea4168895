"""A worker process: the shards it owns under leases, one gateway per owned shard.

Every community belongs to one of a fixed number of shards (``ingest/shards.py``).
A worker takes shards under leases in PostgreSQL and runs, for each, a
`Gateway` with its own persistent MQTT session, its own detector runtime and
checkpoint, and a fence that every commit checks:

- **client id** ``<installation client id>-shard-<n>`` (the id itself when there
  is one shard), so the broker keeps one session per shard whoever owns it:
  the shard's next owner connects with the same id and receives what the last
  one had not acknowledged, in order;
- **topics** ``community/<c>/#`` for each community of the shard (``community/#``
  when there is one shard), added as communities are assigned;
- **fence**: the shard's lease epoch, checked last in every transaction.

The lease loop runs every ``lease_ttl_s / 3``: heartbeat, renew, pick up new
communities, then balance: with ``W`` live workers and ``S`` shards each worker
aims at ``S // W`` shards (the first ``S % W`` workers by id at one more). A
worker over its share hands one shard back at a time, in the background (drain:
commit, acknowledge, disconnect; then release the lease, renewed until then);
one under its share takes free or expired shards. A worker that dies stops renewing: its leases expire after at
most ``lease_ttl_s``, and the others take them within one more round. So a
takeover starts at most ``lease_ttl_s * 4/3`` after the last renewal (plus the
database's ``idle_in_transaction_session_timeout`` when the worker was paused
in the middle of a commit), and the new owner restores the shard's detector
state from its checkpoint and the events committed since, before it connects.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from domain.topics import SUBSCRIPTION
from gateway.service import EventSink, Gateway, GatewayConfig
from ingest import shards as db

log = logging.getLogger(__name__)

SinkFactory = Callable[[int, str, Callable[[], set[str]]], EventSink | None]  # (shard, checkpoint name, communities)


def shard_client_id(base: str, shard: int, shard_count: int) -> str:
    return base if shard_count == 1 else f"{base}-shard-{shard}"


def shard_topics(communities: set[str], shard_count: int) -> list[str]:
    if shard_count == 1:
        return [SUBSCRIPTION]
    return [f"community/{c}/#" for c in sorted(communities)]


def checkpoint_name(shard: int, shard_count: int) -> str:
    return "default" if shard_count == 1 else f"shard-{shard}"


@dataclass
class OwnedShard:
    lease: db.Lease
    gateway: Gateway
    communities: set[str]
    renewed_at: float  # monotonic
    restarts: int = 0


@dataclass
class ShardWorker:
    config: GatewayConfig
    shard_count: int = 1
    lease_ttl_s: float = 10.0
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    make_sink: SinkFactory | None = None
    clock: Callable[[], dt.datetime] | None = None
    owned: dict[int, OwnedShard] = field(default_factory=dict)
    # Shards being handed back: still this worker's (renewed) until their last commit.
    leaving: dict[int, OwnedShard] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # owned, between the lease loop and status()
        self.rounds = 0
        self._stopping: list[threading.Thread] = []

    @property
    def round_s(self) -> float:
        return self.lease_ttl_s / 3

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> ShardWorker:
        """Lay out the shards (or check the layout), take this worker's share, and keep
        at it in the background. The first round runs here, so that a lone worker
        (``steward run``) consumes from the moment it returns."""
        with psycopg.connect(self.config.database_url) as conn:
            db.ensure_layout(conn, self.shard_count)
        try:
            self._round()
        except psycopg.Error as exc:
            log.warning("lease round failed at start (%s); retrying", str(exc).strip()[:200])
        self._thread = threading.Thread(target=self._loop, name="shard-leases", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Drain every owned shard (commit, acknowledge, checkpoint), then hand it back."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        with self._lock:
            owned, self.owned = dict(self.owned), {}
        for number, shard in sorted(owned.items()):
            shard.gateway.stop(timeout)
            inflight = shard.gateway.inflight
            log.info("shard %d: %d batches stored, %d events new since taken", number, inflight.batches_stored, inflight.committed)
        for thread in self._stopping:  # hand-backs in progress release their own leases
            thread.join(timeout)
        try:
            conn = self._connection()
            for shard in owned.values():
                if not shard.gateway.writers.fenced:
                    db.release(conn, self.worker_id, shard.lease)
            db.leave(conn, self.worker_id)
        except psycopg.Error as exc:
            log.warning("could not hand the shards back (%s); their leases expire by themselves", exc)
        for thread in self._stopping:
            thread.join(timeout)
        if self._conn is not None:
            self._conn.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.round_s):
            try:
                self._round()
            except psycopg.Error as exc:
                log.warning("lease round failed (%s); retrying", str(exc).strip()[:200])
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
            except Exception:
                log.exception("lease round failed")

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.config.database_url, autocommit=True, connect_timeout=5)
            # A lease row locked by a commit in progress is not worth waiting for.
            self._conn.execute("SET lock_timeout = '500ms'")
        return self._conn

    # --- one round --------------------------------------------------------------------------

    def _round(self) -> None:
        self._stopping = [t for t in self._stopping if t.is_alive()]
        conn = self._connection()
        db.heartbeat(conn, self.worker_id, self.lease_ttl_s, socket.gethostname(), os.getpid())
        self._renew(conn)
        self._follow_communities(conn)
        if self._stop.is_set():
            return
        share = self._share(db.live_workers(conn))
        with self._lock:
            owned = len(self.owned)
        if owned > share:
            if not self.leaving:  # one at a time
                self._hand_back(max(self.owned))
        elif owned < share:
            for shard in db.free_shards(conn, self.worker_id):
                if len(self.owned) >= share or self._stop.is_set():
                    break
                if shard not in self.owned and shard not in self.leaving:
                    self._take(conn, shard)
        self.rounds += 1

    def _share(self, live: list[str]) -> int:
        if self.worker_id not in live:
            live = sorted([*live, self.worker_id])
        base, extra = divmod(self.shard_count, len(live))
        return base + (1 if live.index(self.worker_id) < extra else 0)

    def _renew(self, conn: psycopg.Connection) -> None:
        for number, shard in list(self.leaving.items()):
            # Still ours while its gateway drains: a lease that lapsed now would let the
            # next owner start while the last commit is still to come (it would be fenced,
            # and the shard would change hands twice).
            if not shard.gateway.writers.fenced and db.renew(conn, self.worker_id, shard.lease, self.lease_ttl_s):
                shard.renewed_at = time.monotonic()
        for number, shard in list(self.owned.items()):
            gateway = shard.gateway
            if gateway.writers.fenced or not db.renew(conn, self.worker_id, shard.lease, self.lease_ttl_s):
                log.warning("shard %d was taken over (epoch %d): stopping its gateway", number, shard.lease.epoch)
                self._drop(number)
                continue
            shard.renewed_at = time.monotonic()
            if gateway.session.gave_up:  # lost the broker while unsure of the lease; it is ours: reconnect
                log.info("shard %d: lease renewed, reconnecting its session", number)
                self._drop(number)
                self._take(conn, number)

    def _follow_communities(self, conn: psycopg.Connection) -> None:
        for number, shard in list(self.owned.items()):
            now = db.communities_of(conn, number)
            fresh = now - shard.communities
            if fresh:
                shard.communities |= fresh
                if self.shard_count > 1:
                    shard.gateway.session.add_topics(shard_topics(fresh, self.shard_count))
                log.info("shard %d: now also consuming %s", number, ", ".join(sorted(fresh)))

    def _take(self, conn: psycopg.Connection, number: int) -> None:
        lease = db.acquire(conn, self.worker_id, number, self.lease_ttl_s)
        if lease is None:
            return
        communities = db.communities_of(conn, number)
        holder: dict[str, OwnedShard] = {}

        def shard_communities() -> set[str]:
            return set(holder["shard"].communities) if "shard" in holder else set(communities)

        def fence(tx: psycopg.Connection) -> None:
            db.check_fence(tx, self.worker_id, lease)

        def may_reconnect() -> bool:
            # Only while this gateway is still the shard's here (not dropped or handed
            # back: a session that reconnects then takes the broker's session from the
            # next owner) and the lease surely has not expired on this worker's own clock.
            owned = holder.get("shard")
            return (
                owned is not None
                and self.owned.get(number) is owned
                and time.monotonic() - owned.renewed_at < self.lease_ttl_s * 0.9
            )

        config = replace(
            self.config,
            client_id=shard_client_id(self.config.client_id, number, self.shard_count),
            idle_in_transaction_timeout_s=max(self.lease_ttl_s, 2.0),
        )
        sink = self.make_sink(number, checkpoint_name(number, self.shard_count), shard_communities) if self.make_sink else None
        gateway = Gateway(
            config,
            sink=sink,
            clock=self.clock,
            topics=shard_topics(communities, self.shard_count),
            fence=fence,
            communities=shard_communities if self.shard_count > 1 else None,
        )
        gateway.session._may_reconnect = may_reconnect
        holder["shard"] = OwnedShard(lease, gateway, set(communities), time.monotonic())
        with self._lock:
            self.owned[number] = holder["shard"]
        log.info("took shard %d (epoch %d, %d communities) as %s", number, lease.epoch, len(communities), config.client_id)
        # In the background: the first connection retries for as long as the broker is
        # unreachable, and meanwhile the lease loop must go on renewing this worker's
        # leases (this one's too), or they lapse and the shards change hands for nothing.
        self._stopping.append(gateway.start_connecting())

    def _drop(self, number: int) -> None:
        """The shard is no longer ours: stop its gateway in the background (its commits
        are fenced; what it has not acknowledged the broker gives the new owner)."""
        with self._lock:
            shard = self.owned.pop(number, None)
        if shard is not None:
            thread = threading.Thread(target=shard.gateway.stop, name=f"drop-shard-{number}", daemon=True)
            thread.start()
            self._stopping.append(thread)

    def _hand_back(self, number: int) -> None:
        """Drain the shard (commit, acknowledge, disconnect), then release its lease, in
        the background: the lease loop goes on renewing this worker's other shards (and
        this one, until released) meanwhile. A drain that waited in the lease loop (a
        commit on a loaded machine takes seconds) let every other lease of the worker
        lapse, the other workers took them, and the shards changed hands over and over."""
        with self._lock:
            shard = self.owned.pop(number)
            self.leaving[number] = shard
        log.info("handing shard %d back (rebalancing)", number)

        def drain_and_release() -> None:
            try:
                shard.gateway.stop(max(self.round_s, 5.0))
                if not shard.gateway.writers.fenced:  # a commit still under way is fenced from now on
                    with psycopg.connect(self.config.database_url, autocommit=True, connect_timeout=5) as conn:
                        db.release(conn, self.worker_id, shard.lease)
            except psycopg.Error as exc:
                log.warning("could not hand shard %d back (%s); its lease runs out by itself", number, exc)
            finally:
                with self._lock:
                    if self.leaving.get(number) is shard:
                        del self.leaving[number]

        thread = threading.Thread(target=drain_and_release, name=f"hand-back-shard-{number}", daemon=True)
        thread.start()
        self._stopping.append(thread)

    # --- what /health and the tests read -------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            owned = dict(self.owned)
        per_shard = {n: s.gateway.status() for n, s in owned.items()}
        stats = list(per_shard.values())
        commits = [s["last_commit_at"] for s in stats if s["last_commit_at"]]
        lags = [s["ingest_lag_seconds"] for s in stats if s["ingest_lag_seconds"] is not None]
        return {
            "broker_connected": bool(stats) and all(s["broker_connected"] for s in stats),
            "broker_refused": next((s["broker_refused"] for s in stats if s.get("broker_refused")), None),
            "database_ok": bool(stats) and all(s["database_ok"] for s in stats),
            "last_commit_at": max(commits) if commits else None,
            "ingest_lag_seconds": max(lags) if lags else None,
            "pending": sum(s["pending"] for s in stats),
            "write_error": next((s["write_error"] for s in stats if s["write_error"]), None),
            "worker_id": self.worker_id,
            "shards": {n: {"epoch": s.lease.epoch, "communities": len(s.communities)} for n, s in owned.items()},
        }

    @property
    def committed(self) -> int:
        with self._lock:
            return sum(s.gateway.committed for s in self.owned.values())
