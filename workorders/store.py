"""Work orders in PostgreSQL: create, dispatch, transitions, return visit, overdue.

Every function takes an open psycopg connection and an explicit time ``at``
(or ``now``); none reads the wall clock. None commits: the caller owns the
transaction (the API wraps a request in ``conn.transaction()``, the detector
runtime calls the alert hook inside its own). Each change is appended to
``work_order_events`` with its actor, so the timeline is complete and SLA
clocks are recomputed from stored times after any restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workorders import dispatch as dispatching
from workorders import sla
from workorders.errors import IllegalTransition, InvalidInput, NotFound
from workorders.why import Why
from workorders.why import render as render_why
from workorders.machine import LOAD_STATES, TERMINAL_STATES, Action, OrderSnapshot, OrderState, transition as apply

SOURCES = ("detection", "alert_follow_up", "resident_call", "complaint", "staff")
SYSTEM_ACTOR = "system"
DETECTOR_ACTOR = "detector"
MAX_PAGE = 500


class WorkOrder(msgspec.Struct, kw_only=True):
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
    clocks: list[sla.Clock] | None = None  # filled when read with ``now``

    @property
    def repeat_failure(self) -> bool:
        return self.repeat_of is not None

    def snapshot(self) -> OrderSnapshot:
        fields = {f: getattr(self, f) for f in OrderSnapshot.__struct_fields__}
        return OrderSnapshot(**fields)

    def due(self) -> dict[sla.Milestone, dt.datetime | None]:
        return {sla.Milestone.ACK: self.ack_due_at, sla.Milestone.RESPOND: self.respond_due_at,
                sla.Milestone.COMPLETE: self.complete_due_at}

    def met(self) -> dict[sla.Milestone, dt.datetime | None]:
        return {m: getattr(self, field) for m, field in sla.MILESTONE_FIELD.items()}

    def clocks_at(self, now: dt.datetime, warn_fraction: float) -> list[sla.Clock]:
        return sla.clocks(created_at=self.created_at, due=self.due(), met=self.met(), now=now,
                          warn_fraction=warn_fraction, stopped_at=self.cancelled_at)


class OrderEvent(msgspec.Struct, kw_only=True):
    at: dt.datetime
    kind: str
    actor: str
    from_state: str | None
    to_state: str | None
    detail: dict[str, Any]


class OverdueClock(msgspec.Struct, kw_only=True):
    work_order_id: int
    community_id: str
    title: str
    tier: int | None
    complaint_grade: str | None
    assignee: str | None
    team_id: str | None
    team_lead: str | None  # who an overdue Level 3 order escalates to
    state: OrderState
    clock: sla.Clock


# --- validation helpers -----------------------------------------------------------


def _require_time(field: str, value: dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidInput(field, "must be a date-time with a time zone")
    return value


def _require_text(field: str, value: str | None, *, limit: int = 500) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"must be at most {limit} characters")
    return value.strip()


def _community_ids(community_ids: Collection[str]) -> list[str]:
    if isinstance(community_ids, str) or not all(isinstance(c, str) and c for c in community_ids):
        raise InvalidInput("community_ids", "must be a list of community ids")
    return list(community_ids)


# --- policy -------------------------------------------------------------------------


def load_policy(conn: psycopg.Connection, community_id: str) -> sla.SlaPolicy:
    row = conn.execute("SELECT sla FROM service_policies WHERE community_id = %s", (community_id,)).fetchone()
    return sla.policy_from_overrides(row[0] if row else None)


def load_kpi_overrides(conn: psycopg.Connection, community_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT kpi_thresholds FROM service_policies WHERE community_id = %s",
                       (community_id,)).fetchone()
    return dict(row[0]) if row else {}


def set_policy(
    conn: psycopg.Connection,
    *,
    community_id: str,
    actor: str,
    at: dt.datetime,
    sla_overrides: Mapping[str, Any] | None = None,
    kpi_thresholds: Mapping[str, Any] | None = None,
) -> None:
    """Store a community's SLA and/or KPI-threshold overrides after validating them.

    New deadlines apply to orders created from now on; running orders keep theirs.
    """
    from workorders.kpis import thresholds_from_overrides  # kpis imports this module

    _require_text("community_id", community_id, limit=100)
    _require_text("actor", actor)
    _require_time("at", at)
    if sla_overrides is not None:
        sla.policy_from_overrides(sla_overrides)
    if kpi_thresholds is not None:
        thresholds_from_overrides(kpi_thresholds)
    conn.execute(
        """
        INSERT INTO service_policies (community_id, sla, kpi_thresholds, updated_at, updated_by)
        VALUES (%(c)s, coalesce(%(s)s, '{}'::jsonb), coalesce(%(k)s, '{}'::jsonb), %(at)s, %(actor)s)
        ON CONFLICT (community_id) DO UPDATE SET
            sla = coalesce(%(s)s, service_policies.sla),
            kpi_thresholds = coalesce(%(k)s, service_policies.kpi_thresholds),
            updated_at = %(at)s, updated_by = %(actor)s
        """,
        {"c": community_id, "s": None if sla_overrides is None else Jsonb(dict(sla_overrides)),
         "k": None if kpi_thresholds is None else Jsonb(dict(kpi_thresholds)), "at": at, "actor": actor},
    )


# --- reading ------------------------------------------------------------------------

_COLUMNS = ", ".join(f for f in WorkOrder.__struct_fields__ if f != "clocks")


def _row_to_order(row: Mapping[str, Any]) -> WorkOrder:
    values = dict(row)
    values["state"] = OrderState(values["state"])
    return WorkOrder(**values)


def _fetch(conn: psycopg.Connection, order_id: int, *, lock: bool = False) -> WorkOrder:
    if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id <= 0:
        raise InvalidInput("order_id", f"must be a positive integer, got {order_id!r}")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM work_orders WHERE id = %s" + (" FOR UPDATE" if lock else ""), (order_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"work order {order_id} does not exist")
    return _row_to_order(row)


def get_order(
    conn: psycopg.Connection,
    *,
    order_id: int,
    community_ids: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> WorkOrder:
    """One order; with ``now``, its SLA clocks too. Outside ``community_ids`` it is NotFound."""
    order = _fetch(conn, order_id)
    if community_ids is not None and order.community_id not in _community_ids(community_ids):
        raise NotFound(f"work order {order_id} does not exist")
    if now is not None:
        policy = load_policy(conn, order.community_id)
        order.clocks = order.clocks_at(_require_time("now", now), policy.warn_fraction)
    return order


def timeline(conn: psycopg.Connection, *, order_id: int) -> list[OrderEvent]:
    _fetch(conn, order_id)
    rows = conn.execute(
        "SELECT at, kind, actor, from_state, to_state, detail FROM work_order_events"
        " WHERE work_order_id = %s ORDER BY at, seq",
        (order_id,),
    ).fetchall()
    return [OrderEvent(at=r[0], kind=r[1], actor=r[2], from_state=r[3], to_state=r[4], detail=r[5]) for r in rows]


def list_orders(
    conn: psycopg.Connection,
    *,
    community_ids: Collection[str],
    state: str | None = None,
    assignee: str | None = None,
    incident_id: int | None = None,
    open_only: bool = False,
    after: int | None = None,
    limit: int = 50,
) -> list[WorkOrder]:
    """Orders newest first; ``after`` is the last id of the previous page (keyset)."""
    ids = _community_ids(community_ids)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be from 1 to {MAX_PAGE}")
    where, params = ["community_id = ANY(%s)"], [ids]
    if state is not None:
        try:
            where.append("state = %s")
            params.append(OrderState(state).value)
        except ValueError:
            raise InvalidInput("state", f"unknown state {state!r}; known: {', '.join(OrderState)}") from None
    if assignee is not None:
        where.append("assignee = %s")
        params.append(assignee)
    if incident_id is not None:
        where.append("incident_id = %s")
        params.append(incident_id)
    if open_only:
        where.append("state NOT IN ('closed', 'cancelled')")
    if after is not None:
        if isinstance(after, bool) or not isinstance(after, int) or after <= 0:
            raise InvalidInput("after", f"must be the positive id of the previous page's last order, got {after!r}")
        where.append("id < %s")
        params.append(after)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM work_orders WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
            (*params, limit),
        ).fetchall()
    return [_row_to_order(r) for r in rows]


def overdue(
    conn: psycopg.Connection,
    *,
    community_ids: Collection[str],
    now: dt.datetime,
    include_due_soon: bool = True,
) -> list[OverdueClock]:
    """Clocks of open orders that are overdue (or, with ``include_due_soon``, about to be), most late first.

    Computed from the stored deadlines and milestone times, so the answer for a
    given ``now`` is the same before and after a restart.
    """
    ids = _community_ids(community_ids)
    _require_time("now", now)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT {_COLUMNS} FROM work_orders
                WHERE community_id = ANY(%s) AND state NOT IN ('closed', 'cancelled')
                  AND ((ack_due_at IS NOT NULL AND accepted_at IS NULL)
                    OR (respond_due_at IS NOT NULL AND on_site_at IS NULL)
                    OR (complete_due_at IS NOT NULL AND completed_at IS NULL))""",
            (ids,),
        ).fetchall()
    leads = dict(conn.execute("SELECT team_id, lead_staff_id FROM teams WHERE community_id = ANY(%s)",
                              (ids,)).fetchall())
    policies: dict[str, sla.SlaPolicy] = {}
    wanted = {sla.ClockStatus.OVERDUE} | ({sla.ClockStatus.DUE_SOON} if include_due_soon else set())
    out = []
    for row in rows:
        order = _row_to_order(row)
        policy = policies.get(order.community_id)
        if policy is None:
            policy = policies[order.community_id] = load_policy(conn, order.community_id)
        for clock in order.clocks_at(now, policy.warn_fraction):
            if clock.status in wanted:
                out.append(OverdueClock(work_order_id=order.id, community_id=order.community_id, title=order.title,
                                        tier=order.tier, complaint_grade=order.complaint_grade,
                                        assignee=order.assignee, team_id=order.team_id,
                                        team_lead=leads.get(order.team_id), state=order.state,
                                        clock=clock))
    out.sort(key=lambda o: (o.clock.status != sla.ClockStatus.OVERDUE, o.clock.due_at))
    return out


