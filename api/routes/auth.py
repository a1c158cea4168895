"""Login (OAuth2 password flow), logout, who am I."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import Conn, Settings, allow, oauth2
from api.errors import ERROR_RESPONSES, ErrorResponse, TooManyAttempts, Unauthorized
from api.security import ROLE_PERMISSIONS, Permission
from api.users import Caller, authenticate, clear_failures, issue_token, record_failure, recent_failures, revoke_token

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime


class MePublic(BaseModel):
    user_id: int
    username: str
    role: str
    communities: list[str]
    permissions: list[str]
    via: str
    all_communities: bool = False
    staff_id: str | None = None
    staff_name: str | None = None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/token", response_model=TokenPublic,
             responses={429: {"model": ErrorResponse, "description": "Too many failed logins; see Retry-After"}})
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, conn: Conn,
          settings: Settings) -> TokenPublic:
    """Exchange username and password for a bearer token that expires (``token_ttl_minutes``)."""
    window = dt.timedelta(seconds=settings.login_window_seconds)
    client = _client(request)
    if recent_failures(conn, username=form.username, client=client, window=window) >= settings.login_max_failures:
        raise TooManyAttempts(
            f"too many failed logins; try again in {settings.login_window_seconds} s",
            headers={"Retry-After": str(settings.login_window_seconds)},
        )
    user = authenticate(conn, username=form.username, password=form.password)
    if user is None:
        record_failure(conn, username=form.username, client=client)
        conn.commit()  # keep the failure although the request ends in an error (which rolls back)
        raise Unauthorized("wrong username or password", code="invalid_credentials",
                           headers={"WWW-Authenticate": "Bearer"})
    clear_failures(conn, username=form.username)
    token, expires_at = issue_token(conn, user_id=user.id, ttl=dt.timedelta(minutes=settings.token_ttl_minutes))
    return TokenPublic(access_token=token, expires_at=expires_at)


@router.post("/logout", status_code=204)
def logout(caller: Annotated[Caller, Depends(allow(Permission.READ))],
           token: Annotated[str | None, Depends(oauth2)], conn: Conn) -> None:
    """Revoke the bearer token used for this request (API keys are revoked by an admin)."""
    if token and caller.via == "token":
        revoke_token(conn, token=token)


@router.get("/me", response_model=MePublic)
def me(caller: Annotated[Caller, Depends(allow(Permission.READ))], conn: Conn) -> MePublic:
    person = conn.execute("SELECT s.staff_id, s.name FROM api_users u JOIN staff s ON s.staff_id = u.staff_id"
                          " WHERE u.id = %s", (caller.user_id,)).fetchone()
    return MePublic(
        user_id=caller.user_id, username=caller.username, role=caller.role, communities=sorted(caller.communities),
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[caller.role]), via=caller.via,
        all_communities=caller.all_communities,
        staff_id=person[0] if person else None, staff_name=person[1] if person else None,
    )
