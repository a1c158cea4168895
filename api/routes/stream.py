"""The control room's live stream: alert and work-order changes as Server-Sent Events.

Each change is one SSE message (``id`` = change id, ``event`` = ``alert`` or
``work_order``, ``data`` = JSON). Only changes of the caller's communities are
read from the database, so another community's changes never reach the
socket. The reader is woken by PostgreSQL NOTIFY and also looks every
``stream_poll_seconds``; it re-checks the caller's token and communities
regularly and ends the stream when the token expires or is revoked.
Reconnecting with ``Last-Event-ID`` (browsers do it by themselves) resumes
after the last change received.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api.deps import api_key_header, authorize, get_pool, oauth2
from api.errors import ERROR_RESPONSES, ApiError
from api.security import Permission
from api.store.changes import CHANNEL, Change, changes_after_async, latest_id
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
                     "description": "Server-Sent Events: one `alert` or `work_order` message per change"}},
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
    settings = request.app.state.settings
    database_url = request.app.state.database_url
    return StreamingResponse(
        _changes(request, pool, secret, caller, start, database_url, settings.stream_poll_seconds,
                 settings.stream_keepalive_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _latest(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return latest_id(conn)


async def _changes(request: Request, pool: ConnectionPool, secret: str | None, caller: Caller, start: int,
                   database_url: str, poll_s: float, keepalive_s: float) -> AsyncIterator[str]:
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await conn.execute(f"LISTEN {CHANNEL}")
        cursor = start
        yield f"retry: 2000\n: stream of {caller.username}, after {cursor}\n\n"
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
                last_check = time.monotonic()
            changes = await changes_after_async(conn, communities=sorted(caller.communities), after_id=cursor)
            for change in changes:
                yield _message(change)
                cursor = change.id
            if changes:
                last_sent = time.monotonic()
                continue
            async for _ in conn.notifies(timeout=poll_s, stop_after=1):
                pass
            if time.monotonic() - last_sent >= keepalive_s:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
    finally:
        await conn.close()
