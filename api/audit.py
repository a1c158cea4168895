"""The audit log: one row for every state-changing action, written in the action's transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.users import Caller


def record(conn: psycopg.Connection, *, caller: Caller | None, action: str, target_type: str, target_id: str | int,
           community_id: str | None = None, detail: dict[str, Any] | None = None, username: str | None = None) -> None:
    """Append one entry. ``caller`` None is an unauthenticated action (a failed login), named by ``username``."""
    conn.execute(
        "INSERT INTO audit_log (user_id, username, via, action, community_id, target_type, target_id, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            caller.user_id if caller else None,
            caller.username if caller else (username or ""),
            caller.via if caller else "anonymous",
            action,
            community_id,
            target_type,
            str(target_id),
            Jsonb(detail or {}),
        ),
    )


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    username: str
    via: str
    action: str
    community_id: str | None
    target_type: str
    target_id: str
    detail: dict[str, Any]


def list_entries(conn: psycopg.Connection, *, communities: frozenset[str] | list[str], include_global: bool,
                 before_id: int | None = None, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first. Entries with no community (user administration, logins) only with ``include_global``."""
    rows = conn.execute(
        "SELECT id, at, username, via, action, community_id, target_type, target_id, detail FROM audit_log "
        "WHERE (community_id = ANY(%(c)s) OR (community_id IS NULL AND %(g)s)) AND (%(before)s::bigint IS NULL OR id < %(before)s) "
        "AND (%(action)s::text IS NULL OR action = %(action)s) ORDER BY id DESC LIMIT %(limit)s",
        {"c": list(communities), "g": include_global, "before": before_id, "action": action, "limit": limit},
    ).fetchall()
    return [AuditEntry(*r) for r in rows]
