"""The demo's notification sink: a "phone" that receives what on-call sends by webhook.

``steward run`` points the on-call webhook channel at ``POST /demo/phone/inbox``
of its own API, with a secret generated for the run; the receiver checks the
HMAC signature and timestamp exactly as an SMS/IM gateway should, and keeps
the message. ``GET /demo/phone`` lists the messages of the caller's
communities, newest first, with their signed acknowledge/resolve links, so a
newcomer sees the page arrive and can act on it from the "phone" panel.
Without a sink secret (everything but the demo) both routes answer 404.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel

from api.clock import Now
from api.deps import Conn, Reader, visible
from api.errors import ERROR_RESPONSES, Forbidden, InvalidInput, NotFound
from api.params import IDENT
from oncall.channels.webhook import signature

router = APIRouter(prefix="/demo", tags=["demo"], responses=ERROR_RESPONSES)
MAX_SKEW_S = 300
MAX_BODY = 64 * 1024


class PhoneMessage(BaseModel):
    id: int
    received_at: dt.datetime
    community_id: str | None
    staff_id: str
    staff_name: str | None
    incident_id: int | None
    subject: str
    body: str
    links: dict[str, str]


def _secret(request: Request) -> str:
    secret = getattr(request.app.state, "demo_phone_secret", None)
    if not secret:
        raise NotFound("the demo phone is only served by `steward run`")
    return secret


@router.post("/phone/inbox", status_code=204, include_in_schema=False)
async def receive(now: Now, request: Request, conn: Conn,
                  x_steward_timestamp: Annotated[str | None, Header()] = None,
                  x_steward_signature: Annotated[str | None, Header()] = None) -> None:
    """The on-call webhook's receiver (signed like any SMS/IM gateway would check it)."""
    secret = _secret(request)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidInput("body too large", field="body")
    if not x_steward_timestamp or not x_steward_signature or not x_steward_timestamp.isdigit():
        raise Forbidden("unsigned message", code="bad_signature")
    if abs(now.timestamp() - int(x_steward_timestamp)) > MAX_SKEW_S:
        raise Forbidden("stale timestamp", code="bad_signature")
    if not hmac.compare_digest(signature(secret, x_steward_timestamp, body), x_steward_signature):
        raise Forbidden("signature does not match", code="bad_signature")
    try:
        msg: dict[str, Any] = json.loads(body)
        staff_id = str(msg["staff_id"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("not a Steward on-call message", field="body") from None
    links = {k: str(msg[f"{k}_url"]) for k in ("ack", "resolve") if msg.get(f"{k}_url")}
    incident = msg.get("incident_id")
    conn.execute(
        "INSERT INTO demo_phone_messages (received_at, community_id, staff_id, incident_id, subject, body, links)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (now, msg.get("community_id"), staff_id, incident if isinstance(incident, int) else None,
         str(msg.get("subject", ""))[:500], str(msg.get("text", ""))[:4000], json.dumps(links)),
    )


@router.get("/phone", response_model=list[PhoneMessage])
def phone(request: Request, caller: Reader, conn: Conn,
          community: Annotated[str | None, Query(pattern=IDENT)] = None,
          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[PhoneMessage]:
    """What the demo's staff phones received, newest first, with their signed action links."""
    _secret(request)
    rows = conn.execute(
        "SELECT m.id, m.received_at, m.community_id, m.staff_id, s.name, m.incident_id, m.subject, m.body, m.links"
        " FROM demo_phone_messages m LEFT JOIN staff s ON s.staff_id = m.staff_id"
        " WHERE m.community_id = ANY(%s) ORDER BY m.id DESC LIMIT %s",
        (visible(caller, community), limit),
    ).fetchall()
    return [PhoneMessage(id=r[0], received_at=r[1], community_id=r[2], staff_id=r[3], staff_name=r[4],
                         incident_id=r[5], subject=r[6], body=r[7], links=r[8] or {}) for r in rows]
