"""On-call configuration: schedules, overrides, escalation policies, maintenance
windows. Thin over `oncall.config` (validation and writes) and `oncall.store` /
`oncall.schedule` (reads, who is on call): the same checks as ``steward oncall
load``, with the offending field named as ``body.x``. The signed action links for
staff phones are in `api.routes.oncall_links`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AfterValidator, BaseModel, Field, model_validator

from api import audit
from api.clock import Now
from api import tenancy
from api.body import Body
from api.deps import Conn, Reader, allow, visible
from api.errors import ERROR_RESPONSES, Conflict, ErrorResponse, InvalidInput, NotFound
from api.params import IDENT, MAX_ID, Instant, Limit
from api.security import Permission
from api.store import oncall as store
from api.users import Caller
from domain.devices import DeviceType
from oncall import config as oncall_config
from oncall.schedule import on_call
from oncall.store import load_directory, load_policy

log = logging.getLogger(__name__)

router = APIRouter(prefix="/oncall", tags=["on-call"], responses=ERROR_RESPONSES)

OnCallManager = Annotated[Caller, Depends(allow(Permission.ONCALL_MANAGE))]

# ---------------------------------------------------------------------------------------------- inputs

_TARGET = re.compile(r"^(staff|schedule|team):([A-Za-z0-9][A-Za-z0-9_.\-]{0,63})$")


def _target(value: str) -> str:
    if not _TARGET.match(value):
        raise ValueError(f"expected 'staff:ID', 'schedule:ID' or 'team:ID', got {value[:80]!r}")
    return value


Ident = Annotated[str, Field(pattern=IDENT)]
Label = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f]*$")]
TargetText = Annotated[str, Field(max_length=80), AfterValidator(_target)]
ScheduleId = Annotated[str, Path(pattern=IDENT)]
PolicyId = Annotated[str, Path(pattern=IDENT)]
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


class RotationBody(Body):
    layer: int = Field(default=0, ge=0, le=100, description="The highest layer with somebody on call wins")
    handoff_at: Instant = Field(description="The first hand-off (an instant); turns follow every shift_hours")
    shift_hours: float = Field(ge=0.25, le=31 * 24, description="Length of one turn")
    participants: list[Ident] = Field(min_length=1, max_length=50, description="staff ids, in turn order")
    active_from: Instant | None = None
    active_until: Instant | None = None

    @model_validator(mode="after")
    def _span(self) -> RotationBody:
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            raise ValueError("active_until must be after active_from")
        return self


class OverrideBody(Body):
    staff_id: Ident
    starts_at: Instant
    ends_at: Instant


class ScheduleUpdate(Body):
    name: Label = ""
    rotations: list[RotationBody] = Field(default_factory=list, max_length=20,
                                          description="Replaces the schedule's rotations; one per layer")


class ScheduleCreate(ScheduleUpdate):
    id: Ident
    community_id: Ident
    overrides: list[OverrideBody] = Field(default_factory=list, max_length=100)


class StepBody(Body):
    targets: list[TargetText] = Field(min_length=1, max_length=20)
    delay_minutes: float = Field(ge=0, le=24 * 60, description="Wait after this step before the next one")


class PolicyUpdate(Body):
    name: Label = ""
    steps: list[StepBody] = Field(min_length=1, max_length=20, description="In order; replaces the policy's steps")
    repeat: int = Field(default=0, ge=0, le=10, description="How many more times the whole chain runs")
    ack_renotify_minutes: float = Field(default=30, ge=0, le=24 * 60, description="0: off")
    reminder_minutes: float = Field(default=15, ge=0, le=24 * 60, description="0: off")


class PolicyCreate(PolicyUpdate):
    id: Ident
    community_id: Ident
    tier: Literal[1, 2, 3] | None = Field(default=None, description="None: the community's any-tier policy")


MAX_WINDOW = dt.timedelta(days=31)


class WindowCreate(Body):
    community_id: Ident
    scope: Literal["device", "building", "community"]
    scope_id: Ident = Field(description="The device id, building id, or the community id itself")
    device_type: DeviceType | None = Field(default=None, description="Only this device family; None: all")
    starts_at: Instant
    ends_at: Instant
    reason: Label = "maintenance"


# --------------------------------------------------------------------------------------------- outputs


class RotationPublic(BaseModel):
    layer: int
    handoff_at: dt.datetime
    shift_hours: float
    participants: list[str]
    active_from: dt.datetime | None
    active_until: dt.datetime | None


class OverridePublic(BaseModel):
    id: int
    staff_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime


class OnCallPublic(BaseModel):
    schedule_id: str
    community_id: str
    at: dt.datetime
    staff_id: str | None = Field(description="None: nobody is on call")
    reason: str = Field(description="Which override or layer decided")


class SchedulePublic(BaseModel):
    id: str
    community_id: str
    name: str
    rotations: list[RotationPublic]
    overrides: list[OverridePublic] = Field(description="Current and upcoming overrides")
    on_call_now: OnCallPublic


class ScheduleListPublic(BaseModel):
    data: list[SchedulePublic]


class StepPublic(BaseModel):
    targets: list[str]
    delay_minutes: float


class PolicyPublic(BaseModel):
    id: str
    community_id: str
    tier: int | None
    name: str
    steps: list[StepPublic]
    repeat: int
    ack_renotify_minutes: float
    reminder_minutes: float


class PolicyListPublic(BaseModel):
    data: list[PolicyPublic]


class WindowPublic(BaseModel):
    id: int
    community_id: str
    scope: str
    scope_id: str
    device_type: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str
    created_by: str
    created_at: dt.datetime


class WindowListPublic(BaseModel):
    data: list[WindowPublic]


# --------------------------------------------------------------------------------------- shared checks


def _config_field(error: oncall_config.ConfigError) -> tuple[str, str]:
    """'$.schedules[0].rotations[1].shift_hours: must be > 0' -> ('body.rotations.1.shift_hours', message)."""
    text = str(error)
    path, sep, message = text.partition(": ")
    if not sep or not path.startswith("$."):
        return "body", text
    parts = re.sub(r"\[(\d+)\]", r".\1", path).split(".")[2:]  # drop "$" and the section ("schedules.0")
    field = ".".join(["body", *parts[1:]]) if parts and parts[0].isdigit() else ".".join(["body", *parts])
    return field, message


def _validated(section: str, doc: dict[str, Any]) -> oncall_config.OnCallConfig:
    """Run on-call's own validation (the same as ``steward oncall check``) on one item."""
    try:
        return oncall_config.validate({section: [doc]})
    except oncall_config.ConfigError as exc:
        field, message = _config_field(exc)
        raise InvalidInput(f"{field}: {message}", field=field) from None


