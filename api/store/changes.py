"""The change feed behind the live stream: alert and work-order changes in commit order.

Writers call `publish` in the same transaction as the change; the NOTIFY is
delivered only when that transaction commits, so a listener never sees a
change that was rolled back. Readers page with `changes_after` and a cursor.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

CHANNEL = "steward_changes"
Entity = Literal["alert", "work_order"]


@dataclass(frozen=True)
class Change:
    id: int
    at: dt.datetime
    community_id: str
    entity: str
    entity_id: str
    change: str
    data: dict[str, Any]


def publish(conn: psycopg.Connection, *, community_id: str, entity: Entity, entity_id: str | int, change: str,
            data: dict[str, Any] | None = None) -> int:
    row = conn.execute(
        "INSERT INTO stream_changes (community_id, entity, entity_id, change, data) VALUES (%s, %s, %s, %s, %s) "
        "RETURNING id",
        (community_id, entity, str(entity_id), change, Jsonb(data or {})),
    ).fetchone()
    assert row is not None
    # The payload carries only the community, so a woken reader knows whether to look.
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps({"community_id": community_id, "id": row[0]})))
    return int(row[0])


def changes_after(conn: psycopg.Connection, *, communities: list[str], after_id: int, limit: int = 200,
                  up_to: int | None = None) -> list[Change]:
    rows = conn.execute(
        "SELECT id, at, community_id, entity, entity_id, change, data FROM stream_changes "
        "WHERE id > %s AND community_id = ANY(%s) AND (%s::bigint IS NULL OR id <= %s) ORDER BY id LIMIT %s",
        (after_id, communities, up_to, up_to, limit),
    ).fetchall()
    return [Change(*r) for r in rows]


def latest_id(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT COALESCE(max(id), 0) FROM stream_changes").fetchone()
    assert row is not None
    return int(row[0])


async def changes_after_async(conn: psycopg.AsyncConnection, *, communities: list[str] | None, after_id: int,
                              limit: int = 200) -> list[Change]:
    """``communities`` None: every community's (the process's one listener, `api.hub`)."""
    cur = await conn.execute(
        "SELECT id, at, community_id, entity, entity_id, change, data FROM stream_changes "
        "WHERE id > %s AND (%s::text[] IS NULL OR community_id = ANY(%s)) ORDER BY id LIMIT %s",
        (after_id, communities, communities, limit),
    )
    return [Change(*r) for r in await cur.fetchall()]


async def latest_id_async(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT COALESCE(max(id), 0) FROM stream_changes")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])
