"""The audit log: one row for every state-changing action, written in the action's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api import tenancy
from api.users import Caller, UserRecord

# Entries about user accounts (logins, passwords, keys, administration): read with user.manage, not audit.read.
ACCOUNT_TARGETS = ("user", "api_key")


def record(conn: psycopg.Connection, *, caller: Caller | None, action: str, target_type: str, target_id: str | int,
           community_id: str | None = None, detail: dict[str, Any] | None = None, username: str | None = None,
           communities: Iterable[str] | None = None) -> None:
    """Append one entry. ``caller`` None is an unauthenticated action (a failed login), named by ``username``.

    ``communities`` are those the entry belongs to (`api.tenancy`); by default ``community_id``'s.
    """
    belongs = sorted(set(communities)) if communities is not None else ([community_id] if community_id else [])
    conn.execute(
        "INSERT INTO audit_log (user_id, username, via, action, community_id, target_type, target_id, detail, "
        "communities) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            caller.user_id if caller else None,
            caller.username if caller else (username or ""),
            caller.via if caller else "anonymous",
            action,
            community_id,
            target_type,
            str(target_id),
            Jsonb(detail or {}),
            belongs,
        ),
    )


def record_about_user(conn: psycopg.Connection, *, caller: Caller | None, action: str, user: UserRecord,
                      target_type: str = "user", target_id: str | int | None = None,
                      detail: dict[str, Any] | None = None) -> None:
    """An entry about a user account; it belongs to the user's communities, like the user."""
    record(conn, caller=caller, action=action, target_type=target_type,
           target_id=user.id if target_id is None else target_id, detail=detail, username=user.username,
           communities=tenancy.user_communities(user))


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


def list_entries(conn: psycopg.Connection, *, caller: Caller, accounts: bool, community: str | None = None,
                 before_id: int | None = None, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first: the entries `api.tenancy` lets ``caller`` see (all of their communities are the caller's).

    ``accounts`` adds the entries about user accounts (for callers with user.manage); ``community`` keeps the
    entries that belong to that community (the caller must see it).
    """
    sees, params = tenancy.sql_sees(caller, "communities")
    rows = conn.execute(
        "SELECT id, at, username, via, action, community_id, target_type, target_id, detail FROM audit_log "
        f"WHERE {sees} "
        "AND (%(accounts)s OR target_type <> ALL(%(account_targets)s)) "
        "AND (%(community)s::text IS NULL OR communities @> ARRAY[%(community)s::text]) "
        "AND (%(before)s::bigint IS NULL OR id < %(before)s) "
        "AND (%(action)s::text IS NULL OR action = %(action)s) ORDER BY id DESC LIMIT %(limit)s",
        {**params, "accounts": accounts,
         "account_targets": list(ACCOUNT_TARGETS), "community": community, "before": before_id, "action": action,
         "limit": limit},
    ).fetchall()
    return [AuditEntry(*r) for r in rows]