def _require_staff(conn: Conn, community_id: str, staff_ids: list[tuple[str, str]]) -> None:
    """Every (field, staff id) must be active staff of the community."""
    found = store.existing(conn, kind="staff", community_id=community_id, ids=[s for _, s in staff_ids])
    for field, staff_id in staff_ids:
        if staff_id not in found:
            raise InvalidInput(f"{field}: {staff_id!r} is not active staff of community {community_id}", field=field)


def _schedule_community(conn: Conn, caller: Caller, schedule_id: str) -> str:
    community = store.schedule_community(conn, schedule_id=schedule_id)
    return tenancy.require(caller, community, field="path.schedule_id", what=f"schedule {schedule_id!r}")


def _schedule_public(conn: Conn, community_id: str, schedule_id: str, now: dt.datetime) -> SchedulePublic:
    schedule = load_directory(conn, community_id).schedules[schedule_id]
    person, reason = on_call(schedule, now)
    return SchedulePublic(
        id=schedule_id, community_id=community_id, name=schedule.name,
        rotations=[RotationPublic(layer=r.layer, handoff_at=r.handoff_at, shift_hours=r.shift.total_seconds() / 3600,
                                  participants=list(r.participants), active_from=r.active_from,
                                  active_until=r.active_until)
                   for r in sorted(schedule.rotations, key=lambda r: r.layer)],
        overrides=[OverridePublic(id=o.override_id, staff_id=o.staff_id, starts_at=o.starts_at, ends_at=o.ends_at)
                   for o in sorted(schedule.overrides, key=lambda o: (o.starts_at, o.override_id)) if o.ends_at > now],
        on_call_now=OnCallPublic(schedule_id=schedule_id, community_id=community_id, at=now, staff_id=person,
                                 reason=reason),
    )  # fmt: skip


