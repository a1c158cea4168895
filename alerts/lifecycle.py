"""Staff actions on alerts. An alert IS an incident row (table ``incidents``, owned
by the detectors); these functions add acknowledgement, assignment, comments and
staff escalation, and append every change to ``incident_timeline`` with its actor.

Status: ``open`` → ``acknowledged`` → ``resolved`` (``open`` → ``resolved`` too).
The detector resolves an incident when its condition clears and reopens it
when the condition returns within its window (detectors/store.py).

Every function is keyword-only, takes an explicit ``at`` (never the wall
clock) and does not commit; ``community_ids``, when given, restricts the call
to those communities (anything else is NotFound), which is how the API scopes
a user.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.errors import IllegalTransition, InvalidInput, NotFound
from workorders import store as orders
from workorders.sla import Milestone, SlaPolicy

STATUSES = ("open", "acknowledged", "resolved")
# (status, action) -> new status; anything else is refused.
TRANSITIONS: Mapping[tuple[str, str], str] = {
    ("open", "acknowledge"): "acknowledged",
    ("open", "resolve"): "resolved",
    ("acknowledged", "resolve"): "resolved",
}
SORTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "newest": (("opened_at", "desc"), ("id", "desc")),
    "oldest": (("opened_at", "asc"), ("id", "asc")),
    "priority": (("tier", "asc"), ("severity", "desc"), ("opened_at", "desc"), ("id", "desc")),
    "updated": (("updated_at", "desc"), ("id", "desc")),
    # The control room's order: unacknowledged first, then the most severe tier, then the longest waiting.
    "triage": (("status_rank", "asc"), ("tier", "asc"), ("opened_at", "asc"), ("id", "asc")),
}
# Sort keys that are expressions rather than columns.
_SORT_EXPRESSIONS = {"status_rank": "(CASE status WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END)"}
RESOLUTIONS = ("false_alarm", "confirmed", "duplicate")
FAMILIES = ("elevator", "water", "access", "elderly")
_TIME_KEYS = {"opened_at", "updated_at"}
MAX_PAGE = 500


class Alert(msgspec.Struct, kw_only=True):
    id: int
    dedup_key: str
    community_id: str
    scope: str
    scope_id: str
    building_id: str | None
    condition: str
    tier: int
    severity: int
    title: str
    device_ids: list[str]
    detail: dict[str, Any]
    work_order: bool
    status: str
    opened_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: str | None
    reopen_count: int
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    assignee: str | None
    assigned_at: dt.datetime | None
    false_alarm: bool
    resolution: str | None = None  # false_alarm, confirmed or duplicate (staff's finding)
    resolution_reason: str | None = None
    duplicate_of: int | None = None
    ack_due_at: dt.datetime | None = None  # from the community's SLA policy for the tier
    ack_overdue: bool | None = None  # only when read with ``now``


class TimelineEntry(msgspec.Struct, kw_only=True):
    at: dt.datetime
    kind: str
    actor: str
    tier: int | None
    severity: int | None
    detail: dict[str, Any]


class Comment(msgspec.Struct, kw_only=True):
    id: int
    incident_id: int
    at: dt.datetime
    actor: str
    body: str


class AlertDetail(msgspec.Struct, kw_only=True):
    alert: Alert
    timeline: list[TimelineEntry]
    comments: list[Comment]
    work_order_ids: list[int]


class AlertPage(msgspec.Struct, kw_only=True):
    items: list[Alert]
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last page


_COLUMNS = ", ".join(f for f in Alert.__struct_fields__ if f not in ("ack_due_at", "ack_overdue"))


# --- validation -----------------------------------------------------------------------


def _time(field: str, value: Any) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidInput(field, "must be a date-time with a time zone")
    return value


def _text(field: str, value: Any, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"must be at most {limit} characters")
    return value.strip()


def _id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput("incident_id", f"must be a positive integer, got {value!r}")
    return value


def _communities(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Collection) or not all(isinstance(c, str) for c in value):
        raise InvalidInput("community_ids", "must be a list of community ids")
    return list(value)


# --- reading ----------------------------------------------------------------------------


def _to_alert(
    conn: psycopg.Connection, row: Mapping[str, Any], now: dt.datetime | None,
    policies: dict[str, SlaPolicy] | None = None,
) -> Alert:
    alert = Alert(**{k: v for k, v in row.items() if k not in _SORT_EXPRESSIONS})
    policies = {} if policies is None else policies
    policy = policies.get(alert.community_id)
    if policy is None:
        policy = policies[alert.community_id] = orders.load_policy(conn, alert.community_id)
    limit = policy.tiers[alert.tier].for_milestone(Milestone.ACK)
    if limit is not None:
        alert.ack_due_at = alert.opened_at + limit
        if now is not None:
            # Acknowledgement (or resolution) stops the clock; durable: from stored times.
            stopped = alert.acknowledged_at or alert.resolved_at
            alert.ack_overdue = (stopped or now) > alert.ack_due_at
    return alert


def _fetch(
    conn: psycopg.Connection, incident_id: int, community_ids: Collection[str] | None, *, lock: bool = False
) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE id = %s" + (" FOR UPDATE" if lock else ""), (_id(incident_id),)
        ).fetchone()
    if row is None or (community_ids is not None and row["community_id"] not in _communities(community_ids)):
        raise NotFound(f"alert {incident_id} does not exist")
    return row


def get_alert(
    conn: psycopg.Connection,
    *,
    incident_id: int,
    community_ids: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> AlertDetail:
    """The alert with its full timeline, comments and work orders."""
    if now is not None:
        _time("now", now)
    row = _fetch(conn, incident_id, community_ids)
    timeline = [
        TimelineEntry(at=r[0], kind=r[1], actor=r[2], tier=r[3], severity=r[4], detail=r[5] or {})
        for r in conn.execute(
            "SELECT at, kind, actor, tier, severity, detail FROM incident_timeline WHERE incident_id = %s"
            " ORDER BY at, id", (incident_id,))
    ]
    comments = [
        Comment(id=r[0], incident_id=incident_id, at=r[1], actor=r[2], body=r[3])
        for r in conn.execute(
            "SELECT id, at, actor, body FROM incident_comments WHERE incident_id = %s ORDER BY at, id", (incident_id,))
    ]
    work_order_ids = [r[0] for r in conn.execute(
        "SELECT id FROM work_orders WHERE incident_id = %s ORDER BY id", (incident_id,))]
    return AlertDetail(alert=_to_alert(conn, row, now), timeline=timeline, comments=comments,
                       work_order_ids=work_order_ids)


def _encode_cursor(sort: str, values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps([sort, plain]).encode()).decode()


def _decode_cursor(sort: str, cursor: str) -> list[Any]:
    keys = SORTS[sort]
    try:
        cursor_sort, values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if cursor_sort != sort or len(values) != len(keys):
            raise ValueError
        return [dt.datetime.fromisoformat(v) if k in _TIME_KEYS else int(v) for (k, _), v in zip(keys, values)]
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("after", "is not a cursor returned by this list with the same sort") from None


def list_alerts(
    conn: psycopg.Connection,
    *,
    community_ids: Collection[str],
    building: str | None = None,
    tier: int | Collection[int] | None = None,
    status: str | Collection[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    family: str | None = None,
    search: str | None = None,
    device: str | None = None,
    sort: str = "newest",
    after: str | None = None,
    limit: int = 50,
    now: dt.datetime | None = None,
) -> AlertPage:
    """Alerts of ``community_ids`` filtered by building, tier(s), status(es) and
    opening time ``[since, until)``, device family (a device of the alert is of that
    type), one device, and ``search`` (words found in the title, condition, scope or
    device ids, or the name of the building); ``sort`` is newest, oldest, priority
    (tier, then severity), updated or triage (unacknowledged first, then tier, then
    the longest waiting); ``after`` is the previous page's ``next_cursor``."""
    ids = _communities(community_ids)
    if sort not in SORTS:
        raise InvalidInput("sort", f"must be one of {', '.join(SORTS)}, got {sort!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be from 1 to {MAX_PAGE}, got {limit!r}")
    where, params = ["community_id = ANY(%s)"], [ids]
    if building is not None:
        where.append("building_id = %s")
        params.append(_text("building", building))
    if tier is not None:
        tiers = [tier] if isinstance(tier, int) else list(tier)
        if not tiers or any(isinstance(t, bool) or t not in (1, 2, 3) for t in tiers):
            raise InvalidInput("tier", f"must be 1, 2 or 3 (or a list of them), got {tier!r}")
        where.append("tier = ANY(%s)")
        params.append(tiers)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        if not statuses or any(s not in STATUSES for s in statuses):
            raise InvalidInput("status", f"must be among {', '.join(STATUSES)}, got {status!r}")
        where.append("status = ANY(%s)")
        params.append(statuses)
    if since is not None:
        where.append("opened_at >= %s")
        params.append(_time("since", since))
    if until is not None:
        where.append("opened_at < %s")
        params.append(_time("until", until))
    if family is not None:
        if family not in FAMILIES:
            raise InvalidInput("family", f"must be one of {', '.join(FAMILIES)}, got {family!r}")
        where.append("EXISTS (SELECT 1 FROM devices d WHERE d.device_id = ANY(incidents.device_ids)"
                     " AND d.device_type = %s)")
        params.append(family)
    if device is not None:
        where.append("%s = ANY(device_ids)")
        params.append(_text("device", device))
    if search is not None:
        for word in _text("search", search).split()[:5]:
            like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(title ILIKE %s OR condition ILIKE %s OR scope_id ILIKE %s"
                         " OR array_to_string(device_ids, ' ') ILIKE %s OR building_id IN"
                         " (SELECT place_id FROM places p WHERE p.community_id = incidents.community_id"
                         " AND p.name ILIKE %s))")
            params.extend([like] * 5)
    if now is not None:
        _time("now", now)
    keys = SORTS[sort]
    if after is not None:
        if not isinstance(after, str):
            raise InvalidInput("after", "must be a cursor string")
        values = _decode_cursor(sort, after)
        # Keyset: rows strictly after the last one in the sort order.
        alternatives = []
        for i, (key, direction) in enumerate(keys):
            equal = [f"{_SORT_EXPRESSIONS.get(k, k)} = %s" for k, _ in keys[:i]]
            op = '>' if direction == 'asc' else '<'
            alternatives.append("(" + " AND ".join([*equal, f"{_SORT_EXPRESSIONS.get(key, key)} {op} %s"]) + ")")
            params.extend(values[: i + 1])
        where.append("(" + " OR ".join(alternatives) + ")")
    order_by = ", ".join(f"{_SORT_EXPRESSIONS.get(k, k)} {d.upper()}" for k, d in keys)
    extra = "".join(f", {expr} AS {name}" for name, expr in _SORT_EXPRESSIONS.items())
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS}{extra} FROM incidents WHERE {' AND '.join(where)} ORDER BY {order_by} LIMIT %s",
            (*params, limit + 1),
        ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    policies: dict[str, SlaPolicy] = {}
    items = [_to_alert(conn, r, now, policies) for r in rows]
    cursor = _encode_cursor(sort, [rows[-1][k] for k, _ in keys]) if more and rows else None
    return AlertPage(items=items, next_cursor=cursor)


