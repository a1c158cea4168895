"""User administration and integration API keys.

An admin administers exactly the users whose communities are all within their
own (`api.tenancy.administers`); every other user, and their keys, is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api import audit, tenancy
from api.deps import Conn, allow
from api.errors import ERROR_RESPONSES, Conflict, ErrorResponse, InvalidInput, NotFound
from api.params import RowId
from api.security import Role
from api.security import Permission
from api import users as store
from api.body import Body
from api.users import Caller

router = APIRouter(prefix="/users", tags=["users"], responses=ERROR_RESPONSES)
Admin = Annotated[Caller, Depends(allow(Permission.USER_MANAGE))]
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$"
COMMUNITY = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class UserCreate(Body):
    username: str = Field(pattern=USERNAME)
    password: str = Field(min_length=10, max_length=200)
    role: Role
    communities: list[Annotated[str, Field(pattern=COMMUNITY)]] = Field(default_factory=list, max_length=100)
    display_name: str = Field(default="", max_length=200)
    all_communities: bool = Field(default=False, description="An admin of every community (only an "
                                    "installation-wide admin may grant it); then `communities` may be empty")


class UserUpdate(Body):
    password: str | None = Field(default=None, min_length=10, max_length=200)
    role: Role | None = None
    active: bool | None = None
    communities: list[Annotated[str, Field(pattern=COMMUNITY)]] | None = Field(default=None, min_length=1,
                                                                                max_length=100)
    display_name: str | None = Field(default=None, max_length=200)
    all_communities: bool | None = None


class UserPublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    communities: list[str]
    created_at: dt.datetime
    all_communities: bool


class StaffLink(Body):
    staff_id: str | None = Field(pattern=COMMUNITY, description="A staff member of one of the user's communities; "
                                 "null unlinks")


class StaffLinked(BaseModel):
    user_id: int
    staff_id: str | None


class ApiKeyCreate(Body):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyPublic(BaseModel):
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyIssued(ApiKeyPublic):
    key: str = Field(description="Send as X-API-Key; shown once, only a digest is stored")


def _public(user: store.UserRecord) -> UserPublic:
    return UserPublic(id=user.id, username=user.username, display_name=user.display_name, role=user.role,
                      active=user.active, communities=list(user.communities), created_at=user.created_at,
                      all_communities=user.all_communities)


def _user_or_404(conn: psycopg.Connection, caller: Caller, user_id: int) -> store.UserRecord:
    user = store.get_user(conn, user_id=user_id)
    if user is None or not tenancy.administers(caller, user):
        raise NotFound(f"user {user_id} not found", field="path.user_id")
    return user


def _check_scope(caller: Caller, communities: list[str] | None, all_communities: bool | None,
                 role: Role | None) -> None:
    """The new user's communities must all be the admin's; only an installation-wide admin makes another."""
    for community in communities or ():
        tenancy.require(caller, community, field="body.communities")
    if all_communities and not caller.all_communities:
        raise NotFound("installation scope not found", field="body.all_communities")
    if all_communities and role not in (None, Role.ADMIN):
        raise InvalidInput("only an admin may be installation-wide", field="body.role")


@router.get("", response_model=list[UserPublic])
def list_users(caller: Admin, conn: Conn) -> list[UserPublic]:
    """The users this admin administers: those whose communities are all the admin's."""
    return [_public(u) for u in store.list_users(conn) if tenancy.administers(caller, u)]


@router.post("", response_model=UserPublic, status_code=201,
             responses={409: {"model": ErrorResponse, "description": "The username is taken"}})
def create_user(body: UserCreate, caller: Admin, conn: Conn) -> UserPublic:
    _check_scope(caller, body.communities, body.all_communities, body.role)
    if not body.communities and not body.all_communities:
        raise InvalidInput("a user needs at least one community", field="body.communities")
    if store.username_taken(conn, body.username):  # in any case: Admin-South is admin-south
        raise Conflict(f"username {body.username!r} is taken (usernames are unique regardless of case)",
                       field="body.username")
    try:
        user = store.create_user(conn, username=body.username, password=body.password, role=body.role,
                                 community_ids=body.communities, display_name=body.display_name,
                                 all_communities=body.all_communities)
    except psycopg.errors.UniqueViolation:  # created concurrently between the check and here
        raise Conflict(f"username {body.username!r} is taken (usernames are unique regardless of case)",
                       field="body.username") from None
    audit.record_about_user(conn, caller=caller, action="user.create", user=user,
                            detail={"username": user.username, "role": user.role.value,
                                    "communities": list(user.communities), "all_communities": user.all_communities})
    return _public(user)


@router.get("/{user_id}", response_model=UserPublic)
def get_user(user_id: RowId, caller: Admin, conn: Conn) -> UserPublic:
    return _public(_user_or_404(conn, caller, user_id))