# --- writing ------------------------------------------------------------------------


def _event(
    conn: psycopg.Connection,
    order: WorkOrder,
    *,
    at: dt.datetime,
    kind: str,
    actor: str,
    from_state: str | None = None,
    to_state: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO work_order_events (at, work_order_id, community_id, kind, actor, from_state, to_state,"
        " elapsed_s, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (at, order.id, order.community_id, kind, actor, from_state, to_state,
         (at - order.created_at).total_seconds(), Jsonb(dict(detail or {}))),
    )


def note(conn: psycopg.Connection, *, order_id: int, at: dt.datetime, actor: str, text: str) -> None:
    """A progress update (跟进) on the order's timeline; any state."""
    order = _fetch(conn, order_id)
    _event(conn, order, at=_require_time("at", at), kind="note", actor=_require_text("actor", actor),
           detail={"text": _require_text("text", text, limit=4000)})


def create_order(
    conn: psycopg.Connection,
    *,
    community_id: str,
    title: str,
    source: str,
    at: dt.datetime,
    actor: str,
    tier: int | None = None,
    complaint_grade: str | None = None,
    simple: bool = False,
    building_id: str | None = None,
    device_id: str | None = None,
    condition: str | None = None,
    incident_id: int | None = None,
    description: str = "",
    reporter: Mapping[str, Any] | None = None,
    team_kind: str | None = None,
    auto_dispatch: bool = True,
) -> WorkOrder:
    """接单: create an order, fix its SLA deadlines, link a repeat failure, and auto-dispatch.

    Staff-created orders use ``source`` ``resident_call`` (a tier, default
    routine work is ``tier=3``), ``complaint`` (needs ``complaint_grade`` A/B/C)
    or ``staff``. Detector-driven orders come from :mod:`alerts.hooks`.
    """
    community_id = _require_text("community_id", community_id, limit=100)
    title = _require_text("title", title)
    actor = _require_text("actor", actor)
    _require_time("at", at)
    if source not in SOURCES:
        raise InvalidInput("source", f"must be one of {', '.join(SOURCES)}, got {source!r}")
    if complaint_grade is not None:
        if complaint_grade not in sla.COMPLAINT_GRADES:
            raise InvalidInput("complaint_grade", f"must be A, B or C, got {complaint_grade!r}")
        if tier is not None:
            raise InvalidInput("tier", "a graded complaint has no tier; give one or the other")
    elif source == "complaint":
        raise InvalidInput("complaint_grade", "a complaint must be graded A, B or C")
    elif isinstance(tier, bool) or tier not in (1, 2, 3):
        raise InvalidInput("tier", f"must be 1, 2 or 3, got {tier!r}")
    if not isinstance(description, str) or len(description) > 4000:
        raise InvalidInput("description", "must be text of at most 4000 characters")
    if reporter is not None and not isinstance(reporter, Mapping):
        raise InvalidInput("reporter", "must be an object (name, phone, unit)")
    if team_kind is not None:
        try:
            dispatching.TeamKind(team_kind)
        except ValueError:
            raise InvalidInput("team_kind", f"must be one of {', '.join(dispatching.TeamKind)}") from None

    device_family = None
    if device_id is not None:
        row = conn.execute("SELECT community_id, device_type, building_id FROM devices WHERE device_id = %s",
                           (device_id,)).fetchone()
        if row is None or row[0] != community_id:
            raise InvalidInput("device_id", f"no device {device_id!r} in community {community_id}")
        device_family = row[1]
        building_id = building_id or row[2]
    kind, team_reason = dispatching.team_kind_for(device_family=device_family, condition=condition,
                                                  requested=team_kind)

    policy = load_policy(conn, community_id)
    due = sla.deadlines(policy.limits(tier=tier, complaint_grade=complaint_grade, simple=simple), at)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""INSERT INTO work_orders (community_id, building_id, device_id, device_family, condition, incident_id,
                    source, tier, complaint_grade, simple, title, description, reporter, team_kind, state,
                    created_at, created_by, updated_at, ack_due_at, respond_due_at, complete_due_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'created', %s, %s, %s, %s, %s, %s)
                RETURNING {_COLUMNS}""",
            (community_id, building_id, device_id, device_family, condition, incident_id, source, tier,
             complaint_grade, simple, title, description, None if reporter is None else Jsonb(dict(reporter)),
             kind.value, at, actor, at, due[sla.Milestone.ACK], due[sla.Milestone.RESPOND],
             due[sla.Milestone.COMPLETE]),
        ).fetchone()
    order = _row_to_order(row)
    _event(conn, order, at=at, kind="created", actor=actor, to_state=OrderState.CREATED.value,
           detail={"source": source, "team_kind": kind.value, "team_reason": render_why([team_reason]),
                   "team_why": [team_reason.to_json()]})
    _link_repeat_failure(conn, order, policy)
    if auto_dispatch:
        order = dispatch(conn, order_id=order.id, at=at, actor=SYSTEM_ACTOR)
    return _fetch(conn, order.id)


def _link_repeat_failure(conn: psycopg.Connection, order: WorkOrder, policy: sla.SlaPolicy) -> None:
    """Same device (or, for a building-wide condition, same building), same fault,
    within the repeat window after the previous order's completion: flag and link."""
    if order.condition is None or (order.device_id is None and order.building_id is None):
        return
    subject = ("device_id = %s", order.device_id) if order.device_id is not None else (
        "device_id IS NULL AND building_id = %s", order.building_id)
    row = conn.execute(
        f"""SELECT id FROM work_orders
            WHERE community_id = %s AND condition = %s AND {subject[0]} AND id <> %s AND state <> 'cancelled'
              AND coalesce(completed_at, created_at) >= %s AND created_at <= %s
            ORDER BY created_at DESC, id DESC LIMIT 1""",
        (order.community_id, order.condition, subject[1], order.id, order.created_at - policy.repeat_window,
         order.created_at),
    ).fetchone()
    if row is None:
        return
    previous_id = row[0]
    conn.execute("UPDATE work_orders SET repeat_of = %s WHERE id = %s", (previous_id, order.id))
    _event(conn, order, at=order.created_at, kind="repeat_failure", actor=SYSTEM_ACTOR,
           detail={"repeat_of": previous_id, "window_days": policy.repeat_window / dt.timedelta(days=1)})
    previous = _fetch(conn, previous_id)
    _event(conn, previous, at=max(order.created_at, previous.created_at), kind="failed_again", actor=SYSTEM_ACTOR,
           detail={"work_order_id": order.id})


