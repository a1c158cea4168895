"""People in the product: teams, staff, their contact channels, and the roster import.

Reads need ``read`` (the staff picker shows every operator who is on duty and
their load); changes need ``oncall.manage`` (supervisors and admins run the
roster). Another community's team or person is 404. Ids are global: creating
an id that exists anywhere is 409. Every change is audited.

``POST /roster/import`` takes the TOML format of ``steward oncall load``
(teams, staff, contacts, schedules, policies, maintenance) and writes all of
it or nothing, in dependency order; an error names the line and the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from api import audit, tenancy
from api.clock import Now
from api.body import Body
from api.deps import Conn, Reader, allow, visible
from api.errors import ERROR_RESPONSES, Conflict, ErrorResponse, InvalidInput, NotFound
from api.params import IDENT
from api.security import Permission
from api.store import people as store
from api.users import Caller
from oncall import config as oncall_config

router = APIRouter(tags=["people"], responses=ERROR_RESPONSES)
Manager = Annotated[Caller, Depends(allow(Permission.ONCALL_MANAGE))]
Ident = Annotated[str, Field(pattern=IDENT)]
Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*\S[^\x00-\x1f]*$")]
TeamKind = Literal["engineering", "security", "cleaning", "elderly_care", "customer_service", "management"]
StaffRole = Literal["operator", "technician", "guard", "steward", "cleaner", "team_lead", "supervisor", "manager"]
TeamIdPath = Annotated[str, Path(pattern=IDENT)]
StaffIdPath = Annotated[str, Path(pattern=IDENT)]


# --- teams ----------------------------------------------------------------------------------------


class TeamUpdate(Body):
    kind: TeamKind
    name: Name
    skills: list[Tag] = Field(default_factory=list, max_length=50,
                             description="Device families or conditions the team handles, e.g. elevator, water")
    buildings: list[Ident] = Field(default_factory=list, max_length=200, description="Empty: the whole community")
    lead_staff_id: Ident | None = Field(default=None, description="Overdue Level 3 work escalates to the lead")
    active: bool = True


class TeamCreate(TeamUpdate):
    id: Ident
    community_id: Ident


class TeamPublic(BaseModel):
    id: str
    community_id: str
    kind: str
    name: str
    skills: list[str]
    buildings: list[str]
    lead_staff_id: str | None
    active: bool
    members: int


def _team(t: store.TeamRecord) -> TeamPublic:
    return TeamPublic(id=t.team_id, community_id=t.community_id, kind=t.kind, name=t.name, skills=t.skills,
                      buildings=t.buildings, lead_staff_id=t.lead_staff_id, active=t.active, members=t.members)


def _check_lead(conn: Conn, lead: str | None, community_id: str) -> None:
    if lead is not None and store.staff_community(conn, staff_id=lead) != community_id:
        raise InvalidInput(f"no staff member {lead!r} in community {community_id}", field="body.lead_staff_id")


@router.get("/teams", response_model=list[TeamPublic])
def list_teams(caller: Reader, conn: Conn, community: Annotated[str | None, Query(pattern=IDENT)] = None
               ) -> list[TeamPublic]:
    return [_team(t) for t in store.list_teams(conn, communities=visible(caller, community))]


@router.post("/teams", response_model=TeamPublic, status_code=201,
             responses={409: {"model": ErrorResponse, "description": "The team id exists"}})
def create_team(body: TeamCreate, caller: Manager, conn: Conn) -> TeamPublic:
    visible(caller, body.community_id, field="body.community_id")
    if store.team_exists(conn, team_id=body.id):
        raise Conflict(f"team {body.id!r} exists", field="body.id")
    _check_lead(conn, body.lead_staff_id, body.community_id)
    store.upsert_team(conn, team_id=body.id, community_id=body.community_id, kind=body.kind, name=body.name,
                      skills=body.skills, buildings=body.buildings, lead_staff_id=body.lead_staff_id,
                      active=body.active)
    audit.record(conn, caller=caller, action="team.create", target_type="team", target_id=body.id,
                 community_id=body.community_id)
    team = store.get_team(conn, team_id=body.id, communities=[body.community_id])
    assert team is not None
    return _team(team)


@router.put("/teams/{team_id}", response_model=TeamPublic)
def update_team(team_id: TeamIdPath, body: TeamUpdate, caller: Manager, conn: Conn) -> TeamPublic:
    team = store.get_team(conn, team_id=team_id, communities=caller.communities)
    if team is None:
        raise NotFound(f"team {team_id!r} not found", field="path.team_id")
    _check_lead(conn, body.lead_staff_id, team.community_id)
    store.upsert_team(conn, team_id=team_id, community_id=team.community_id, kind=body.kind, name=body.name,
                      skills=body.skills, buildings=body.buildings, lead_staff_id=body.lead_staff_id,
                      active=body.active)
    audit.record(conn, caller=caller, action="team.update", target_type="team", target_id=team_id,
                 community_id=team.community_id)
    updated = store.get_team(conn, team_id=team_id, communities=[team.community_id])
    assert updated is not None
    return _team(updated)


# --- staff ----------------------------------------------------------------------------------------


class ContactBody(Body):
    channel: Literal["webhook", "email", "push"]
    address: str = Field(default="", max_length=500, pattern=r"^[^\x00-\x1f]*$",
                         description="Empty: staff.email (email) / staff.phone (webhook); push needs none")
    locale: Literal["zh-CN", "en"] = "zh-CN"
    enabled: bool = True


class StaffUpdate(Body):
    name: Name
    team_id: Ident | None = None
    role: StaffRole = "technician"
    skills: list[Tag] = Field(default_factory=list, max_length=50)
    buildings: list[Ident] = Field(default_factory=list, max_length=200, description="Empty: the whole community")
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 \-]{3,40}$")
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    max_open_orders: int = Field(default=5, ge=1, le=100)
    active: bool = True


class StaffCreate(StaffUpdate):
    id: Ident
    community_id: Ident
    contacts: list[ContactBody] = Field(default_factory=list, max_length=3)


class StaffPublic(BaseModel):
    id: str
    community_id: str
    name: str
    team_id: str | None
    team_name: str | None
    team_kind: str | None
    role: str
    skills: list[str]
    buildings: list[str]
    phone: str | None
    email: str | None
    max_open_orders: int
    active: bool
    open_orders: int = Field(description="Dispatched, accepted or on-site work orders assigned now")
    on_duty: list[str] = Field(description="Schedules that have this person on call now")
    contacts: list[ContactBody]
    username: str | None = Field(description="The login linked to this person, if any")


def _staff(p: store.StaffRecord) -> StaffPublic:
    return StaffPublic(id=p.staff_id, community_id=p.community_id, name=p.name, team_id=p.team_id,
                       team_name=p.team_name, team_kind=p.team_kind, role=p.role, skills=p.skills,
                       buildings=p.buildings, phone=p.phone, email=p.email, max_open_orders=p.max_open_orders,
                       active=p.active, open_orders=p.open_orders, on_duty=p.on_duty,
                       contacts=[ContactBody(**c) for c in p.contacts], username=p.username)


def _one(conn: Conn, caller: Caller, staff_id: str, now: dt.datetime) -> store.StaffRecord:
    found = store.list_staff(conn, communities=caller.communities, now=now, staff_id=staff_id)
    if not found:
        raise NotFound(f"staff member {staff_id!r} not found", field="path.staff_id")
    return found[0]


def _check_team(conn: Conn, team_id: str | None, community_id: str) -> None:
    if team_id is not None and store.team_community(conn, team_id=team_id) != community_id:
        raise InvalidInput(f"no team {team_id!r} in community {community_id}", field="body.team_id")


def _check_contacts(contacts: list[ContactBody], field: str) -> None:
    channels = [c.channel for c in contacts]
    if len(set(channels)) != len(channels):
        raise InvalidInput("one contact per channel", field=field)


@router.get("/staff", response_model=list[StaffPublic])
def list_staff(now: Now, caller: Reader, conn: Conn, community: Annotated[str | None, Query(pattern=IDENT)] = None,
               team: Annotated[str | None, Query(pattern=IDENT)] = None,
               on_duty: Annotated[bool | None, Query(description="true: only who is on call now")] = None,
               ) -> list[StaffPublic]:
    """Staff of the caller's communities with who is on duty now and their open work orders."""
    people = store.list_staff(conn, communities=visible(caller, community), now=now, team_id=team)
    if on_duty is not None:
        people = [p for p in people if bool(p.on_duty) == on_duty]
    return [_staff(p) for p in people]


