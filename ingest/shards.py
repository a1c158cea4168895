"""Shards of communities and their leases, in PostgreSQL (migration 0008).

- The shard count is fixed in ``shard_layout`` by the first worker; a worker
  started with another count is refused (`LayoutMismatch`), since a new count
  would move communities and split their detector state.
- A community gets its shard once, when it first appears in the registry, and
  keeps it (`assign_community_shard` in SQL; fewest communities first).
- A lease gives one worker a shard until ``expires_at`` (the database's clock,
  so workers' clocks do not matter for who owns what). ``epoch`` is the fencing
  token: it is raised at every change of owner, and `check_fence` runs last in
  every transaction a shard's worker commits, taking a share lock on the lease
  row, so a worker that lost its shard (paused, partitioned, too slow to renew)
  can never commit again: a takeover's UPDATE waits for a commit already past
  the check, and any later check sees the new epoch.
"""

from __future__ import annotations

import dataclasses

import psycopg


class LayoutMismatch(RuntimeError):
    pass


class Fenced(Exception):
    """This worker no longer owns the shard: its transaction must not commit."""


@dataclasses.dataclass(frozen=True)
class Lease:
    shard: int
    epoch: int


def ensure_layout(conn: psycopg.Connection, shard_count: int) -> None:
    """Record the shard count (first worker) or check it; assign every community of the
    registry that has no shard yet; create the lease rows."""
    with conn.transaction():
        conn.execute("LOCK TABLE shard_layout IN EXCLUSIVE MODE")
        row = conn.execute("SELECT shard_count FROM shard_layout").fetchone()
        if row is None:
            conn.execute("INSERT INTO shard_layout (shard_count) VALUES (%s)", (shard_count,))
        elif row[0] != shard_count:
            raise LayoutMismatch(
                f"shards (STEWARD_SHARDS): this database was laid out in {row[0]} shards, not {shard_count}; "
                "the count is fixed when the first worker starts (changing it would move communities)"
            )
        conn.execute(
            "INSERT INTO shard_leases (shard) SELECT g FROM generate_series(0, %s - 1) g ON CONFLICT DO NOTHING",
            (shard_count,),
        )
        conn.execute(
            "SELECT assign_community_shard(c) FROM (SELECT DISTINCT community_id AS c FROM devices "
            "WHERE community_id NOT IN (SELECT community_id FROM community_shards) ORDER BY 1) s"
        )


def shard_of(conn: psycopg.Connection, community_id: str) -> int | None:
    row = conn.execute("SELECT assign_community_shard(%s)", (community_id,)).fetchone()
    return None if row is None else row[0]


def communities_of(conn: psycopg.Connection, shard: int) -> set[str]:
    return {r[0] for r in conn.execute("SELECT community_id FROM community_shards WHERE shard = %s", (shard,))}


# --- workers and leases (autocommit connection of the worker's lease loop) ---------------


def heartbeat(conn: psycopg.Connection, worker_id: str, ttl_s: float, host: str, pid: int) -> int:
    """Say this worker is alive for ``ttl_s``; return how many workers are alive."""
    conn.execute(
        "INSERT INTO shard_workers (worker_id, seen_until, host, pid) VALUES (%s, now() + %s * interval '1 s', %s, %s) "
        "ON CONFLICT (worker_id) DO UPDATE SET seen_until = EXCLUDED.seen_until",
        (worker_id, ttl_s, host, pid),
    )
    conn.execute("DELETE FROM shard_workers WHERE seen_until < now() - interval '1 hour'")
    row = conn.execute("SELECT count(*) FROM shard_workers WHERE seen_until > now()").fetchone()
    return int(row[0])  # type: ignore[index]


def leave(conn: psycopg.Connection, worker_id: str) -> None:
    conn.execute("DELETE FROM shard_workers WHERE worker_id = %s", (worker_id,))


def live_workers(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT worker_id FROM shard_workers WHERE seen_until > now() ORDER BY 1")]


def acquire(conn: psycopg.Connection, worker_id: str, shard: int, ttl_s: float) -> Lease | None:
    """Take a shard that is free, expired, or already this worker's (a restarted
    ``steward run`` has the same id): a new epoch. None when another worker holds it,
    or when its row is locked by a commit in progress (``lock_timeout``)."""
    try:
        row = conn.execute(
            "UPDATE shard_leases SET owner = %(me)s, epoch = epoch + 1, acquired_at = now(), "
            "expires_at = now() + %(ttl)s * interval '1 s' "
            "WHERE shard = %(shard)s AND (owner IS NULL OR owner = %(me)s OR expires_at < clock_timestamp()) "
            "RETURNING epoch",
            {"me": worker_id, "shard": shard, "ttl": ttl_s},
        ).fetchone()
    except psycopg.errors.LockNotAvailable:
        return None
    return None if row is None else Lease(shard, int(row[0]))


def renew(conn: psycopg.Connection, worker_id: str, lease: Lease, ttl_s: float) -> bool:
    """Extend a lease this worker still holds (same epoch); False: it was taken over."""
    try:
        row = conn.execute(
            "UPDATE shard_leases SET expires_at = now() + %s * interval '1 s' "
            "WHERE shard = %s AND owner = %s AND epoch = %s RETURNING 1",
            (ttl_s, lease.shard, worker_id, lease.epoch),
        ).fetchone()
    except psycopg.errors.LockNotAvailable:  # a commit holds the row: the lease is still ours
        return True
    return row is not None


def release(conn: psycopg.Connection, worker_id: str, lease: Lease) -> None:
    """Hand a shard back at once (after its last commit), for another worker to take."""
    conn.execute(
        "UPDATE shard_leases SET owner = NULL, expires_at = '-infinity' WHERE shard = %s AND owner = %s AND epoch = %s",
        (lease.shard, worker_id, lease.epoch),
    )


def free_shards(conn: psycopg.Connection, worker_id: str) -> list[int]:
    """Shards nobody holds now (free or expired), lowest first."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT shard FROM shard_leases WHERE owner IS NULL OR expires_at < clock_timestamp() OR owner = %s "
            "ORDER BY shard",
            (worker_id,),
        )
    ]


def check_fence(conn: psycopg.Connection, worker_id: str, lease: Lease) -> None:
    """Last statement of a shard's transaction: raise `Fenced` unless this worker still
    owns the shard at this epoch. The share lock makes a takeover wait for this
    commit, so the new owner's restore sees it."""
    row = conn.execute(
        "SELECT 1 FROM shard_leases WHERE shard = %s AND owner = %s AND epoch = %s FOR SHARE",
        (lease.shard, worker_id, lease.epoch),
    ).fetchone()
    if row is None:
        raise Fenced(f"shard {lease.shard}: epoch {lease.epoch} is no longer this worker's ({worker_id})")
