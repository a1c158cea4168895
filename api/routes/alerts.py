"""Alerts (incidents): list, detail with timeline and recent telemetry, and staff actions.

Thin handlers over `alerts.lifecycle` (the closed-loop part); its errors map to
the API's shape in `api.routes.closedloop_errors`. Actions are stamped with
the server's clock here, at the edge.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from alerts import lifecycle
from alerts.errors import IllegalTransition
from alerts.errors import NotFound as AlertNotFound
from api import audit
from api.clock import Now
from api.body import Body
from api.deps import Conn, Reader, allow, visible
from api.errors import ERROR_RESPONSES, ErrorResponse
from api.params import IDENT, Cursor, Limit, RowId, Since, Until, time_range
from api.privacy import Scrubber, scrubber_for
from api.routes.residents import ResidentPublic, present
from api.routes.events import EventPublic
from api.security import Permission
from api.store import people
from api.store import residents as resident_store
from api.store import telemetry
from api.users import Caller
from oncall import actions as oncall_actions

router = APIRouter(prefix="/alerts", tags=["alerts"], responses={
    **ERROR_RESPONSES, 409: {"model": ErrorResponse, "description": "Not allowed in the alert's current status"}})
Actor = Annotated[Caller, Depends(allow(Permission.ALERT_ACT))]
RECENT_EVENTS = 20


class AlertDevice(BaseModel):
    device_id: str
    name: str | None
    device_type: str | None
    unit_id: str | None


class AlertPublic(BaseModel):
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
    status: Literal["open", "acknowledged", "resolved"]
    opened_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: str | None
    reopen_count: int
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    assignee: str | None
    assigned_at: dt.datetime | None
    resolution: Literal["false_alarm", "confirmed", "duplicate"] | None = None
    resolution_reason: str | None = None
    duplicate_of: int | None = None
    ack_due_at: dt.datetime | None = None
    ack_overdue: bool | None = None
    devices: list[AlertDevice] = Field(default_factory=list, description="The alert's devices by name, with their "
                                       "unit (what a person reads; device_ids stays the stable list)")


class AlertListPublic(BaseModel):
    data: list[AlertPublic]
    next_cursor: str | None


MAX_PAGES = 200


class TimelineEntryPublic(BaseModel):
    at: dt.datetime
    kind: str
    actor: str
    tier: int | None
    severity: int | None
    detail: dict[str, Any]


class CommentPublic(BaseModel):
    id: int
    incident_id: int
    at: dt.datetime
    actor: str
    body: str


class PagePublic(BaseModel):
    """One notification on-call sent (or is sending) about the alert: to whom, how, and whether it arrived.
    The address is not shown (it is the person's phone or e-mail)."""
    at: dt.datetime = Field(description="When the step or reminder decided to notify")
    kind: Literal["step", "reminder", "ack_renotify"]
    step: int = Field(description="The escalation policy's step, from 1")
    round: int
    staff_id: str
    channel: Literal["webhook", "email", "push"]
    status: Literal["pending", "sent", "failed"]
    sent_at: dt.datetime | None
    attempts: int


class AlertDetailPublic(BaseModel):
    alert: AlertPublic
    timeline: list[TimelineEntryPublic]
    comments: list[CommentPublic]
    work_order_ids: list[int]
    pages: list[PagePublic] = Field(default_factory=list, description=f"Who on-call notified, oldest first "
                                    f"(at most {MAX_PAGES})")
    recent_events: list[EventPublic] = Field(description=f"The latest {RECENT_EVENTS} events of the alert's devices")
    residents: list[ResidentPublic] = Field(description="Residents linked to the alert's devices (masked by role)")


class ResolveBody(Body):
    resolution: Literal["false_alarm", "confirmed", "duplicate"] | None = Field(
        default=None, description="What staff found; required for Level 1 (false alarms feed the false-alarm KPI)")
    reason: str | None = Field(default=None, max_length=4000, description="Why; required for Level 1")
    duplicate_of: int | None = Field(default=None, ge=1, le=2**63 - 1, description="With resolution=duplicate")
    note: str | None = Field(default=None, max_length=4000)
    false_alarm: bool | None = Field(default=None, description="Older spelling of resolution=false_alarm")


class BulkAcknowledgeBody(Body):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=200)