@router.get("/staff/{staff_id}", response_model=StaffPublic)
def get_staff(now: Now, staff_id: StaffIdPath, caller: Reader, conn: Conn) -> StaffPublic:
    return _staff(_one(conn, caller, staff_id, now))


@router.post("/staff", response_model=StaffPublic, status_code=201,
             responses={409: {"model": ErrorResponse, "description": "The staff id exists"}})
def create_staff(now: Now, body: StaffCreate, caller: Manager, conn: Conn) -> StaffPublic:
    visible(caller, body.community_id, field="body.community_id")
    if store.staff_exists(conn, staff_id=body.id):
        raise Conflict(f"staff member {body.id!r} exists", field="body.id")
    _check_team(conn, body.team_id, body.community_id)
    _check_contacts(body.contacts, "body.contacts")
    store.upsert_staff(conn, staff_id=body.id, community_id=body.community_id, team_id=body.team_id,
                       name=body.name, role=body.role, skills=body.skills, buildings=body.buildings,
                       phone=body.phone, email=body.email, max_open_orders=body.max_open_orders, active=body.active)
    store.set_contacts(conn, staff_id=body.id, contacts=[c.model_dump() for c in body.contacts])
    audit.record(conn, caller=caller, action="staff.create", target_type="staff", target_id=body.id,
                 community_id=body.community_id)
    return _staff(_one(conn, caller, body.id, now))