def _load(conn: psycopg.Connection, assignees: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT assignee, count(*) FROM work_orders WHERE assignee = ANY(%s) AND state = ANY(%s) GROUP BY assignee",
        (list(assignees), [s.value for s in LOAD_STATES]),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _on_duty(conn: psycopg.Connection, community_id: str, at: dt.datetime) -> tuple[set[str], set[str]]:
    """(on call at ``at``, in any rotation) among the community's on-call schedules."""
    from oncall.schedule import on_call
    from oncall.store import load_directory

    now, rostered = set(), set()
    for schedule in load_directory(conn, community_id).schedules.values():
        for rotation in schedule.rotations:
            rostered.update(rotation.participants)
        who, _ = on_call(schedule, at)
        if who is not None:
            now.add(who)
    return now, rostered


def dispatch_candidates(conn: psycopg.Connection, *, community_id: str, team_kind: str,
                        at: dt.datetime | None = None) -> list[dispatching.Candidate]:
    rows = conn.execute(
        """SELECT s.staff_id, s.team_id, s.skills, s.buildings, s.max_open_orders
           FROM staff s JOIN teams t ON t.team_id = s.team_id
           WHERE s.community_id = %s AND s.active AND t.active AND t.kind = %s""",
        (community_id, team_kind),
    ).fetchall()
    load = _load(conn, [r[0] for r in rows])
    on_duty, rostered = _on_duty(conn, community_id, at) if at is not None else (set(), set())
    return [dispatching.Candidate(staff_id=r[0], team_id=r[1], skills=frozenset(r[2]), buildings=frozenset(r[3]),
                                  max_open_orders=r[4], open_orders=load.get(r[0], 0),
                                  on_duty=(r[0] in on_duty) if r[0] in rostered else None) for r in rows]


def dispatch(
    conn: psycopg.Connection, *, order_id: int, at: dt.datetime, actor: str, assignee: str | None = None
) -> WorkOrder:
    """派单: give a created order to ``assignee``, or choose one automatically.

    When nobody can take it, the order stays ``created`` and the reason is on its timeline.
    """
    order = _fetch(conn, order_id, lock=True)
    _require_time("at", at)
    actor = _require_text("actor", actor)
    if assignee is None:
        candidates = dispatch_candidates(conn, community_id=order.community_id, team_kind=order.team_kind, at=at)
        skills = [s for s in (order.device_family, order.condition) if s]
        decision = dispatching.choose(team_kind=dispatching.TeamKind(order.team_kind), team_reason=Why("auto_dispatch"),
                                      candidates=candidates, building_id=order.building_id, skills=skills)
        if decision.staff_id is None:
            if order.state is not OrderState.CREATED:
                raise IllegalTransition(f"cannot dispatch a work order that is {order.state.value}",
                                        state=order.state.value, action=Action.DISPATCH.value)
            _event(conn, order, at=at, kind="dispatch_failed", actor=actor,
                   detail={"reason": decision.reason, "why": decision.why_json()})
            return order
        return _transition(conn, order, Action.DISPATCH, at, actor, assignee=decision.staff_id,
                           team_id=decision.team_id, detail={"reason": decision.reason, "why": decision.why_json()})
    team_id = _staff_team(conn, order, assignee)
    by = Why("dispatched_by", {"actor": actor})
    return _transition(conn, order, Action.DISPATCH, at, actor, assignee=assignee, team_id=team_id,
                       detail={"reason": render_why([by]), "why": [by.to_json()]})


def _staff_team(conn: psycopg.Connection, order: WorkOrder, assignee: str) -> str | None:
    row = conn.execute("SELECT community_id, team_id, active FROM staff WHERE staff_id = %s", (assignee,)).fetchone()
    if row is None or row[0] != order.community_id:
        raise InvalidInput("assignee", f"no staff member {assignee!r} in community {order.community_id}")
    if not row[2]:
        raise InvalidInput("assignee", f"staff member {assignee!r} is not active")
    return row[1]


def _transition(
    conn: psycopg.Connection,
    order: WorkOrder,
    action: Action,
    at: dt.datetime,
    actor: str,
    *,
    detail: Mapping[str, Any] | None = None,
    **arguments: Any,
) -> WorkOrder:
    after = apply(order.snapshot(), action, at, actor, **arguments)
    changed = {f: getattr(after, f) for f in OrderSnapshot.__struct_fields__
               if getattr(after, f) != getattr(order.snapshot(), f)}
    assignments = ", ".join(f"{f} = %s" for f in changed)
    conn.execute(f"UPDATE work_orders SET {assignments} WHERE id = %s",
                 (*[v.value if isinstance(v, OrderState) else v for v in changed.values()], order.id))
    extra = dict(detail or {})
    if action is Action.ACCEPT:
        extra["first"] = order.accepted_at is None
    for key in ("assignee", "rating", "reason"):
        if arguments.get(key) is not None:
            extra[key] = arguments[key]
    _event(conn, order, at=at, kind=action.value, actor=actor, from_state=order.state.value,
           to_state=after.state.value, detail=extra)
    return _fetch(conn, order.id)


def act(
    conn: psycopg.Connection,
    *,
    order_id: int,
    action: str,
    at: dt.datetime,
    actor: str,
    assignee: str | None = None,
    rating: int | None = None,
    reason: str | None = None,
    note: str | None = None,
) -> WorkOrder:
    """Apply one action of the state machine to a stored order (跟进 → 验收 → 回访).

    ``dispatch`` goes through :func:`dispatch` (auto when no ``assignee``),
    ``reassign`` checks the new assignee, ``complete`` auto-verifies when the
    detector already saw the condition clear, ``verify`` of an order linked to
    an incident whose condition has not cleared needs a ``reason`` (a
    supervisor's override), ``return_visit`` needs ``rating`` 1-5.
    """
    try:
        action_ = Action(action)
    except ValueError:
        raise InvalidInput("action", f"unknown action {action!r}; known: {', '.join(Action)}") from None
    _require_time("at", at)
    _require_text("actor", actor)
    if action_ is Action.DISPATCH:
        return dispatch(conn, order_id=order_id, at=at, actor=actor, assignee=assignee)
    order = _fetch(conn, order_id, lock=True)
    detail: dict[str, Any] = {}
    if note:
        detail["note"] = _require_text("note", note, limit=4000)
    if action_ is Action.REASSIGN:
        if not assignee:
            raise InvalidInput("assignee", "reassign needs the staff member to give the order to")
        return _transition(conn, order, action_, at, actor, assignee=assignee,
                           team_id=_staff_team(conn, order, assignee), detail=detail)
    if action_ is Action.VERIFY and order.incident_id is not None and order.condition_cleared_at is None:
        if not reason:
            raise IllegalTransition(
                f"work order {order.id}: the detector has not seen the condition clear; "
                "verify after it clears, or give a reason to verify anyway",
                state=order.state.value, action=action_.value)
        detail["override"] = True
    if action_ is Action.RETURN_VISIT:
        order = _transition(conn, order, action_, at, actor, rating=rating, detail=detail)
        if note:
            conn.execute("UPDATE work_orders SET return_visit_note = %s WHERE id = %s", (detail["note"], order.id))
        return _fetch(conn, order.id)
    order = _transition(conn, order, action_, at, actor, reason=reason, detail=detail)
    if action_ is Action.COMPLETE and order.condition_cleared_at is not None:
        order = _transition(conn, order, Action.VERIFY, at, DETECTOR_ACTOR,
                            detail={"auto": True, "condition_cleared_at": order.condition_cleared_at.isoformat()})
    return order


def record_return_visit(
    conn: psycopg.Connection,
    *,
    order_id: int,
    rating: int,
    at: dt.datetime,
    actor: str,
    note: str | None = None,
    close: bool = True,
) -> WorkOrder:
    """回访: the resident's 1-5 rating; by default the order is then closed."""
    order = act(conn, order_id=order_id, action=Action.RETURN_VISIT, at=at, actor=actor, rating=rating, note=note)
    if close:
        order = act(conn, order_id=order_id, action=Action.CLOSE, at=at, actor=actor)
    return order


# --- hooks from the incident side ---------------------------------------------------


def open_orders_for_incident(conn: psycopg.Connection, incident_id: int) -> list[WorkOrder]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM work_orders WHERE incident_id = %s AND state <> ALL(%s) ORDER BY id FOR UPDATE",
            (incident_id, [s.value for s in TERMINAL_STATES]),
        ).fetchall()
    return [_row_to_order(r) for r in rows]