class BulkOutcome(BaseModel):
    id: int
    ok: bool
    status: str | None = None
    error: str | None = Field(default=None, description="not_found, illegal_transition")
    message: str | None = None


class BulkAcknowledged(BaseModel):
    results: list[BulkOutcome]
    acknowledged: int


class CommentBody(Body):
    body: str = Field(min_length=1, max_length=4000)


class AssignBody(Body):
    assignee: str = Field(min_length=1, max_length=200, description="A staff_id of the alert's community")


class EscalateBody(Body):
    tier: Literal[1, 2] | None = Field(default=None, description="A more severe tier (smaller number)")
    severity: int | None = Field(default=None, ge=1, le=1_000_000)
    reason: str | None = Field(default=None, max_length=4000)


def _devices_of(conn: Conn, alerts: list[lifecycle.Alert]) -> dict[tuple[str, str], AlertDevice]:
    """Names and units of the alerts' devices, each looked up in its alert's community only."""
    communities = sorted({a.community_id for a in alerts})
    ids = sorted({d for a in alerts for d in a.device_ids})
    if not ids:
        return {}
    rows = conn.execute("SELECT community_id, device_id, name, device_type, unit_id FROM devices"
                        " WHERE community_id = ANY(%s) AND device_id = ANY(%s)", (communities, ids)).fetchall()
    return {(r[0], r[1]): AlertDevice(device_id=r[1], name=r[2], device_type=r[3], unit_id=r[4]) for r in rows}


def _alert(value: lifecycle.Alert, scrub: Scrubber | None = None,
           devices: dict[tuple[str, str], AlertDevice] | None = None) -> AlertPublic:
    public = AlertPublic(**msgspec.structs.asdict(value))
    known = devices or {}
    public.devices = [known.get((value.community_id, d)) or AlertDevice(device_id=d, name=None, device_type=None,
                                                                          unit_id=None) for d in value.device_ids]
    if scrub is not None:  # free text as written only for roles with resident.pii (api/privacy.py)
        public.resolution_reason = scrub.text(public.resolution_reason)
    return public


def _alert_for(conn: Conn, caller: Caller, value: lifecycle.Alert) -> AlertPublic:
    return _alert(value, scrubber_for(conn, caller, [value.community_id]), _devices_of(conn, [value]))


