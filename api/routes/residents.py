"""Residents' personal data: unmasked only for roles with the ``resident.pii`` permission."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api import audit, tenancy
from api.body import Body
from api.deps import Conn, Reader, allow, can, visible
from api.errors import ERROR_RESPONSES, NotFound
from api.params import IDENT, IdCursor, Limit, RowId
from api.security import Permission
from api.store import devices as device_store
from api.store import residents as store
from api.users import Caller

router = APIRouter(prefix="/residents", tags=["residents"], responses=ERROR_RESPONSES)
Manager = Annotated[Caller, Depends(allow(Permission.RESIDENT_MANAGE))]


class ResidentBase(Body):
    building_id: str | None = Field(default=None, pattern=IDENT)
    unit_id: str | None = Field(default=None, pattern=IDENT)
    device_id: str | None = Field(default=None, pattern=IDENT, description="The resident's elderly home_hub")
    full_name: str = Field(min_length=1, max_length=200)
    phone: str = Field(default="", max_length=40)
    emergency_contact_name: str = Field(default="", max_length=200)
    emergency_contact_phone: str = Field(default="", max_length=40)
    care_notes: str = Field(default="", max_length=4000)


class ResidentCreate(ResidentBase):
    community_id: str = Field(pattern=IDENT)


class ResidentUpdate(Body):
    building_id: str | None = Field(default=None, pattern=IDENT)
    unit_id: str | None = Field(default=None, pattern=IDENT)
    device_id: str | None = Field(default=None, pattern=IDENT)
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    emergency_contact_name: str | None = Field(default=None, max_length=200)
    emergency_contact_phone: str | None = Field(default=None, max_length=40)
    care_notes: str | None = Field(default=None, max_length=4000)


class ResidentPublic(ResidentBase):
    id: int
    community_id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    masked: bool = Field(description="True when names and phone numbers are masked and care notes withheld")


class ResidentListPublic(BaseModel):
    data: list[ResidentPublic]
    next_cursor: int | None


def present(caller: Caller, row: store.ResidentRow) -> ResidentPublic:
    """The one place that decides whether a caller sees a resident's personal data."""
    shown = row if can(caller, Permission.RESIDENT_PII) else store.masked(row)
    return ResidentPublic(**shown.__dict__)


def _check_device(conn: Conn, caller: Caller, device_id: str | None, community_id: str) -> None:
    if device_id is None:
        return
    device = device_store.get_device(conn, device_id=device_id, communities=[community_id])
    if device is None or not tenancy.sees_community(caller, device.community_id):
        raise NotFound(f"device {device_id!r} not found in community {community_id!r}", field="body.device_id")


@router.get("", response_model=ResidentListPublic)
def list_residents(caller: Reader, conn: Conn, limit: Limit = 100,
                   cursor: IdCursor = None,
                   community: Annotated[str | None, Query(pattern=IDENT)] = None,
                   device: Annotated[str | None, Query(pattern=IDENT)] = None) -> ResidentListPublic:
    rows = store.list_residents(conn, communities=visible(caller, community), device_id=device, after_id=cursor,
                                limit=limit)
    return ResidentListPublic(data=[present(caller, r) for r in rows],
                              next_cursor=rows[-1].id if len(rows) == limit else None)


@router.get("/{resident_id}", response_model=ResidentPublic)
def get_resident(resident_id: RowId, caller: Reader, conn: Conn) -> ResidentPublic:
    row = store.get_resident(conn, resident_id=resident_id, communities=caller.communities)
    if row is None:
        raise NotFound(f"resident {resident_id} not found", field="path.resident_id")
    return present(caller, row)


@router.post("", response_model=ResidentPublic, status_code=201)
def create_resident(body: ResidentCreate, caller: Manager, conn: Conn) -> ResidentPublic:
    tenancy.require(caller, body.community_id, field="body.community_id")
    _check_device(conn, caller, body.device_id, body.community_id)
    row = store.create_resident(conn, community_id=body.community_id,
                                values=body.model_dump(exclude={"community_id"}))
    audit.record(conn, caller=caller, action="resident.create", community_id=row.community_id,
                 target_type="resident", target_id=row.id)
    return present(caller, row)


@router.patch("/{resident_id}", response_model=ResidentPublic)
def update_resident(resident_id: RowId, body: ResidentUpdate, caller: Manager, conn: Conn) -> ResidentPublic:
    current = store.get_resident(conn, resident_id=resident_id, communities=caller.communities)
    if current is None:
        raise NotFound(f"resident {resident_id} not found", field="path.resident_id")
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items()
              if v is not None or k in ("building_id", "unit_id", "device_id")}
    _check_device(conn, caller, values.get("device_id"), current.community_id)
    row = store.update_resident(conn, resident_id=resident_id, values=values)
    # The audit names the fields changed, never their values (they are personal data).
    audit.record(conn, caller=caller, action="resident.update", community_id=row.community_id,
                 target_type="resident", target_id=row.id, detail={"fields": sorted(values)})
    return present(caller, row)