@router.put("/staff/{staff_id}", response_model=StaffPublic)
def update_staff(now: Now, staff_id: StaffIdPath, body: StaffUpdate, caller: Manager, conn: Conn) -> StaffPublic:
    person = _one(conn, caller, staff_id, now)
    _check_team(conn, body.team_id, person.community_id)
    store.upsert_staff(conn, staff_id=staff_id, community_id=person.community_id, team_id=body.team_id,
                       name=body.name, role=body.role, skills=body.skills, buildings=body.buildings,
                       phone=body.phone, email=body.email, max_open_orders=body.max_open_orders, active=body.active)
    audit.record(conn, caller=caller, action="staff.update", target_type="staff", target_id=staff_id,
                 community_id=person.community_id)
    return _staff(_one(conn, caller, staff_id, now))


@router.put("/staff/{staff_id}/contacts", response_model=StaffPublic)
def set_contacts(now: Now, staff_id: StaffIdPath, body: Annotated[list[ContactBody], Field(max_length=3)], caller: Manager,
                 conn: Conn) -> StaffPublic:
    """Replace the person's contact channels (webhook for SMS/IM, email, push to the staff app)."""
    person = _one(conn, caller, staff_id, now)
    _check_contacts(body, "body")
    store.set_contacts(conn, staff_id=staff_id, contacts=[c.model_dump() for c in body])
    audit.record(conn, caller=caller, action="staff.contacts", target_type="staff", target_id=staff_id,
                 community_id=person.community_id, detail={"channels": sorted(c.channel for c in body)})
    return _staff(_one(conn, caller, staff_id, now))


# --- the roster file ------------------------------------------------------------------------------


class RosterImport(Body):
    toml: str = Field(min_length=1, max_length=1_000_000,
                      description="The `steward oncall load` format: teams, staff, contacts, schedules, policies, "
                                  "maintenance")
    dry_run: bool = Field(default=False, description="Validate everything (references included), write nothing")


class RosterImported(BaseModel):
    counts: dict[str, int]
    dry_run: bool