@router.get("", response_model=AlertListPublic)
def list_alerts(
    now: Now, caller: Reader, conn: Conn, limit: Limit = 50, cursor: Cursor = None,
    community: Annotated[str | None, Query(pattern=IDENT)] = None,
    building: Annotated[str | None, Query(pattern=IDENT)] = None,
    tier: Annotated[list[Annotated[int, Field(ge=1, le=3)]] | None, Query(description="1, 2 or 3; repeat for several tiers")] = None,
    status: Annotated[list[Literal["open", "acknowledged", "resolved"]] | None, Query()] = None,
    since: Since = None, until: Until = None,
    family: Annotated[Literal["elevator", "water", "access", "elderly"] | None,
                      Query(description="A device of the alert is of this family")] = None,
    device: Annotated[str | None, Query(pattern=IDENT)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$",
                                   description="Words in the title, condition, devices or building name")] = None,
    sort: Literal["newest", "oldest", "priority", "updated", "triage"] = "newest",
) -> AlertListPublic:
    """Alerts of the caller's communities; ``from``/``to`` filter on the opening time. ``sort=triage`` is the
    control room's order: unacknowledged first, then tier, then the longest waiting."""
    start, end = time_range(since, until, default_span=None)
    page = lifecycle.list_alerts(conn, community_ids=visible(caller, community), building=building,
                                 tier=list(tier) if tier else None, status=list(status) if status else None,
                                 since=start, until=end, family=family, device=device, search=q, sort=sort,
                                 after=cursor, limit=limit, now=now)
    scrub = scrubber_for(conn, caller, {a.community_id for a in page.items})
    devices = _devices_of(conn, page.items)
    return AlertListPublic(data=[_alert(a, scrub, devices) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{alert_id}", response_model=AlertDetailPublic)
def get_alert(now: Now, alert_id: RowId, caller: Reader, conn: Conn) -> AlertDetailPublic:
    detail = lifecycle.get_alert(conn, incident_id=alert_id, community_ids=caller.communities, now=now)
    alert = detail.alert
    events: list[EventPublic] = []
    if alert.device_ids:
        for device_id in alert.device_ids[:10]:
            rows = telemetry.list_events(conn, communities=[alert.community_id], device_id=device_id,
                                         limit=RECENT_EVENTS)
            events.extend(EventPublic(**r.__dict__) for r in rows)
        events = sorted(events, key=lambda e: e.time, reverse=True)[:RECENT_EVENTS]
    residents = [present(caller, r) for r in resident_store.residents_for_devices(conn, device_ids=alert.device_ids)
                 if r.community_id == alert.community_id]
    scrub = scrubber_for(conn, caller, [alert.community_id])  # free text as written only with resident.pii
    timeline = [TimelineEntryPublic(**msgspec.structs.asdict(t)) for t in detail.timeline]
    comments = [CommentPublic(**msgspec.structs.asdict(c)) for c in detail.comments]
    if scrub is not None:
        for entry in timeline:
            entry.detail = scrub.detail(entry.detail)
        for made in comments:
            made.body = scrub.text(made.body) or ""
    return AlertDetailPublic(
        alert=_alert(alert, scrub, _devices_of(conn, [alert])),
        timeline=timeline,
        comments=comments,
        work_order_ids=detail.work_order_ids, recent_events=events, residents=residents,
        pages=_pages(conn, alert.id),
    )


def _pages(conn: Conn, incident_id: int) -> list[PagePublic]:
    rows = conn.execute(
        "SELECT o.created_at, p.kind, p.step + 1, p.round, o.staff_id, o.channel, o.status, o.sent_at, o.attempts"
        " FROM oncall_outbox o JOIN oncall_pending p USING (pending_id) WHERE o.incident_id = %s"
        " ORDER BY o.created_at, o.outbox_id LIMIT %s", (incident_id, MAX_PAGES)).fetchall()
    return [PagePublic(at=r[0], kind=r[1], step=r[2], round=r[3], staff_id=r[4], channel=r[5], status=r[6],
                       sent_at=r[7], attempts=r[8]) for r in rows]


def _audit(conn: Conn, caller: Caller, action: str, alert: lifecycle.Alert, detail: dict[str, Any] | None = None) -> None:
    audit.record(conn, caller=caller, action=f"alert.{action}", community_id=alert.community_id,
                 target_type="alert", target_id=alert.id, detail=detail)


def actor_of(conn: Conn, caller: Caller) -> str:
    return people.actor_for(conn, user_id=caller.user_id, username=caller.username)


def _acknowledge(conn: Conn, caller: Caller, alert_id: int, now: dt.datetime) -> lifecycle.Alert:
    actor = actor_of(conn, caller)
    alert = lifecycle.acknowledge(conn, incident_id=alert_id, actor=actor, at=now, community_ids=caller.communities)
    # Stop the on-call chain in this transaction rather than when its next step comes due.
    oncall_actions.note_acknowledged(conn, incident_id=alert.id, staff_id=actor, at=now, via="control room")
    _audit(conn, caller, "acknowledge", alert)
    return alert


@router.post("/acknowledge", response_model=BulkAcknowledged)
def acknowledge_many(now: Now, body: BulkAcknowledgeBody, caller: Actor, conn: Conn) -> BulkAcknowledged:
    """Acknowledge several alerts at once; each succeeds or fails on its own (one audit entry per success)."""
    results: list[BulkOutcome] = []
    for alert_id in dict.fromkeys(body.ids):
        try:
            with conn.transaction():
                alert = _acknowledge(conn, caller, alert_id, now)
        except AlertNotFound as exc:
            results.append(BulkOutcome(id=alert_id, ok=False, error="not_found", message=str(exc)))
        except IllegalTransition as exc:
            results.append(BulkOutcome(id=alert_id, ok=False, error="illegal_transition", message=str(exc)))
        else:
            results.append(BulkOutcome(id=alert_id, ok=True, status=alert.status))
    return BulkAcknowledged(results=results, acknowledged=sum(r.ok for r in results))


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic)
def acknowledge(now: Now, alert_id: RowId, caller: Actor, conn: Conn) -> AlertPublic:
    """Take ownership: reminders and escalation stop."""
    return _alert_for(conn, caller, _acknowledge(conn, caller, alert_id, now))


@router.post("/{alert_id}/resolve", response_model=AlertPublic)
def resolve(now: Now, alert_id: RowId, body: ResolveBody, caller: Actor, conn: Conn) -> AlertPublic:
    """Close the alert with what was found: ``confirmed``, ``false_alarm`` or ``duplicate`` (of
    ``duplicate_of``). A Level 1 alert needs a resolution and a reason."""
    actor = actor_of(conn, caller)
    alert = lifecycle.resolve(conn, incident_id=alert_id, actor=actor, at=now, note=body.note,
                              false_alarm=bool(body.false_alarm), resolution=body.resolution, reason=body.reason,
                              duplicate_of=body.duplicate_of,
                              community_ids=caller.communities)
    oncall_actions.note_resolved(conn, incident_id=alert.id, staff_id=actor, at=now, via="control room")
    _audit(conn, caller, "resolve", alert, {"note": bool(body.note), "resolution": body.resolution})
    return _alert_for(conn, caller, alert)


@router.post("/{alert_id}/comments", response_model=CommentPublic, status_code=201)
def comment(now: Now, alert_id: RowId, body: CommentBody, caller: Actor, conn: Conn) -> CommentPublic:
    made = lifecycle.comment(conn, incident_id=alert_id, actor=actor_of(conn, caller), at=now, body=body.body,
                             community_ids=caller.communities)
    alert = lifecycle.get_alert(conn, incident_id=alert_id, community_ids=caller.communities).alert
    _audit(conn, caller, "comment", alert, {"comment_id": made.id})
    public = CommentPublic(**msgspec.structs.asdict(made))
    scrub = scrubber_for(conn, caller, [alert.community_id])
    if scrub is not None:
        public.body = scrub.text(public.body) or ""
    return public


@router.post("/{alert_id}/assign", response_model=AlertPublic)
def assign(now: Now, alert_id: RowId, body: AssignBody, caller: Actor, conn: Conn) -> AlertPublic:
    alert = lifecycle.assign(conn, incident_id=alert_id, actor=actor_of(conn, caller), at=now, assignee=body.assignee,
                             community_ids=caller.communities)
    _audit(conn, caller, "assign", alert, {"assignee": body.assignee})
    return _alert_for(conn, caller, alert)


@router.post("/{alert_id}/escalate", response_model=AlertPublic)
def escalate(now: Now, alert_id: RowId, body: EscalateBody, caller: Actor, conn: Conn) -> AlertPublic:
    """Raise the tier (3 → 2 → 1) and/or the severity of an unresolved alert."""
    alert = lifecycle.escalate(conn, incident_id=alert_id, actor=actor_of(conn, caller), at=now, tier=body.tier,
                               severity=body.severity, reason=body.reason, community_ids=caller.communities)
    _audit(conn, caller, "escalate", alert, {"tier": body.tier, "severity": body.severity})
    return _alert_for(conn, caller, alert)
