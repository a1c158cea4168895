"""The control room's live stream: alert and work-order changes as Server-Sent Events.

Each change is one SSE message (``id`` = change id, ``event`` = ``alert`` or
``work_order``, ``data`` = JSON). Changes come from the process's one database
listener (`api.hub.ChangeHub`), which hands a stream only the rows of the
caller's communities, so another community's changes never reach the socket.
A stream holds no database connection: it borrows one from the pool for a
moment to catch up (``Last-Event-ID`` / ``?after=``, or after falling a whole
queue behind) and to re-check the caller's token and communities every
``stream_keepalive_seconds``; it ends (``event: end``) when the token expires or
is revoked. Open streams are capped per user (``stream_max_per_user``) and in
all (``stream_max_total``): beyond, 429 ``too_many_streams`` with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api import tenancy
from api.deps import api_key_header, authorize, get_pool, oauth2
from api.errors import ERROR_RESPONSES, ApiError, ErrorResponse, TooManyAttempts
from api.hub import ChangeHub, Subscription, TooManyStreams
from api.security import Permission
from api.store.changes import Change, changes_after, latest_id
from api.users import Caller

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"], responses=ERROR_RESPONSES)


def _message(change: Change) -> str:
    data = {"id": change.id, "at": change.at.isoformat(), "community_id": change.community_id,
            "entity": change.entity, "entity_id": change.entity_id, "change": change.change, "data": change.data}
    return f"id: {change.id}\nevent: {change.entity}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                     "description": "Server-Sent Events: one `alert` or `work_order` message per change"},
               429: {"model": ErrorResponse, "description": "Too many live streams open for this user or in all "
                                                           "(`too_many_streams`; see Retry-After)"}},
)
async def stream(
    request: Request,
    pool: Annotated[ConnectionPool, Depends(get_pool)],
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
    access_token: Annotated[str | None, Query(max_length=200, description="The bearer token, for EventSource clients that cannot send headers")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Resume after this change id")] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    secret = api_key or token or access_token
    caller = await run_in_threadpool(authorize, pool, secret, Permission.READ)
    start = after
    if start is None and last_event_id is not None and last_event_id.isdigit():
        start = int(last_event_id)
    if start is None:
        # Fixed before the answer starts, so nothing committed after the client sees 200 is missed.
        start = await run_in_threadpool(_latest, pool)
    hub: ChangeHub = request.app.state.hub
    try:
        subscription = hub.subscribe(caller)
    except TooManyStreams as exc:
        raise TooManyAttempts(exc.message, code="too_many_streams",
                              headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    settings = request.app.state.settings
    return StreamingResponse(
        _changes(request, pool, hub, subscription, secret, caller, start, settings.stream_poll_seconds,
                 settings.stream_keepalive_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


RETRY_AFTER_S = 5


def _latest(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return latest_id(conn)


def _catch_up(pool: ConnectionPool, caller: Caller, after_id: int, up_to: int) -> list[Change]:
    with pool.connection() as conn:
        return changes_after(conn, communities=sorted(caller.communities), after_id=after_id, up_to=up_to, limit=200)


async def _changes(request: Request, pool: ConnectionPool, hub: ChangeHub, subscription: Subscription,
                   secret: str | None, caller: Caller, start: int, poll_s: float,
                   keepalive_s: float) -> AsyncIterator[str]:
    try:
        cursor = start
        yield f"retry: 2000\n: stream of {caller.username}, after {cursor}\n\n"
        # What was committed before this stream joined the hub comes from the database, page by page.
        while cursor < subscription.joined_at:
            rows = await run_in_threadpool(_catch_up, pool, subscription.caller, cursor, subscription.joined_at)
            for change in rows:
                yield _message(change)
                cursor = change.id
            if len(rows) < 200:
                break
        last_sent = last_check = time.monotonic()
        stopping = request.app.state.stopping
        while not stopping.is_set() and not await request.is_disconnected():
            if time.monotonic() - last_check >= keepalive_s:
                # The token may have expired or been revoked, the communities may have changed.
                try:
                    caller = await run_in_threadpool(authorize, pool, secret, Permission.READ)
                except ApiError as exc:
                    yield f"event: end\ndata: {json.dumps({'code': exc.code, 'message': exc.message})}\n\n"
                    return
                subscription.caller = caller
                last_check = time.monotonic()
            if subscription.overflowed:
                # A whole queue behind: drop it and read the rest from the database, up to the hub's cursor.
                up_to = hub.cursor
                while not subscription.queue.empty():
                    subscription.queue.get_nowait()
                subscription.overflowed = False
                while cursor < up_to:
                    rows = await run_in_threadpool(_catch_up, pool, subscription.caller, cursor, up_to)
                    for change in rows:
                        yield _message(change)
                        cursor = change.id
                    if len(rows) < 200:
                        break
            try:
                change = await asyncio.wait_for(subscription.queue.get(), timeout=poll_s)
            except TimeoutError:
                if time.monotonic() - last_sent >= keepalive_s:
                    yield ": keepalive\n\n"
                    last_sent = time.monotonic()
                continue
            if change.id > cursor and tenancy.sees_community(subscription.caller, change.community_id):
                yield _message(change)
                cursor = change.id
                last_sent = time.monotonic()
    finally:
        hub.unsubscribe(subscription)
