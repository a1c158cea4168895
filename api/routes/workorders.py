"""Work orders (接单 → 派单 → 跟进 → 验收 → 回访) over `workorders.store`, and community KPIs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api import audit, tenancy
from api.clock import Now
from api.body import Body
from api.deps import Conn, Reader, allow, can, visible
from api.errors import ERROR_RESPONSES, Conflict, ErrorResponse, Forbidden
from api.params import IDENT, IdCursor, Limit, RowId, Since, Until, time_range
from api.privacy import Scrubber, scrubber_for
from api.store import people
from api.security import Permission
from api.users import Caller
from workorders import kpis as kpi_store
from workorders import store
from workorders.machine import Action, OrderState

router = APIRouter(tags=["work orders"], responses={
    **ERROR_RESPONSES, 409: {"model": ErrorResponse, "description": "Not allowed in the order's current state"}})
Manager = Annotated[Caller, Depends(allow(Permission.WORKORDER_MANAGE))]
# Field steps need workorder.work (technicians, supervisors); everything else needs workorder.manage. Having
# one does not give the other: the control room dispatches and verifies, it does not arrive on site.
FIELD_ACTIONS = frozenset({Action.ACCEPT, Action.ARRIVE, Action.COMPLETE})


def action_permission(action: Action) -> Permission:
    """The one permission a work-order action needs (the console reads it through /ui/config.json)."""
    return Permission.WORKORDER_WORK if action in FIELD_ACTIONS else Permission.WORKORDER_MANAGE


class WorkOrderCreate(Body):
    community_id: str = Field(pattern=IDENT)
    title: str = Field(min_length=1, max_length=300)
    source: Literal["resident_call", "complaint", "staff"] = "staff"
    tier: Literal[1, 2, 3] | None = None
    complaint_grade: Literal["A", "B", "C"] | None = None
    simple: bool = False
    building_id: str | None = Field(default=None, pattern=IDENT)
    device_id: str | None = Field(default=None, pattern=IDENT)
    condition: str | None = Field(default=None, max_length=100)
    incident_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    description: str = Field(default="", max_length=4000)
    team_kind: Literal["engineering", "security", "cleaning", "elderly_care", "customer_service",
                       "management"] | None = None
    auto_dispatch: bool = True


class WorkOrderAction(Body):
    action: Action
    assignee: str | None = Field(default=None, max_length=200)
    rating: int | None = Field(default=None, ge=1, le=5, description="return_visit: the resident's rating")
    reason: str | None = Field(default=None, max_length=4000)
    note: str | None = Field(default=None, max_length=4000)


class NoteBody(Body):
    text: str = Field(min_length=1, max_length=4000)


class WorkOrderPublic(BaseModel):
    id: int
    community_id: str
    building_id: str | None
    device_id: str | None
    device_family: str | None
    condition: str | None
    incident_id: int | None
    source: str
    tier: int | None
    complaint_grade: str | None
    simple: bool
    title: str
    description: str
    reporter: dict[str, Any] | None
    team_kind: str
    team_id: str | None
    assignee: str | None
    state: OrderState
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    dispatched_at: dt.datetime | None
    accepted_at: dt.datetime | None
    on_site_at: dt.datetime | None
    completed_at: dt.datetime | None
    verified_at: dt.datetime | None
    return_visit_at: dt.datetime | None
    closed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    ack_due_at: dt.datetime | None
    respond_due_at: dt.datetime | None
    complete_due_at: dt.datetime | None
    rework_count: int
    rating: int | None
    return_visit_note: str | None
    repeat_of: int | None
    condition_cleared_at: dt.datetime | None
    clocks: list[dict[str, Any]] | None = None


class OrderEventPublic(BaseModel):
    at: dt.datetime
    kind: str
    actor: str
    from_state: str | None
    to_state: str | None
    detail: dict[str, Any]


class WorkOrderDetailPublic(BaseModel):
    order: WorkOrderPublic
    timeline: list[OrderEventPublic]


class WorkOrderListPublic(BaseModel):
    data: list[WorkOrderPublic]
    next_cursor: int | None


class KpiPublic(BaseModel):
    value: float | None
    unit: str
    definition: str
    threshold: float
    warn_when: str
    warning: bool
    sample: int


class KpiReportPublic(BaseModel):
    community_id: str
    start: dt.datetime
    end: dt.datetime
    now: dt.datetime
    kpis: dict[str, KpiPublic]


def _order(value: store.WorkOrder, scrub: Scrubber | None) -> WorkOrderPublic:
    public = WorkOrderPublic(**msgspec.to_builtins(value, builtin_types=(dt.datetime,)))
    if scrub is not None:  # free text as written only for roles with resident.pii (api/privacy.py)
        public.title = scrub.text(public.title) or ""
        public.description = scrub.text(public.description) or ""
        public.return_visit_note = scrub.text(public.return_visit_note)
        public.reporter = scrub.reporter(public.reporter)
    return public


def _event(value: store.OrderEvent, scrub: Scrubber | None) -> OrderEventPublic:
    public = OrderEventPublic(**msgspec.structs.asdict(value))
    if scrub is not None:
        public.detail = scrub.detail(public.detail)
    return public


def _get(conn: Conn, caller: Caller, order_id: int, now: dt.datetime | None = None) -> store.WorkOrder:
    return store.get_order(conn, order_id=order_id, community_ids=caller.communities, now=now)


@router.get("/work-orders", response_model=WorkOrderListPublic)
def list_orders(caller: Reader, conn: Conn, limit: Limit = 50, cursor: IdCursor = None,
                community: Annotated[str | None, Query(pattern=IDENT)] = None,
                state: OrderState | None = None,
                assignee: Annotated[str | None, Query(max_length=200)] = None,
                open_only: bool = False) -> WorkOrderListPublic:
    """Newest first; ``cursor`` is the last id of the previous page."""
    communities = visible(caller, community)
    rows = store.list_orders(conn, community_ids=communities, state=state.value if state else None,
                             assignee=assignee, open_only=open_only, after=cursor, limit=limit)
    scrub = scrubber_for(conn, caller, communities)
    return WorkOrderListPublic(data=[_order(o, scrub) for o in rows],
                               next_cursor=rows[-1].id if len(rows) == limit else None)


@router.post("/work-orders", response_model=WorkOrderPublic, status_code=201)
def create_order(now: Now, body: WorkOrderCreate, caller: Manager, conn: Conn) -> WorkOrderPublic:
    """接单: create (and by default auto-dispatch) an order."""
    tenancy.require(caller, body.community_id, field="body.community_id")
    if body.incident_id is not None:
        from alerts import lifecycle

        lifecycle.get_alert(conn, incident_id=body.incident_id, community_ids=[body.community_id])
    order = store.create_order(conn, actor=people.actor_for(conn, user_id=caller.user_id, username=caller.username), at=now, **body.model_dump())
    audit.record(conn, caller=caller, action="work_order.create", community_id=order.community_id,
                 target_type="work_order", target_id=order.id, detail={"source": body.source})
    return _order(order, scrubber_for(conn, caller, [order.community_id]))


@router.get("/work-orders/{order_id}", response_model=WorkOrderDetailPublic)
def get_order(now: Now, order_id: RowId, caller: Reader, conn: Conn) -> WorkOrderDetailPublic:
    order = _get(conn, caller, order_id, now=now)
    events = store.timeline(conn, order_id=order.id)
    scrub = scrubber_for(conn, caller, [order.community_id])
    return WorkOrderDetailPublic(order=_order(order, scrub), timeline=[_event(e, scrub) for e in events])


@router.post("/work-orders/{order_id}/actions", response_model=WorkOrderPublic)
def act(now: Now, order_id: RowId, body: WorkOrderAction, conn: Conn,
        caller: Annotated[Caller, Depends(allow(Permission.READ))]) -> WorkOrderPublic:
    """One step of the loop: dispatch, reassign, accept, arrive, complete, verify, reject, return_visit, close,
    cancel. Technicians take the field steps (accept, arrive, complete); the others need workorder.manage."""
    needed = action_permission(body.action)
    if not can(caller, needed):
        raise Forbidden(f"the {caller.role} role may not {body.action.value} a work order (needs {needed})")
    current = _get(conn, caller, order_id)
    if body.action in FIELD_ACTIONS and not can(caller, Permission.WORKORDER_MANAGE):
        _own_order_only(conn, caller, current)
    order = store.act(conn, order_id=current.id, action=body.action.value, at=now, actor=people.actor_for(conn, user_id=caller.user_id, username=caller.username),
                      assignee=body.assignee, rating=body.rating, reason=body.reason, note=body.note)
    audit.record(conn, caller=caller, action=f"work_order.{body.action.value}", community_id=order.community_id,
                 target_type="work_order", target_id=order.id,
                 detail={"assignee": body.assignee, "rating": body.rating, "from": current.state.value,
                         "to": order.state.value})
    return _order(order, scrubber_for(conn, caller, [order.community_id]))


def _own_order_only(conn: Conn, caller: Caller, order: store.WorkOrder) -> None:
    """A field step is the assignee's: a login linked to another person may not accept, arrive at or complete
    somebody else's order (it stayed theirs, and "accepted" and the response time would credit the wrong
    person). Whoever may manage orders reassigns it first. A login linked to nobody is nobody's hands on site:
    it may take no field step (its "accepted" would credit no person and it could take anybody's order)."""
    mine = people.staff_of_user(conn, user_id=caller.user_id)
    if mine is None:
        raise Conflict(f"login {caller.username!r} is linked to no staff member; an admin links it to its person "
                       "(PUT /users/{id}/staff) before it takes field steps", code="not_linked", field="body.action")
    if order.assignee is None or order.assignee == mine:
        return
    row = conn.execute("SELECT name FROM staff WHERE staff_id = %s", (order.assignee,)).fetchone()
    raise Conflict(f"work order {order.id} is assigned to {row[0] if row else order.assignee}; "
                   "it must be reassigned before somebody else works it", code="not_assignee", field="body.action")


@router.post("/work-orders/{order_id}/notes", status_code=204)
def add_note(now: Now, order_id: RowId, body: NoteBody, conn: Conn,
             caller: Annotated[Caller, Depends(allow(Permission.READ))]) -> None:
    """跟进: a progress note on the timeline, by the staff who work the order (workorder.work)."""
    if not can(caller, Permission.WORKORDER_WORK):
        raise Forbidden(f"the {caller.role} role may not add notes to work orders (needs {Permission.WORKORDER_WORK})")
    order = _get(conn, caller, order_id)
    store.note(conn, order_id=order.id, at=now, actor=people.actor_for(conn, user_id=caller.user_id, username=caller.username), text=body.text)
    audit.record(conn, caller=caller, action="work_order.note", community_id=order.community_id,
                 target_type="work_order", target_id=order.id)


@router.get("/kpis", response_model=KpiReportPublic)
def kpis(now: Now, caller: Reader, conn: Conn, community: Annotated[str, Query(pattern=IDENT)],
         since: Since = None, until: Until = None) -> KpiReportPublic:
    """Closed-loop KPIs of one community for orders created in ``[from, to)`` (default: the last 30 days)."""
    start, end = time_range(since, until, default_span=dt.timedelta(days=30), now=now)
    assert start is not None and end is not None
    report = kpi_store.compute_kpis(conn, community_id=visible(caller, community)[0], start=start, end=end,
                                    now=now)
    return KpiReportPublic(**report)
