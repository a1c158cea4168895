"""The audit log, newest first."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api import audit as store
from api.deps import Conn, allow, can
from api.tenancy import require
from api.errors import ERROR_RESPONSES
from api.params import IDENT, IdCursor, Limit
from api.security import Permission
from api.users import Caller

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)


class AuditEntryPublic(BaseModel):
    id: int
    at: dt.datetime
    username: str
    via: str
    action: str
    community_id: str | None
    target_type: str
    target_id: str
    detail: dict[str, Any]


class AuditListPublic(BaseModel):
    data: list[AuditEntryPublic]
    next_cursor: int | None


@router.get("", response_model=AuditListPublic)
def list_audit(caller: Annotated[Caller, Depends(allow(Permission.AUDIT_READ))], conn: Conn, limit: Limit = 100,
               cursor: IdCursor = None, community: Annotated[str | None, Query(pattern=IDENT)] = None,
               action: Annotated[str | None, Query(pattern=r"^[a-z_.]{1,64}$")] = None) -> AuditListPublic:
    """Entries all of whose communities are the caller's (`api.tenancy`); entries about user accounts (logins,
    passwords, keys, administration) only for roles with user.manage."""
    if community is not None:
        require(caller, community, field="query.community")
    rows = store.list_entries(conn, caller=caller, accounts=can(caller, Permission.USER_MANAGE),
                              community=community, before_id=cursor, action=action, limit=limit)
    return AuditListPublic(data=[AuditEntryPublic(**r.__dict__) for r in rows],
                           next_cursor=rows[-1].id if len(rows) == limit else None)