def condition_cleared(conn: psycopg.Connection, *, incident_id: int, at: dt.datetime) -> list[WorkOrder]:
    """The detector saw the incident's condition clear: note it on each open order,
    and verify those already completed (验收 with the detector's agreement)."""
    out = []
    for order in open_orders_for_incident(conn, incident_id):
        conn.execute("UPDATE work_orders SET condition_cleared_at = %s WHERE id = %s", (at, order.id))
        _event(conn, order, at=at, kind="condition_cleared", actor=DETECTOR_ACTOR, detail={"incident_id": incident_id})
        order = _fetch(conn, order.id)
        if order.state is OrderState.COMPLETED:
            order = _transition(conn, order, Action.VERIFY, max(at, order.updated_at), DETECTOR_ACTOR,
                                detail={"auto": True})
        out.append(order)
    return out


def condition_returned(conn: psycopg.Connection, *, incident_id: int, at: dt.datetime) -> list[WorkOrder]:
    """The incident reopened: open orders lose their 'cleared' mark (it is not fixed after all)."""
    out = []
    for order in open_orders_for_incident(conn, incident_id):
        conn.execute("UPDATE work_orders SET condition_cleared_at = NULL WHERE id = %s", (order.id,))
        _event(conn, order, at=at, kind="condition_returned", actor=DETECTOR_ACTOR, detail={"incident_id": incident_id})
        out.append(_fetch(conn, order.id))
    return out


def raise_tier(conn: psycopg.Connection, *, incident_id: int, tier: int, at: dt.datetime, actor: str) -> None:
    """The incident's tier went up: open orders take the tier and its (tighter) deadlines,
    counted from their creation."""
    for order in open_orders_for_incident(conn, incident_id):
        if order.tier is None or tier >= order.tier:
            continue
        policy = load_policy(conn, order.community_id)
        due = sla.deadlines(policy.limits(tier=tier, complaint_grade=None, simple=order.simple), order.created_at)
        conn.execute(
            "UPDATE work_orders SET tier = %s, ack_due_at = %s, respond_due_at = %s, complete_due_at = %s"
            " WHERE id = %s",
            (tier, due[sla.Milestone.ACK], due[sla.Milestone.RESPOND], due[sla.Milestone.COMPLETE], order.id),
        )
        _event(conn, order, at=at, kind="tier_raised", actor=actor, detail={"from": order.tier, "to": tier})
