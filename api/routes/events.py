"""Stored events (newest first, keyset pages) and the gateway's dead letters."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import Conn, Reader, allow, visible
from api.errors import ERROR_RESPONSES, InvalidInput
from api.pagination import decode_cursor, encode_cursor
from api.params import IDENT, Cursor, Limit, Since, Until, cursor_time, time_range
from api.security import Permission
from api.store import telemetry
from api.users import Caller

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)


class EventPublic(BaseModel):
    time: dt.datetime
    received_at: dt.datetime
    community_id: str
    device_id: str
    device_type: str
    stream: str
    type: str
    msg_id: str
    value: float | None
    fields: dict[str, Any]


class EventListPublic(BaseModel):
    data: list[EventPublic]
    next_cursor: str | None


class DeadLetterPublic(BaseModel):
    id: int
    received_at: dt.datetime
    topic: str
    reason: str
    detail: str
    community_id: str | None
    device_id: str | None
    payload_text: str
    payload_size: int
    device_name: str | None = Field(default=None, description="The registered device's name, when the topic "
                                    "named one of the letter's community")


class DeadLetterListPublic(BaseModel):
    data: list[DeadLetterPublic]
    next_cursor: str | None


@router.get("/events", response_model=EventListPublic)
def list_events(caller: Reader, conn: Conn, limit: Limit = 100, cursor: Cursor = None,
                community: Annotated[str | None, Query(pattern=IDENT)] = None,
                device: Annotated[str | None, Query(pattern=IDENT)] = None,
                type: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")] = None,
                since: Since = None, until: Until = None) -> EventListPublic:
    """Events of the caller's communities, newest first; filter by community, device, type and time."""
    start, end = time_range(since, until, default_span=None)
    key = decode_cursor(cursor, arity=3)
    after = None
    if key is not None:
        after = (cursor_time(key[0]), str(key[1]), str(key[2]))
    rows = telemetry.list_events(conn, communities=visible(caller, community), device_id=device, event_type=type,
                                 since=start, until=end, after=after, limit=limit)
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = encode_cursor([last.time.isoformat(), last.device_id, last.msg_id])
    return EventListPublic(data=[EventPublic(**r.__dict__) for r in rows], next_cursor=next_cursor)


@router.get("/dead-letters", response_model=DeadLetterListPublic)
def list_dead_letters(caller: Annotated[Caller, Depends(allow(Permission.DEAD_LETTERS))], conn: Conn,
                      limit: Limit = 100, cursor: Cursor = None,
                      community: Annotated[str | None, Query(pattern=IDENT)] = None,
                      reason: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")] = None) -> DeadLetterListPublic:
    """Rejected messages with their reason. Letters whose topic named no community belong to no community
    (`api.tenancy`): installation-wide administrators only."""
    key = decode_cursor(cursor, arity=1)
    before = None
    if key is not None:
        if not isinstance(key[0], int) or not 0 < key[0] < 2**63:
            raise InvalidInput("cursor is not one this API returned", field="query.cursor")
        before = key[0]
    rows = telemetry.list_dead_letters(
        conn, communities=visible(caller, community),
        include_unscoped=community is None and caller.all_communities,
        reason=reason, before_id=before, limit=limit,
    )
    return DeadLetterListPublic(data=[DeadLetterPublic(**r.__dict__) for r in rows],
                                next_cursor=encode_cursor([rows[-1].id]) if len(rows) == limit else None)