@router.patch("/{user_id}", response_model=UserPublic,
              responses={409: {"model": ErrorResponse, "description": "An admin cannot deactivate or demote themselves"}})
def update_user(user_id: RowId, body: UserUpdate, caller: Admin, conn: Conn) -> UserPublic:
    user = _user_or_404(conn, caller, user_id)
    if user.id == caller.user_id:
        # The last admin of a community (or of the installation) would lock everybody
        # out of user management: another admin must do it.
        if body.active is False:
            raise Conflict("you cannot deactivate yourself; another admin can", field="body.active")
        if body.role is not None and body.role is not Role.ADMIN:
            raise Conflict("you cannot take the admin role from yourself; another admin can", field="body.role")
    _check_scope(caller, body.communities, body.all_communities, body.role)
    wide = user.all_communities if body.all_communities is None else body.all_communities
    if wide and (body.role or user.role) is not Role.ADMIN:
        raise InvalidInput("an installation-wide user must stay an admin (set all_communities false first)",
                           field="body.role")
    if not wide and not (body.communities or user.communities):
        raise InvalidInput("a user needs at least one community", field="body.communities")
    store.update_user(conn, user_id=user.id, role=body.role, active=body.active, password=body.password,
                      display_name=body.display_name, community_ids=body.communities,
                      all_communities=body.all_communities)
    changed = sorted(k for k, v in body.model_dump(exclude_unset=True).items() if v is not None)
    # Both before and after: the entry belongs to every community the user had or has now.
    after = store.get_user(conn, user_id=user.id)
    assert after is not None
    audit.record(conn, caller=caller, action="user.update", target_type="user", target_id=user.id,
                 detail={"fields": changed},
                 communities=[] if user.all_communities or after.all_communities
                 else set(user.communities) | set(after.communities))
    if body.password is not None:
        audit.record_about_user(conn, caller=caller, action="user.password_change", user=after)
    return _public(after)


@router.put("/{user_id}/staff", response_model=StaffLinked,
            responses={409: {"model": ErrorResponse, "description": "The staff member is linked to another user"}})
def link_staff(user_id: RowId, body: StaffLink, caller: Admin, conn: Conn) -> StaffLinked:
    """Link the login to a staff member, so that what it acknowledges and accepts is done by that person."""
    user = _user_or_404(conn, caller, user_id)
    if body.staff_id is not None:
        row = conn.execute("SELECT community_id FROM staff WHERE staff_id = %s", (body.staff_id,)).fetchone()
        if row is None or not tenancy.sees_community(caller, row[0]) or not tenancy.belongs_to(user, row[0]):
            raise NotFound(f"staff member {body.staff_id!r} not found in the user's communities",
                           field="body.staff_id")
        other = conn.execute("SELECT id FROM api_users WHERE staff_id = %s AND id <> %s",
                             (body.staff_id, user.id)).fetchone()
        if other is not None:
            raise Conflict(f"staff member {body.staff_id!r} is linked to another user", field="body.staff_id")
    conn.execute("UPDATE api_users SET staff_id = %s WHERE id = %s", (body.staff_id, user.id))
    audit.record_about_user(conn, caller=caller, action="user.staff_link", user=user,
                            detail={"staff_id": body.staff_id})
    return StaffLinked(user_id=user.id, staff_id=body.staff_id)


@router.get("/{user_id}/api-keys", response_model=list[ApiKeyPublic])
def list_api_keys(user_id: RowId, caller: Admin, conn: Conn) -> list[ApiKeyPublic]:
    user = _user_or_404(conn, caller, user_id)
    return [ApiKeyPublic(**k.__dict__) for k in store.list_api_keys(conn, user_id=user.id)]


@router.post("/{user_id}/api-keys", response_model=ApiKeyIssued, status_code=201)
def create_api_key(user_id: RowId, body: ApiKeyCreate, caller: Admin, conn: Conn) -> ApiKeyIssued:
    """A key for an integration; it acts as this user (same role, same communities)."""
    user = _user_or_404(conn, caller, user_id)
    key, record = store.create_api_key(conn, user_id=user.id, name=body.name)
    audit.record_about_user(conn, caller=caller, action="api_key.create", user=user, target_type="api_key",
                            target_id=record.id, detail={"user_id": user.id, "name": body.name, "prefix": record.prefix})
    return ApiKeyIssued(key=key, **record.__dict__)


@router.delete("/{user_id}/api-keys/{key_id}", status_code=204)
def revoke_api_key(user_id: RowId, key_id: RowId, caller: Admin, conn: Conn) -> None:
    user = _user_or_404(conn, caller, user_id)
    if not store.revoke_api_key(conn, key_id=key_id, user_id=user.id):
        raise NotFound(f"API key {key_id} not found", field="path.key_id")
    audit.record_about_user(conn, caller=caller, action="api_key.revoke", user=user, target_type="api_key",
                            target_id=key_id, detail={"user_id": user.id})
