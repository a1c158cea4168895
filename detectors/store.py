"""Where incident changes become rows: ``incidents`` (one non-resolved row per
dedup key) and the append-only ``incident_timeline``.

Idempotent by design: an "opened" for a key that is already open becomes an
update of that row (never a second row); an update for a key with nothing open
opens it; "cleared" resolves the row (``resolved_by='detector'``) and is a no-op
when nothing is open; a condition that returns within the reopen window
(default 30 min) reopens the resolved row and counts ``reopen_count``.
`IncidentBook` applies the same rules in memory (the evaluation uses it); the
tests run one table of changes through both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from domain.incidents import IncidentChange, StoredChange

DEFAULT_REOPEN_WINDOW = dt.timedelta(minutes=30)


def _detail(change: IncidentChange) -> dict:
    return msgspec.to_builtins(change.detail)


def _as_kind(change: IncidentChange, kind: str) -> IncidentChange:
    return change if change.kind == kind else msgspec.structs.replace(change, kind=kind)  # type: ignore[arg-type]


def record_changes(
    conn: psycopg.Connection,
    changes: Sequence[IncidentChange],
    *,
    reopen_window: dt.timedelta = DEFAULT_REOPEN_WINDOW,
    actor: str = "detector",
) -> list[StoredChange]:
    """Apply changes in order inside the caller's transaction; returns what was stored
    (an "opened" folded into an open incident comes back as "updated"; a reopen as
    "opened" with ``reopened=True``; a "cleared" with nothing open is dropped)."""
    stored: list[StoredChange] = []
    for c in changes:
        row = conn.execute(
            "SELECT id, tier, severity FROM incidents WHERE dedup_key = %s AND status <> 'resolved' FOR UPDATE",
            (c.dedup_key,),
        ).fetchone()
        if c.kind == "cleared":
            if row is None:
                continue
            conn.execute(
                "UPDATE incidents SET status = 'resolved', resolved_at = %s, resolved_by = %s, updated_at = %s WHERE id = %s",
                (c.ts, actor, c.ts, row[0]),
            )
            _timeline(conn, row[0], c, "cleared", actor, row[1], row[2])
            stored.append(StoredChange(incident_id=row[0], change=c))
            continue
        if row is not None:
            incident_id, tier, severity = row
            new_tier, new_severity = min(tier, int(c.tier)), max(severity, c.severity)
            kind = "escalated" if new_tier < tier else "updated"
            conn.execute(
                "UPDATE incidents SET tier = %s, severity = %s, updated_at = GREATEST(updated_at, %s), title = %s, "
                "detail = detail || %s, work_order = work_order OR %s, "
                "device_ids = ARRAY(SELECT DISTINCT unnest(device_ids || %s::text[]) ORDER BY 1) WHERE id = %s",
                (new_tier, new_severity, c.ts, c.title, Jsonb(_detail(c)), c.work_order, list(c.device_ids), incident_id),
            )
            _timeline(conn, incident_id, c, kind, actor, new_tier, new_severity)
            stored.append(StoredChange(incident_id=incident_id, change=_as_kind(c, kind)))
            continue
        recent = conn.execute(
            "SELECT id FROM incidents WHERE dedup_key = %s AND status = 'resolved' AND resolved_at >= %s "
            "ORDER BY resolved_at DESC LIMIT 1 FOR UPDATE",
            (c.dedup_key, c.ts - reopen_window),
        ).fetchone()
        if recent is not None:
            conn.execute(
                "UPDATE incidents SET status = 'open', resolved_at = NULL, resolved_by = NULL, "
                "reopen_count = reopen_count + 1, tier = %s, severity = %s, title = %s, updated_at = %s, "
                "detail = detail || %s WHERE id = %s",
                (int(c.tier), c.severity, c.title, c.ts, Jsonb(_detail(c)), recent[0]),
            )
            _timeline(conn, recent[0], c, "reopened", actor, int(c.tier), c.severity)
            stored.append(StoredChange(incident_id=recent[0], change=_as_kind(c, "opened"), reopened=True))
            continue
        building_id = c.scope_id if c.scope == "building" else c.detail.get("building_id")
        incident_id = conn.execute(
            "INSERT INTO incidents (dedup_key, community_id, scope, scope_id, building_id, condition, tier, severity, "
            "title, device_ids, detail, work_order, status, opened_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'open', %s, %s) RETURNING id",
            (c.dedup_key, c.community_id, c.scope, c.scope_id, building_id, c.condition, int(c.tier), c.severity,
             c.title, list(c.device_ids), Jsonb(_detail(c)), c.work_order, c.ts, c.ts),
        ).fetchone()[0]
        _timeline(conn, incident_id, c, "opened", actor, int(c.tier), c.severity)
        stored.append(StoredChange(incident_id=incident_id, change=_as_kind(c, "opened")))
    return stored


def _timeline(conn: psycopg.Connection, incident_id: int, c: IncidentChange, kind: str, actor: str, tier: int, severity: int) -> None:
    conn.execute(
        "INSERT INTO incident_timeline (incident_id, at, kind, actor, tier, severity, detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (incident_id, c.ts, kind, actor, tier, severity, Jsonb({"title": c.title, **_detail(c)})),
    )


# --- the same rules in memory ------------------------------------------------------------


@dataclass
class BookIncident:
    id: int
    dedup_key: str
    condition: str
    scope_id: str
    tier: int
    severity: int
    opened_at: dt.datetime
    device_ids: set[str]
    work_order: bool
    status: str = "open"
    resolved_at: dt.datetime | None = None
    reopen_count: int = 0
    first_tier: int = 0
    updates: int = 0


@dataclass
class IncidentBook:
    reopen_window: dt.timedelta = DEFAULT_REOPEN_WINDOW
    incidents: list[BookIncident] = field(default_factory=list)
    _open: dict[str, BookIncident] = field(default_factory=dict)
    _last: dict[str, BookIncident] = field(default_factory=dict)

    def record(self, changes: Sequence[IncidentChange]) -> list[StoredChange]:
        stored: list[StoredChange] = []
        for c in changes:
            inc = self._open.get(c.dedup_key)
            if c.kind == "cleared":
                if inc is None:
                    continue
                inc.status, inc.resolved_at = "resolved", c.ts
                del self._open[c.dedup_key]
                stored.append(StoredChange(incident_id=inc.id, change=c))
                continue
            if inc is not None:
                kind = "escalated" if int(c.tier) < inc.tier else "updated"
                inc.tier, inc.severity = min(inc.tier, int(c.tier)), max(inc.severity, c.severity)
                inc.device_ids.update(c.device_ids)
                inc.updates += 1
                stored.append(StoredChange(incident_id=inc.id, change=_as_kind(c, kind)))
                continue
            last = self._last.get(c.dedup_key)
            if last is not None and last.resolved_at is not None and last.resolved_at >= c.ts - self.reopen_window:
                last.status, last.resolved_at, last.reopen_count = "open", None, last.reopen_count + 1
                last.tier, last.severity = int(c.tier), c.severity
                self._open[c.dedup_key] = last
                stored.append(StoredChange(incident_id=last.id, change=_as_kind(c, "opened"), reopened=True))
                continue
            inc = BookIncident(
                id=len(self.incidents) + 1, dedup_key=c.dedup_key, condition=c.condition, scope_id=c.scope_id,
                tier=int(c.tier), severity=c.severity, opened_at=c.ts, device_ids=set(c.device_ids),
                work_order=c.work_order, first_tier=int(c.tier),
            )
            self.incidents.append(inc)
            self._open[c.dedup_key] = self._last[c.dedup_key] = inc
            stored.append(StoredChange(incident_id=inc.id, change=_as_kind(c, "opened")))
        return stored


# --- silences ---------------------------------------------------------------------------------

SILENCE_SCOPES = ("device", "building", "community")
FAMILIES = ("elevator", "water", "access", "elderly")


def add_maintenance_window(
    conn: psycopg.Connection,
    *,
    community_id: str,
    scope: str,
    scope_id: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    device_type: str | None = None,
    reason: str = "maintenance",
    created_by: str = "system",
) -> int:
    """Silence a device, a building or a community (optionally one device family) for a
    while: a maintenance window, a planned water shutdown, a resident's away notice.
    The detector runtime picks it up within 30 s. Returns the window's id."""
    if scope not in SILENCE_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SILENCE_SCOPES)}, got {scope!r}")
    if device_type is not None and device_type not in FAMILIES:
        raise ValueError(f"device_type must be one of {', '.join(FAMILIES)} or None, got {device_type!r}")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("starts_at and ends_at must be timezone-aware")
    if ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")
    if not scope_id:
        raise ValueError("scope_id must not be empty")
    row = conn.execute(
        "INSERT INTO maintenance_windows (community_id, scope, scope_id, device_type, starts_at, ends_at, reason, created_by) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (community_id, scope, scope_id, device_type, starts_at, ends_at, reason, created_by),
    ).fetchone()
    return int(row[0])  # type: ignore[index]
