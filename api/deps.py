"""The dependencies every route uses: a database connection and THE authorization check.

`allow(permission)` authenticates the caller (bearer token or ``X-API-Key``),
checks the role's permission (403) and hands the route a `Caller` whose
``communities`` every data function filters by. Which communities' data the
caller sees is decided by the tenancy rule in `api.tenancy` (404, never 403).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from psycopg_pool import ConnectionPool

from api import tenancy
from api.errors import Forbidden, Unauthorized
from api.security import ROLE_PERMISSIONS, Permission
from api.settings import ApiSettings
from api.users import Caller, caller_for_secret

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def _connection(pool: Annotated[ConnectionPool, Depends(get_pool)]) -> Iterator[psycopg.Connection]:
    # One transaction per request: committed when the handler returns, rolled back if it raises.
    with pool.connection() as conn:
        yield conn


# scope="function": commit before the response is sent, and never hold a
# connection for the life of a streaming response.
Conn = Annotated[psycopg.Connection, Depends(_connection, scope="function")]
Settings = Annotated[ApiSettings, Depends(get_settings)]


def resolve_caller(pool: ConnectionPool, secret: str | None) -> Caller:
    if not secret:
        raise Unauthorized("log in (POST /auth/token) and send 'Authorization: Bearer <token>', or send X-API-Key",
                           headers={"WWW-Authenticate": "Bearer"})
    with pool.connection() as conn:
        caller = caller_for_secret(conn, secret=secret)
    if caller is None:
        raise Unauthorized("the token or API key is invalid, expired or revoked", code="invalid_token",
                           headers={"WWW-Authenticate": "Bearer"})
    return caller


def authorize(pool: ConnectionPool, secret: str | None, permission: Permission) -> Caller:
    caller = resolve_caller(pool, secret)
    if permission not in ROLE_PERMISSIONS[caller.role]:
        raise Forbidden(f"the {caller.role} role may not do this (needs {permission})")
    return caller


def allow(permission: Permission) -> Callable[..., Caller]:
    """The dependency for a route that needs ``permission``."""

    def dependency(
        pool: Annotated[ConnectionPool, Depends(get_pool)],
        token: Annotated[str | None, Depends(oauth2)],
        api_key: Annotated[str | None, Depends(api_key_header)],
    ) -> Caller:
        return authorize(pool, api_key or token, permission)

    dependency.__name__ = f"allow_{permission.value.replace('.', '_')}"
    return dependency


Reader = Annotated[Caller, Depends(allow(Permission.READ))]


def can(caller: Caller, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[caller.role]


# The tenancy rule lives in api.tenancy; `visible` is re-exported here for the routes that import it from deps.
visible = tenancy.visible


def client_address(request: Request, settings: ApiSettings) -> str:
    """The client's address: the peer's, or — only when the peer is a configured proxy — the address its
    X-Forwarded-For names (the rightmost one that is not itself a trusted proxy). Run uvicorn with
    ``proxy_headers=False``: it would otherwise believe the header from loopback before this sees it."""
    peer = request.client.host if request.client else "unknown"
    networks = settings.proxy_networks()
    if not networks or not _within(peer, networks):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a forged or garbled chain: the proxy itself is all we know
        if not _within(hop, networks):
            return hop
    return peer


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