def _communities_of(config: oncall_config.OnCallConfig) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for section in ("teams", "staff", "schedules", "policies", "maintenance"):
        for i, item in enumerate(getattr(config, section)):
            out.append((item.community_id, f"$.{section}[{i}].community_id"))
    return out


@router.post("/roster/import", response_model=RosterImported)
def import_roster(body: RosterImport, caller: Manager, conn: Conn) -> RosterImported:
    """Write a roster file in one transaction (all or nothing); errors name the line and the field."""
    try:
        config = oncall_config.load_text(body.toml, source=None)
        for community_id, where in _communities_of(config):
            if community_id == "*" or not tenancy.sees_community(caller, community_id):
                located = oncall_config.with_line(
                    oncall_config.ConfigError(f"{where}: community {community_id!r} not found"), body.toml, None)
                raise NotFound(str(located), field="body.toml")
        for i, contact in enumerate(config.contacts):
            owner = store.staff_community(conn, staff_id=contact.staff_id) or next(
                (p.community_id for p in config.staff if p.id == contact.staff_id), None)
            if owner is not None and not tenancy.sees_community(caller, owner):
                raise oncall_config.ConfigError(f"$.contacts[{i}].staff_id: no staff {contact.staff_id!r}")
        with conn.transaction():
            counts = oncall_config.apply_config(conn, config)
            if body.dry_run:
                raise _DryRun(counts)
    except _DryRun as done:
        return RosterImported(counts=done.counts, dry_run=True)
    except oncall_config.ConfigError as exc:
        located = exc if exc.line else oncall_config.with_line(exc, body.toml, None)
        raise InvalidInput(str(located), field="body.toml", code="invalid_roster") from None
    communities = sorted({c for c, _ in _communities_of(config)})
    audit.record(conn, caller=caller, action="roster.import", target_type="roster", target_id="toml",
                 community_id=communities[0] if len(communities) == 1 else None, detail={"counts": counts},
                 communities=communities)
    return RosterImported(counts=counts, dry_run=False)


class _DryRun(Exception):
    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__("dry run")
        self.counts = counts


# --- places ---------------------------------------------------------------------------------------


class PlaceBody(Body):
    id: Ident
    community_id: Ident
    kind: Literal["community", "building", "unit"]
    parent_id: Ident | None = None
    name: Name


@router.get("/places", response_model=list[PlaceBody])
def list_places(caller: Reader, conn: Conn, community: Annotated[str | None, Query(pattern=IDENT)] = None
                ) -> list[PlaceBody]:
    """Names of the communities, buildings and units (the console shows names, not ids)."""
    return [PlaceBody(id=p.place_id, community_id=p.community_id, kind=p.kind,  # type: ignore[arg-type]
                      parent_id=p.parent_id, name=p.name)
            for p in store.list_places(conn, communities=visible(caller, community))]


@router.put("/places", response_model=list[PlaceBody],
            responses={409: {"model": ErrorResponse, "description": "A place id exists in another community"}})
def put_places(body: Annotated[list[PlaceBody], Field(min_length=1, max_length=5000)],
               caller: Annotated[Caller, Depends(allow(Permission.DEVICE_MANAGE))], conn: Conn) -> list[PlaceBody]:
    """Name (or rename) places; a place id that exists in another community is 409."""
    for i, p in enumerate(body):
        visible(caller, p.community_id, field=f"body.{i}.community_id")
        owner = store.place_community(conn, place_id=p.id)
        if owner is not None and owner != p.community_id:
            raise Conflict(f"place {p.id!r} exists in another community", field=f"body.{i}.id")
    store.upsert_places(conn, [store.PlaceRecord(p.id, p.community_id, p.kind, p.parent_id, p.name) for p in body])
    for community_id in sorted({p.community_id for p in body}):
        audit.record(conn, caller=caller, action="places.update", target_type="places", target_id=community_id,
                     community_id=community_id, detail={"count": sum(p.community_id == community_id for p in body)})
    return body

