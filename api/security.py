"""Roles, permissions, password hashing and opaque secrets (tokens, API keys).

The role → permission table is the one place that says who may do what; the
`api.deps.allow` dependency checks it for every route.
"""

from __future__ import annotations

import enum
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Role(enum.StrEnum):
    OPERATOR = "operator"  # control room: watches alerts, acknowledges, dispatches, calls residents back
    TECHNICIAN = "technician"  # on site: acknowledges and works the orders given to them
    SUPERVISOR = "supervisor"  # runs a team: everything operators do, on-call rosters, residents' records
    MANAGER = "manager"  # reads KPIs and reports; changes nothing
    ADMIN = "admin"  # users, devices and credentials


class Permission(enum.StrEnum):
    READ = "read"  # alerts, work orders, devices, events, series, KPIs of own communities
    ALERT_ACT = "alert.act"  # acknowledge, comment, resolve, assign, escalate
    WORKORDER_MANAGE = "workorder.manage"  # create, dispatch, assign, verify, return visit
    WORKORDER_WORK = "workorder.work"  # move an order through its field steps (start, complete)
    DEVICE_MANAGE = "device.manage"  # registry create/update/retire, MQTT credentials
    DEAD_LETTERS = "dead_letters.read"
    RESIDENT_PII = "resident.pii"  # names, phone numbers, care notes unmasked
    RESIDENT_MANAGE = "resident.manage"
    ONCALL_MANAGE = "oncall.manage"
    AUDIT_READ = "audit.read"
    USER_MANAGE = "user.manage"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({P.READ, P.ALERT_ACT, P.WORKORDER_MANAGE, P.DEAD_LETTERS, P.RESIDENT_PII}),
    Role.TECHNICIAN: frozenset({P.READ, P.ALERT_ACT, P.WORKORDER_WORK}),
    Role.SUPERVISOR: frozenset({
        P.READ, P.ALERT_ACT, P.WORKORDER_MANAGE, P.WORKORDER_WORK, P.DEAD_LETTERS, P.RESIDENT_PII,
        P.RESIDENT_MANAGE, P.ONCALL_MANAGE, P.AUDIT_READ,
    }),
    Role.MANAGER: frozenset({P.READ, P.AUDIT_READ}),
    Role.ADMIN: frozenset(Permission),
}

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Checked against an unknown username too, so a login takes as long whether or not the user exists.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def new_secret(prefix: str) -> str:
    """An opaque bearer secret, e.g. ``stw_t_...`` (token) or ``stw_k_...`` (API key)."""
    return f"{prefix}{secrets.token_urlsafe(32)}"


def digest(secret: str) -> bytes:
    # Tokens carry 256 random bits, so a fast digest is safe to store and look up.
    return hashlib.sha256(secret.encode()).digest()


TOKEN_PREFIX = "stw_t_"
API_KEY_PREFIX = "stw_k_"