def _write_schedule(conn: Conn, *, schedule_id: str, community_id: str, body: ScheduleUpdate,
                    overrides: list[OverrideBody]) -> None:
    layers: set[int] = set()
    for i, r in enumerate(body.rotations):
        if r.layer in layers:
            raise InvalidInput(f"body.rotations.{i}.layer: layer {r.layer} appears twice (one rotation per layer)",
                               field=f"body.rotations.{i}.layer")
        layers.add(r.layer)
    staff = [(f"body.rotations.{i}.participants.{j}", p) for i, r in enumerate(body.rotations)
             for j, p in enumerate(r.participants)]
    staff += [(f"body.overrides.{i}.staff_id", o.staff_id) for i, o in enumerate(overrides)]
    doc = {"id": schedule_id, "community_id": community_id, "name": body.name,
           "rotations": [r.model_dump(exclude_none=True) for r in body.rotations],
           "overrides": [o.model_dump() for o in overrides]}
    config = _validated("schedules", doc)
    _require_staff(conn, community_id, staff)
    oncall_config.apply_config(conn, config)


# ------------------------------------------------------------------------------------------- schedules


@router.get("/schedules", response_model=ScheduleListPublic)
def list_schedules(now: Now, caller: Reader, conn: Conn,
                   community: Annotated[str | None, Query(pattern=IDENT)] = None) -> ScheduleListPublic:
    """Schedules of the caller's communities with their rotations, current and upcoming overrides, and who is on call now."""
    return ScheduleListPublic(data=[_schedule_public(conn, c, s, now)
                                    for s, c in store.schedule_ids(conn, communities=visible(caller, community))])


@router.post("/schedules", response_model=SchedulePublic, status_code=201,
             responses={409: {"model": ErrorResponse, "description": "A schedule with this id exists"}})
def create_schedule(now: Now, body: ScheduleCreate, caller: OnCallManager, conn: Conn) -> SchedulePublic:
    tenancy.require(caller, body.community_id, field="body.community_id")
    if store.schedule_community(conn, schedule_id=body.id) is not None:
        raise Conflict(f"schedule {body.id!r} already exists", field="body.id")
    _write_schedule(conn, schedule_id=body.id, community_id=body.community_id, body=body, overrides=body.overrides)
    audit.record(conn, caller=caller, action="oncall.schedule.create", community_id=body.community_id,
                 target_type="oncall_schedule", target_id=body.id,
                 detail={"rotations": len(body.rotations), "overrides": len(body.overrides)})
    return _schedule_public(conn, body.community_id, body.id, now)


@router.get("/schedules/{schedule_id}", response_model=SchedulePublic)
def get_schedule(now: Now, schedule_id: ScheduleId, caller: Reader, conn: Conn) -> SchedulePublic:
    community = _schedule_community(conn, caller, schedule_id)
    return _schedule_public(conn, community, schedule_id, now)


@router.put("/schedules/{schedule_id}", response_model=SchedulePublic)
def update_schedule(now: Now, schedule_id: ScheduleId, body: ScheduleUpdate, caller: OnCallManager, conn: Conn) -> SchedulePublic:
    """Replace the name and the rotations (overrides are kept: see ``/overrides``)."""
    community = _schedule_community(conn, caller, schedule_id)
    _write_schedule(conn, schedule_id=schedule_id, community_id=community, body=body, overrides=[])
    audit.record(conn, caller=caller, action="oncall.schedule.update", community_id=community,
                 target_type="oncall_schedule", target_id=schedule_id, detail={"rotations": len(body.rotations)})
    return _schedule_public(conn, community, schedule_id, now)


@router.delete("/schedules/{schedule_id}", status_code=204,
               responses={409: {"model": ErrorResponse,
                                "description": "An escalation policy still pages this schedule"}})
