"""Login (OAuth2 password flow), logout, who am I."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from psycopg_pool import ConnectionPool
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api import audit
from api.clock import Now
from api.deps import Conn, Settings, allow, client_address, get_pool, oauth2
from api.errors import ERROR_RESPONSES, ErrorResponse, TooManyAttempts, Unauthorized
from api.security import ROLE_PERMISSIONS, Permission
from api.settings import ApiSettings
from api.throttle import Attempt, LoginGate
from api.users import Caller, as_caller, authenticate, get_user, issue_token, revoke_token

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


@router.post("/token", response_model=TokenPublic,
             responses={429: {"model": ErrorResponse,
                              "description": "Too many failed logins for this account from this address, or from "
                              "this address, or too many logins at once; see Retry-After (api/throttle.py)"}})
async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request,
                pool: Annotated[ConnectionPool, Depends(get_pool)], settings: Settings, now: Now) -> TokenPublic:
    """Exchange username and password for a bearer token that expires (``token_ttl_minutes``).

    Throttled per account+address pair, per address and per account (`api.throttle`); every success,
    failure and lock is audited. Logins take their turn at `api.throttle.LoginGate` before they reach the database.
    """
    address = client_address(request, settings)
    gate: LoginGate = request.app.state.login_gate
    async with gate.slot(address) as started:
        if not started:
            raise TooManyAttempts("too many logins at once; try again in 1 s", headers={"Retry-After": "1"})
        return await run_in_threadpool(_login, form.username, form.password, address, pool, settings, now)


def _login(username: str, password: str, address: str, pool: ConnectionPool, settings: ApiSettings,
           now: dt.datetime) -> TokenPublic:
    username = username[:MAX_USERNAME]
    # Its own transaction, committed whatever the answer: a failure must count although the request fails.
    with pool.connection() as conn, conn.transaction():
        attempt = Attempt(conn, username=username, address=address, policy=settings.throttle_policy(), now=now)
        verdict = attempt.verdict()
        if verdict.allowed:
            user, why = authenticate(conn, username=username, password=password)
            if user is None:
                locked = attempt.failed()
                _audit_failure(conn, username, address, why, locked, settings)
            else:
                attempt.succeeded()
                token, expires_at = issue_token(conn, user_id=user.id,
                                                ttl=dt.timedelta(minutes=settings.token_ttl_minutes))
                audit.record_about_user(conn, caller=as_caller(user, via="password"), action="auth.login", user=user,
                                        detail={"address": address})
    if not verdict.allowed:
        whose = {"locked": "this account from this address is locked",
                 "pair": "too many failed logins for this account from this address",
                 "address": "too many failed logins from this address",
                 "account": "too many failed logins for this account"}[verdict.why]
        raise TooManyAttempts(f"{whose}; try again in {verdict.retry_after} s",
                              headers={"Retry-After": str(verdict.retry_after)})
    if user is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials",
                           headers={"WWW-Authenticate": "Bearer"})
    return TokenPublic(access_token=token, expires_at=expires_at)


MAX_USERNAME = 200  # usernames are at most 64 characters: a longer one is a wrong one, kept short in the audit


def _audit_failure(conn: psycopg.Connection, username: str, address: str, why: str, locked: bool,
                   settings: ApiSettings) -> None:
    known = get_user(conn, username=username)
    detail = {"address": address, "reason": why}
    if known is not None:
        audit.record_about_user(conn, caller=None, action="auth.login_failed", user=known, detail=detail)
        if locked:
            audit.record_about_user(conn, caller=None, action="auth.lock", user=known,
                                    detail={"address": address, "seconds": settings.login_lock_seconds})
        return
    # Nobody's account: an entry of no community, for installation-wide administrators (api.tenancy).
    audit.record(conn, caller=None, action="auth.login_failed", target_type="user", target_id=username,
                 username=username, detail=detail, communities=[])
    if locked:
        audit.record(conn, caller=None, action="auth.lock", target_type="user", target_id=username,
                     username=username, detail={"address": address, "seconds": settings.login_lock_seconds},
                     communities=[])


@router.post("/logout", status_code=204)
def logout(caller: Annotated[Caller, Depends(allow(Permission.READ))],
           token: Annotated[str | None, Depends(oauth2)], conn: Conn) -> None:
    """Revoke the bearer token used for this request (API keys are revoked by an admin)."""
    if token and caller.via == "token":
        revoke_token(conn, token=token)
        user = get_user(conn, user_id=caller.user_id)
        if user is not None:
            audit.record_about_user(conn, caller=caller, action="auth.logout", user=user)


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