# --- writing ----------------------------------------------------------------------------


def _timeline(
    conn: psycopg.Connection, row: Mapping[str, Any], *, at: dt.datetime, kind: str, actor: str,
    detail: Mapping[str, Any] | None = None, tier: int | None = None, severity: int | None = None,
) -> None:
    conn.execute(
        "INSERT INTO incident_timeline (incident_id, at, kind, actor, tier, severity, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (row["id"], at, kind, actor, row["tier"] if tier is None else tier,
         row["severity"] if severity is None else severity, Jsonb(dict(detail or {}))),
    )


def _check_time(row: Mapping[str, Any], at: dt.datetime) -> None:
    _time("at", at)
    if at < row["opened_at"]:
        raise InvalidInput("at", f"{at.isoformat()} is before the alert opened ({row['opened_at'].isoformat()})")


def _move(row: Mapping[str, Any], action: str) -> str:
    target = TRANSITIONS.get((row["status"], action))
    if target is None:
        raise IllegalTransition(f"cannot {action} alert {row['id']}: it is {row['status']}",
                                state=row["status"], action=action)
    return target


def acknowledge(
    conn: psycopg.Connection, *, incident_id: int, actor: str, at: dt.datetime,
    community_ids: Collection[str] | None = None,
) -> Alert:
    """Somebody owns the alert now: reminders and escalation stop (on-call reads the status)."""
    actor = _text("actor", actor)
    row = _fetch(conn, incident_id, community_ids, lock=True)
    _check_time(row, at)
    status = _move(row, "acknowledge")
    conn.execute(
        "UPDATE incidents SET status = %s, acknowledged_at = %s, acknowledged_by = %s,"
        " updated_at = greatest(updated_at, %s) WHERE id = %s",
        (status, at, actor, at, row["id"]),
    )
    _timeline(conn, row, at=at, kind="acknowledged", actor=actor)
    return _to_alert(conn, _fetch(conn, incident_id, None), None)