def delete_schedule(schedule_id: ScheduleId, caller: OnCallManager, conn: Conn) -> Response:
    """Remove a schedule with its rotations and overrides. Refused (409, naming the policies) while a policy step
    still pages it: the step would page nobody; change those policies first."""
    community = _schedule_community(conn, caller, schedule_id)
    users = store.policies_targeting(conn, community_id=community, target=f"schedule:{schedule_id}")
    if users:
        raise Conflict(f"schedule {schedule_id!r} is paged by escalation policy {', '.join(users)};"
                       " change those policies first", field="path.schedule_id")
    store.delete_schedule(conn, schedule_id=schedule_id)
    audit.record(conn, caller=caller, action="oncall.schedule.delete", community_id=community,
                 target_type="oncall_schedule", target_id=schedule_id)
    return Response(status_code=204)


@router.get("/schedules/{schedule_id}/on-call", response_model=OnCallPublic)
def who_is_on_call(now: Now, schedule_id: ScheduleId, caller: Reader, conn: Conn,
                   at: Annotated[Instant | None, Query(description="Default: now")] = None) -> OnCallPublic:
    """Who is on call for the schedule at ``at`` (an override beats every layer; the highest layer wins)."""
    community = _schedule_community(conn, caller, schedule_id)
    when = at or now
    person, reason = on_call(load_directory(conn, community).schedules[schedule_id], when)
    return OnCallPublic(schedule_id=schedule_id, community_id=community, at=when, staff_id=person, reason=reason)


@router.post("/schedules/{schedule_id}/overrides", response_model=OverridePublic, status_code=201)
def add_override(schedule_id: ScheduleId, body: OverrideBody, caller: OnCallManager, conn: Conn) -> OverridePublic:
    """Put somebody on call between two instants; beats every layer, the latest override wins."""
    community = _schedule_community(conn, caller, schedule_id)
    if body.ends_at <= body.starts_at:
        raise InvalidInput("body.ends_at: must be after starts_at", field="body.ends_at")
    _require_staff(conn, community, [("body.staff_id", body.staff_id)])
    override_id = oncall_config.add_override(conn, schedule_id=schedule_id, staff_id=body.staff_id,
                                             starts_at=body.starts_at, ends_at=body.ends_at)
    audit.record(conn, caller=caller, action="oncall.override.create", community_id=community,
                 target_type="oncall_schedule", target_id=schedule_id,
                 detail={"override_id": override_id, "staff_id": body.staff_id})
    return OverridePublic(id=override_id, staff_id=body.staff_id, starts_at=body.starts_at, ends_at=body.ends_at)


@router.delete("/schedules/{schedule_id}/overrides/{override_id}", status_code=204)
def delete_override(schedule_id: ScheduleId, override_id: RowIdPath, caller: OnCallManager, conn: Conn) -> Response:
    community = _schedule_community(conn, caller, schedule_id)
    if not store.delete_override(conn, schedule_id=schedule_id, override_id=override_id):
        raise NotFound(f"override {override_id} of schedule {schedule_id!r} not found", field="path.override_id")
    audit.record(conn, caller=caller, action="oncall.override.delete", community_id=community,
                 target_type="oncall_schedule", target_id=schedule_id, detail={"override_id": override_id})
    return Response(status_code=204)


@router.get("/on-call", response_model=list[OnCallPublic])
def on_call_now(now: Now, caller: Reader, conn: Conn, community: Annotated[str | None, Query(pattern=IDENT)] = None,
                at: Annotated[Instant | None, Query(description="Default: now")] = None) -> list[OnCallPublic]:
    """Who is on call for every schedule of the caller's communities."""
    when = at or now
    answers = []
    for c in visible(caller, community):
        for schedule_id, schedule in sorted(load_directory(conn, c).schedules.items()):
            person, reason = on_call(schedule, when)
            answers.append(OnCallPublic(schedule_id=schedule_id, community_id=c, at=when, staff_id=person,
                                        reason=reason))
    return answers


# -------------------------------------------------------------------------------------------- policies


def _policy_public(conn: Conn, policy_id: str) -> PolicyPublic:
    policy = load_policy(conn, policy_id)
    assert policy is not None
    return PolicyPublic(
        id=policy.policy_id, community_id=policy.community_id, tier=policy.tier, name=policy.name,
        steps=[StepPublic(targets=[f"{t.kind}:{t.id}" for t in s.targets], delay_minutes=s.delay.total_seconds() / 60)
               for s in policy.steps],
        repeat=policy.repeat, ack_renotify_minutes=policy.ack_renotify_after.total_seconds() / 60,
        reminder_minutes=policy.reminder_every.total_seconds() / 60,
    )  # fmt: skip


