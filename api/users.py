"""Users, their communities, login tokens and API keys (login throttling: `api.throttle`).

Plain functions over a psycopg connection, keyword-only, no HTTP. The first
administrator is created with `ensure_admin` (``steward run`` calls it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from api.security import (
    API_KEY_PREFIX,
    DUMMY_HASH,
    TOKEN_PREFIX,
    Role,
    digest,
    hash_password,
    new_secret,
    verify_password,
)


@dataclass(frozen=True)
class Caller:
    """Who is asking: the user, their role, their communities and how they authenticated."""

    user_id: int
    username: str
    role: Role
    communities: frozenset[str]  # what SQL filters by; see api.tenancy
    via: str  # 'token' or 'api_key'
    all_communities: bool = False  # an administrator of every community (api.tenancy)


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    communities: tuple[str, ...]
    created_at: dt.datetime
    all_communities: bool = False


_USER_SELECT = (
    "SELECT u.id, u.username, u.display_name, u.role, u.active, "
    "COALESCE(array_agg(c.community_id ORDER BY c.community_id) FILTER (WHERE c.community_id IS NOT NULL), '{}'), "
    "u.created_at, u.all_communities FROM api_users u LEFT JOIN api_user_communities c ON c.user_id = u.id "
)


def _user(row: tuple) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], Role(row[3]), row[4], tuple(row[5]), row[6], row[7])


def create_user(conn: psycopg.Connection, *, username: str, password: str, role: Role | str,
                community_ids: Iterable[str], display_name: str = "", all_communities: bool = False) -> UserRecord:
    """A user of ``community_ids``; ``all_communities`` (admins only) sees every community instead."""
    communities = sorted(set(community_ids))
    if not communities and not all_communities:
        raise ValueError("community_ids: a user must see at least one community")
    if all_communities and Role(role) is not Role.ADMIN:
        raise ValueError("all_communities: only an admin may be installation-wide")
    row = conn.execute(
        "INSERT INTO api_users (username, display_name, role, password_hash, all_communities) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (username, display_name, str(Role(role)), hash_password(password), all_communities),
    ).fetchone()
    assert row is not None
    set_communities(conn, user_id=row[0], community_ids=communities)
    found = get_user(conn, user_id=row[0])
    assert found is not None
    return found


def set_communities(conn: psycopg.Connection, *, user_id: int, community_ids: Iterable[str]) -> None:
    conn.execute("DELETE FROM api_user_communities WHERE user_id = %s", (user_id,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO api_user_communities (user_id, community_id) VALUES (%s, %s)",
            [(user_id, c) for c in sorted(set(community_ids))],
        )


def get_user(conn: psycopg.Connection, *, user_id: int | None = None, username: str | None = None) -> UserRecord | None:
    if user_id is not None:
        row = conn.execute(_USER_SELECT + "WHERE u.id = %s GROUP BY u.id", (user_id,)).fetchone()
    else:
        row = conn.execute(_USER_SELECT + "WHERE u.username = %s GROUP BY u.id", (username,)).fetchone()
    return _user(row) if row else None


def username_taken(conn: psycopg.Connection, username: str) -> bool:
    """True when a user has this name in any case (unique index on lower(username), migration 0063)."""
    return conn.execute("SELECT 1 FROM api_users WHERE lower(username) = lower(%s)", (username,)).fetchone() is not None


def list_users(conn: psycopg.Connection) -> list[UserRecord]:
    """Every user, by id; `api.tenancy.administers` decides which of them a caller gets."""
    rows = conn.execute(_USER_SELECT + "GROUP BY u.id ORDER BY u.id").fetchall()
    return [_user(r) for r in rows]


# Where a community comes into being: a device registered in it, a user, team,
# staff member, resident or on-call schedule given to it. Every other row of a
# community (events, alerts, work orders...) belongs to one of these.
_KNOWN_COMMUNITIES = " UNION ".join(
    f'SELECT community_id COLLATE "C" AS community_id FROM {table}'
    for table in ("devices", "api_user_communities", "teams", "staff", "residents", "oncall_schedules",
                  "oncall_policies")
)


def known_communities(conn: psycopg.Connection) -> list[str]:
    """Every community the installation knows, sorted (what an installation-wide user's SQL filters by)."""
    return [r[0] for r in conn.execute(f"SELECT community_id FROM ({_KNOWN_COMMUNITIES}) c ORDER BY 1").fetchall()
            if r[0] != "*"]


def update_user(conn: psycopg.Connection, *, user_id: int, role: Role | None = None, active: bool | None = None,
                password: str | None = None, display_name: str | None = None,
                community_ids: Iterable[str] | None = None, all_communities: bool | None = None) -> None:
    if all_communities is not None:
        conn.execute("UPDATE api_users SET all_communities = %s WHERE id = %s", (all_communities, user_id))
    if role is not None:
        conn.execute("UPDATE api_users SET role = %s WHERE id = %s", (str(role), user_id))
    if active is not None:
        conn.execute("UPDATE api_users SET active = %s WHERE id = %s", (active, user_id))
        if not active:
            conn.execute("DELETE FROM api_tokens WHERE user_id = %s", (user_id,))
    if password is not None:
        conn.execute("UPDATE api_users SET password_hash = %s WHERE id = %s", (hash_password(password), user_id))
    if display_name is not None:
        conn.execute("UPDATE api_users SET display_name = %s WHERE id = %s", (display_name, user_id))
    if community_ids is not None:
        set_communities(conn, user_id=user_id, community_ids=community_ids)


def ensure_admin(conn: psycopg.Connection, *, username: str, password: str,
                 community_ids: Iterable[str]) -> UserRecord:
    """Create the installation-wide administrator if missing; otherwise add any missing communities.

    A new first administrator sees every community (``all_communities``), so a
    fresh installation with no community yet can start and be set up through
    the API. The password and scope of an existing administrator are left
    alone, so a restart never undoes a change made through the API nor widens
    what an existing user sees.
    """
    existing = get_user(conn, username=username)
    if existing is None:
        return create_user(conn, username=username, password=password, role=Role.ADMIN, community_ids=community_ids,
                           display_name="Administrator", all_communities=True)
    wanted = set(existing.communities) | set(community_ids)
    if wanted != set(existing.communities):
        set_communities(conn, user_id=existing.id, community_ids=wanted)
    return get_user(conn, user_id=existing.id) or existing


def authenticate(conn: psycopg.Connection, *, username: str, password: str) -> tuple[UserRecord | None, str]:
    """The user when the password is right and the account active; else None and why (for the audit)."""
    row = conn.execute("SELECT id, password_hash, active FROM api_users WHERE username = %s", (username,)).fetchone()
    if row is None:
        verify_password(DUMMY_HASH, password)  # same cost as a real check
        return None, "unknown_user"
    if not verify_password(row[1], password):
        return None, "wrong_password"
    if not row[2]:
        return None, "inactive"
    return get_user(conn, user_id=row[0]), ""


def as_caller(user: UserRecord, *, via: str) -> Caller:
    """The user as the actor of an audit entry (a login, before any token exists)."""
    return Caller(user.id, user.username, user.role, frozenset(user.communities), via,
                  all_communities=user.all_communities)


def issue_token(conn: psycopg.Connection, *, user_id: int, ttl: dt.timedelta) -> tuple[str, dt.datetime]:
    token = new_secret(TOKEN_PREFIX)
    row = conn.execute(
        "INSERT INTO api_tokens (token_sha256, user_id, expires_at) VALUES (%s, %s, now() + %s) RETURNING expires_at",
        (digest(token), user_id, ttl),
    ).fetchone()
    assert row is not None
    return token, row[0]


def revoke_token(conn: psycopg.Connection, *, token: str) -> None:
    conn.execute("DELETE FROM api_tokens WHERE token_sha256 = %s", (digest(token),))


def caller_for_secret(conn: psycopg.Connection, *, secret: str) -> Caller | None:
    """The caller behind a login token or an API key, or None when it is unknown, expired or revoked."""
    if secret.startswith(API_KEY_PREFIX):
        row = conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE key_sha256 = %s AND revoked_at IS NULL RETURNING user_id",
            (digest(secret),),
        ).fetchone()
        via = "api_key"
    else:
        row = conn.execute(
            "SELECT user_id FROM api_tokens WHERE token_sha256 = %s AND expires_at > now()", (digest(secret),)
        ).fetchone()
        via = "token"
    if row is None:
        return None
    user = get_user(conn, user_id=row[0])
    if user is None or not user.active:
        return None
    if user.all_communities:
        return Caller(user.id, user.username, user.role, frozenset(known_communities(conn)) | set(user.communities),
                      via, all_communities=True)
    return Caller(user.id, user.username, user.role, frozenset(user.communities), via)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def create_api_key(conn: psycopg.Connection, *, user_id: int, name: str) -> tuple[str, ApiKeyRecord]:
    """A new key; the plaintext is returned here once and only its digest is kept."""
    key = new_secret(API_KEY_PREFIX)
    row = conn.execute(
        "INSERT INTO api_keys (user_id, name, prefix, key_sha256) VALUES (%s, %s, %s, %s) "
        "RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at",
        (user_id, name, key[: len(API_KEY_PREFIX) + 8], digest(key)),
    ).fetchone()
    assert row is not None
    return key, ApiKeyRecord(*row)


def list_api_keys(conn: psycopg.Connection, *, user_id: int) -> list[ApiKeyRecord]:
    rows = conn.execute(
        "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys "
        "WHERE user_id = %s ORDER BY id", (user_id,)
    ).fetchall()
    return [ApiKeyRecord(*r) for r in rows]


def revoke_api_key(conn: psycopg.Connection, *, key_id: int, user_id: int) -> bool:
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = %s AND user_id = %s RETURNING id",
        (key_id, user_id),
    ).fetchone()
    return row is not None