def level1_needs(tier: int, *, resolution: str | None, reason: str | None) -> None:
    """A Level 1 alert (life safety) is closed only with what staff found and why: an SOS
    resolved in one click leaves nobody able to tell a false alarm from a handled emergency."""
    if tier != 1:
        return
    if resolution is None:
        raise InvalidInput("resolution", "a Level 1 alert is resolved as false_alarm, confirmed or duplicate")
    if reason is None:
        raise InvalidInput("reason", "a Level 1 alert needs the reason for its resolution")


def resolve(
    conn: psycopg.Connection, *, incident_id: int, actor: str, at: dt.datetime, note: str | None = None,
    false_alarm: bool = False, resolution: str | None = None, reason: str | None = None,
    duplicate_of: int | None = None, community_ids: Collection[str] | None = None,
) -> Alert:
    """Staff close the alert with what they found: ``resolution`` is ``confirmed``
    (a real event, handled), ``false_alarm`` (counted by the false-alarm KPI) or
    ``duplicate`` (of ``duplicate_of``, another alert of the community), with a
    ``reason``. A Level 1 alert cannot be closed without both, whatever the path
    (control room, API, on-call link): this is the one place that rule lives
    (``level1_needs``). ``false_alarm=True`` is the older
    spelling of ``resolution="false_alarm"``. Its work orders carry on through
    their own loop; if the detector still sees the condition, it opens the
    incident again."""
    actor = _text("actor", actor)
    if note is not None:
        note = _text("note", note, limit=4000)
    if isinstance(reason, str) and not reason.strip():
        reason = None  # blank is no reason (a Level 1 says so by name below)
    if reason is not None:
        reason = _text("reason", reason, limit=4000).strip()
    if not isinstance(false_alarm, bool):
        raise InvalidInput("false_alarm", f"must be true or false, got {false_alarm!r}")
    if resolution is None and false_alarm:
        resolution = "false_alarm"
    if resolution is not None and resolution not in RESOLUTIONS:
        raise InvalidInput("resolution", f"must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
    false_alarm = resolution == "false_alarm"
    row = _fetch(conn, incident_id, community_ids, lock=True)
    _check_time(row, at)
    status = _move(row, "resolve")  # an alert already resolved says so before anything is asked of it
    level1_needs(row["tier"], resolution=resolution, reason=reason)
    if resolution == "duplicate":
        if duplicate_of is None:
            raise InvalidInput("duplicate_of", "a duplicate names the alert it repeats")
        original = conn.execute("SELECT community_id FROM incidents WHERE id = %s", (_id(duplicate_of),)).fetchone()
        if original is None or original[0] != row["community_id"] or duplicate_of == row["id"]:
            raise InvalidInput("duplicate_of", f"no other alert {duplicate_of} in community {row['community_id']}")
    elif duplicate_of is not None:
        raise InvalidInput("duplicate_of", "only a duplicate names another alert")
    conn.execute(
        "UPDATE incidents SET status = %s, resolved_at = %s, resolved_by = %s, false_alarm = %s, resolution = %s,"
        " resolution_reason = %s, duplicate_of = %s, updated_at = greatest(updated_at, %s) WHERE id = %s",
        (status, at, actor, false_alarm, resolution, reason, duplicate_of, at, row["id"]),
    )
    detail: dict[str, Any] = {"note": note} if note else {}
    if resolution is not None:
        detail["resolution"] = resolution
    if reason is not None:
        detail["reason"] = reason
    if duplicate_of is not None:
        detail["duplicate_of"] = duplicate_of
    if false_alarm:
        detail["false_alarm"] = True
    _timeline(conn, row, at=at, kind="resolved", actor=actor, detail=detail)
    return _to_alert(conn, _fetch(conn, incident_id, None), None)


def comment(
    conn: psycopg.Connection, *, incident_id: int, actor: str, at: dt.datetime, body: str,
    community_ids: Collection[str] | None = None,
) -> Comment:
    """A comment, allowed in any status (notes after resolution are common)."""
    actor = _text("actor", actor)
    body = _text("body", body, limit=4000)
    row = _fetch(conn, incident_id, community_ids)
    _check_time(row, at)
    comment_id = conn.execute(
        "INSERT INTO incident_comments (incident_id, at, actor, body) VALUES (%s, %s, %s, %s) RETURNING id",
        (row["id"], at, actor, body),
    ).fetchone()[0]
    _timeline(conn, row, at=at, kind="commented", actor=actor, detail={"comment_id": comment_id})
    return Comment(id=comment_id, incident_id=row["id"], at=at, actor=actor, body=body)


def assign(
    conn: psycopg.Connection, *, incident_id: int, actor: str, at: dt.datetime, assignee: str,
    community_ids: Collection[str] | None = None,
) -> Alert:
    """Make a staff member of the alert's community its owner (not resolved alerts)."""
    actor = _text("actor", actor)
    assignee = _text("assignee", assignee)
    row = _fetch(conn, incident_id, community_ids, lock=True)
    _check_time(row, at)
    if row["status"] == "resolved":
        raise IllegalTransition(f"cannot assign alert {row['id']}: it is resolved", state="resolved", action="assign")
    staff = conn.execute("SELECT community_id, active FROM staff WHERE staff_id = %s", (assignee,)).fetchone()
    if staff is None or staff[0] != row["community_id"]:
        raise InvalidInput("assignee", f"no staff member {assignee!r} in community {row['community_id']}")
    if not staff[1]:
        raise InvalidInput("assignee", f"staff member {assignee!r} is not active")
    if row["assignee"] == assignee:
        raise InvalidInput("assignee", f"alert {row['id']} is already assigned to {assignee}")
    conn.execute(
        "UPDATE incidents SET assignee = %s, assigned_at = %s, updated_at = greatest(updated_at, %s) WHERE id = %s",
        (assignee, at, at, row["id"]),
    )
    _timeline(conn, row, at=at, kind="assigned", actor=actor, detail={"assignee": assignee, "previous": row["assignee"]})
    return _to_alert(conn, _fetch(conn, incident_id, None), None)


def escalate(
    conn: psycopg.Connection, *, incident_id: int, actor: str, at: dt.datetime, tier: int | None = None,
    severity: int | None = None, reason: str | None = None, community_ids: Collection[str] | None = None,
) -> Alert:
    """Staff raise the tier (a smaller number: 3 → 2 → 1) and/or the severity of an
    unresolved alert. Lowering either is refused. Open work orders of the
    incident take the new tier and its tighter SLA deadlines."""
    actor = _text("actor", actor)
    reason = _text("reason", reason, limit=4000) if reason is not None else None
    row = _fetch(conn, incident_id, community_ids, lock=True)
    _check_time(row, at)
    if row["status"] == "resolved":
        raise IllegalTransition(f"cannot escalate alert {row['id']}: it is resolved", state="resolved",
                                action="escalate")
    if tier is None and severity is None:
        raise InvalidInput("tier", "give a higher tier (smaller number) or a higher severity")
    new_tier, new_severity = row["tier"], row["severity"]
    if tier is not None:
        if isinstance(tier, bool) or tier not in (1, 2, 3):
            raise InvalidInput("tier", f"must be 1, 2 or 3, got {tier!r}")
        if tier >= row["tier"]:
            raise InvalidInput("tier", f"escalation raises the tier: the alert is Level {row['tier']}, "
                                       f"so only a smaller level number is allowed, got {tier}")
        new_tier = tier
    if severity is not None:
        if isinstance(severity, bool) or not isinstance(severity, int) or severity <= row["severity"]:
            raise InvalidInput("severity", f"must be a whole number above the current {row['severity']}, "
                                           f"got {severity!r}")
        new_severity = severity
    conn.execute(
        "UPDATE incidents SET tier = %s, severity = %s, updated_at = greatest(updated_at, %s) WHERE id = %s",
        (new_tier, new_severity, at, row["id"]),
    )
    _timeline(conn, row, at=at, kind="escalated", actor=actor, tier=new_tier, severity=new_severity,
              detail={"from_tier": row["tier"], "from_severity": row["severity"], "reason": reason, "by": "staff"})
    if new_tier != row["tier"]:
        orders.raise_tier(conn, incident_id=row["id"], tier=new_tier, at=at, actor=actor)
    return _to_alert(conn, _fetch(conn, incident_id, None), None)