def _write_policy(conn: Conn, *, policy_id: str, community_id: str, tier: int | None, body: PolicyUpdate) -> None:
    doc = {"id": policy_id, "community_id": community_id, "tier": tier, **body.model_dump()}
    config = _validated("policies", doc)
    by_kind: dict[str, list[tuple[str, str]]] = {"staff": [], "schedule": [], "team": []}
    for i, step in enumerate(body.steps):
        for j, text in enumerate(step.targets):
            kind, _, ident = text.partition(":")
            by_kind[kind].append((f"body.steps.{i}.targets.{j}", ident))
    for kind, wanted in by_kind.items():
        found = store.existing(conn, kind=kind, community_id=community_id, ids=[i for _, i in wanted])  # type: ignore[arg-type]
        for field, ident in wanted:
            if ident not in found:
                what = {"staff": "active staff", "schedule": "a schedule", "team": "an active team"}[kind]
                raise InvalidInput(f"{field}: {ident!r} is not {what} of community {community_id}", field=field)
    oncall_config.apply_config(conn, config)


@router.get("/policies", response_model=PolicyListPublic)
def list_policies(caller: Reader, conn: Conn,
                  community: Annotated[str | None, Query(pattern=IDENT)] = None) -> PolicyListPublic:
    """Escalation policies of the caller's communities, by community and tier (any-tier last)."""
    return PolicyListPublic(data=[_policy_public(conn, p)
                                  for p in store.policy_ids(conn, communities=visible(caller, community))])


@router.post("/policies", response_model=PolicyPublic, status_code=201,
             responses={409: {"model": ErrorResponse, "description": "The id, or the (community, tier) slot, is taken"}})
def create_policy(body: PolicyCreate, caller: OnCallManager, conn: Conn) -> PolicyPublic:
    """One policy per (community, tier); ``tier`` null is the community's fallback for any tier."""
    tenancy.require(caller, body.community_id, field="body.community_id")
    if store.policy_community(conn, policy_id=body.id) is not None:
        raise Conflict(f"policy {body.id!r} already exists", field="body.id")
    holder = store.policy_for_tier(conn, community_id=body.community_id, tier=body.tier)
    if holder is not None:
        raise Conflict(f"community {body.community_id} already has policy {holder!r} for tier {body.tier or 'any'};"
                       f" change that one (PUT /oncall/policies/{holder})", field="body.tier")
    _write_policy(conn, policy_id=body.id, community_id=body.community_id, tier=body.tier, body=body)
    audit.record(conn, caller=caller, action="oncall.policy.create", community_id=body.community_id,
                 target_type="oncall_policy", target_id=body.id, detail={"tier": body.tier, "steps": len(body.steps)})
    return _policy_public(conn, body.id)


@router.get("/policies/{policy_id}", response_model=PolicyPublic)
def get_policy(policy_id: PolicyId, caller: Reader, conn: Conn) -> PolicyPublic:
    tenancy.require(caller, store.policy_community(conn, policy_id=policy_id), field="path.policy_id",
                    what=f"policy {policy_id!r}")
    return _policy_public(conn, policy_id)


@router.put("/policies/{policy_id}", response_model=PolicyPublic)
def update_policy(policy_id: PolicyId, body: PolicyUpdate, caller: OnCallManager, conn: Conn) -> PolicyPublic:
    """Replace the steps and timers; community and tier stay (create another policy for another tier)."""
    community = tenancy.require(caller, store.policy_community(conn, policy_id=policy_id), field="path.policy_id",
                                what=f"policy {policy_id!r}")
    current = load_policy(conn, policy_id)
    assert current is not None and community is not None
    _write_policy(conn, policy_id=policy_id, community_id=community, tier=current.tier, body=body)
    audit.record(conn, caller=caller, action="oncall.policy.update", community_id=community,
                 target_type="oncall_policy", target_id=policy_id, detail={"steps": len(body.steps)})
    return _policy_public(conn, policy_id)


@router.delete("/policies/{policy_id}", status_code=204)
def delete_policy(policy_id: PolicyId, caller: OnCallManager, conn: Conn) -> Response:
    """Remove a policy and its steps; its (community, tier) slot is free again. Alerts already escalating under it
    page nobody further (their next step finds no policy and is cancelled, with that reason)."""
    community = tenancy.require(caller, store.policy_community(conn, policy_id=policy_id), field="path.policy_id",
                                what=f"policy {policy_id!r}")
    store.delete_policy(conn, policy_id=policy_id)
    audit.record(conn, caller=caller, action="oncall.policy.delete", community_id=community,
                 target_type="oncall_policy", target_id=policy_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------------- maintenance windows


def _window_public(w: store.WindowRecord) -> WindowPublic:
    return WindowPublic(**w.__dict__)


@router.get("/maintenance-windows", response_model=WindowListPublic)
def list_windows(now: Now, caller: Reader, conn: Conn, limit: Limit = 100,
                 community: Annotated[str | None, Query(pattern=IDENT)] = None) -> WindowListPublic:
    """Current and upcoming maintenance windows, soonest first."""
    return WindowListPublic(data=[_window_public(w) for w in store.list_windows(
        conn, communities=visible(caller, community), ending_after=now, limit=limit)])


@router.post("/maintenance-windows", response_model=WindowPublic, status_code=201)
def create_window(now: Now, body: WindowCreate, caller: OnCallManager, conn: Conn) -> WindowPublic:
    """Silence detection and Level 2/3 paging for a device, building or community. Level 1 is never silenced."""
    community = tenancy.require(caller, body.community_id, field="body.community_id")
    if body.ends_at <= body.starts_at:
        raise InvalidInput("body.ends_at: must be after starts_at", field="body.ends_at")
    if body.ends_at - body.starts_at > MAX_WINDOW:
        raise InvalidInput("body.ends_at: a maintenance window lasts at most 31 days", field="body.ends_at")
    if body.ends_at <= now:
        raise InvalidInput("body.ends_at: the window is already over", field="body.ends_at")
    known = {
        "community": lambda: body.scope_id == community,
        "building": lambda: store.building_in_community(conn, community_id=community, building_id=body.scope_id),
        "device": lambda: store.device_in_community(conn, community_id=community, device_id=body.scope_id),
    }[body.scope]()
    if not known:
        raise InvalidInput(f"body.scope_id: no {body.scope} {body.scope_id!r} in community {community}",
                           field="body.scope_id")
    _validated("maintenance", {"community_id": community, "scope": body.scope, "scope_id": body.scope_id,
                               "device_type": body.device_type.value if body.device_type else None,
                               "starts_at": body.starts_at, "ends_at": body.ends_at, "reason": body.reason,
                               "created_by": caller.username})
    window_id = oncall_config.add_maintenance_window(
        conn, community_id=community, scope=body.scope, scope_id=body.scope_id, starts_at=body.starts_at,
        ends_at=body.ends_at, reason=body.reason, created_by=caller.username,
        device_type=body.device_type.value if body.device_type else None,
    )  # fmt: skip
    audit.record(conn, caller=caller, action="oncall.maintenance.create", community_id=community,
                 target_type="maintenance_window", target_id=window_id,
                 detail={"scope": body.scope, "scope_id": body.scope_id, "starts_at": body.starts_at.isoformat(),
                         "ends_at": body.ends_at.isoformat()})
    window = store.get_window(conn, window_id=window_id, communities=[community])
    assert window is not None
    return _window_public(window)


@router.delete("/maintenance-windows/{window_id}", status_code=204,
               responses={409: {"model": ErrorResponse, "description": "The window is already over"}})
def end_window(now: Now, window_id: RowIdPath, caller: OnCallManager, conn: Conn) -> Response:
    """An upcoming window is removed; a running one ends now (kept, it explains the silence so far)."""
    window = store.get_window(conn, window_id=window_id, communities=caller.communities)
    if window is None:
        raise NotFound(f"maintenance window {window_id} not found", field="path.window_id")
    if window.ends_at <= now:
        raise Conflict(f"maintenance window {window_id} is already over")
    outcome = store.end_window(conn, window_id=window_id, now=now)
    audit.record(conn, caller=caller, action=f"oncall.maintenance.{'delete' if outcome == 'deleted' else 'end'}",
                 community_id=window.community_id, target_type="maintenance_window", target_id=window_id)
    return Response(status_code=204)
