"""Signed, expiring, single-use acknowledge/resolve links for a technician on a phone.

A token is ``base64url(claims) "." base64url(HMAC-SHA256(secret, claims))`` with
claims ``{"i": incident id, "a": "ack"|"resolve", "s": staff id, "e": expiry
(epoch s), "n": nonce}``. The nonce is recorded when the link is issued and
consumed once (``UPDATE ... WHERE used_at IS NULL``): a replay, a forged or
altered token, an expired one or one never issued is refused with a reason.

Link previews in chat apps fetch URLs: the API should show a confirmation page
on GET (``peek_link``) and consume the link only on POST (``verify_and_consume_link``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Literal

import msgspec
import psycopg

Action = Literal["ack", "resolve"]
ACTIONS: tuple[Action, ...] = ("ack", "resolve")
MAX_TOKEN_LENGTH = 1024


class LinkRefused(Exception):
    """The link cannot be used; ``reason`` is one of malformed, forged, expired, unknown, replayed, revoked
    (its staff member was deactivated: links die with them)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LinkClaims(msgspec.Struct, frozen=True):
    i: int
    a: Action
    s: str
    e: int
    n: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _sign(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def make_token(secret: str, *, incident_id: int, action: Action, staff_id: str, expires_at: dt.datetime, nonce: str) -> str:
    body = msgspec.json.encode(LinkClaims(i=incident_id, a=action, s=staff_id, e=int(expires_at.timestamp()), n=nonce))
    return f"{_b64(body)}.{_b64(_sign(secret, body))}"


def issue_link(
    conn: psycopg.Connection, *, incident_id: int, action: Action, staff_id: str, now: dt.datetime, ttl: dt.timedelta
) -> tuple[str, dt.datetime]:
    """Record a new link's nonce; return (nonce, expiry). The token is made at send time from the secret."""
    nonce = secrets.token_urlsafe(16)
    expires_at = now + ttl
    conn.execute(
        "INSERT INTO oncall_links (nonce, incident_id, action, staff_id, expires_at, issued_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (nonce, incident_id, action, staff_id, expires_at, now),
    )
    return nonce, expires_at


def peek_link(token: str, now: dt.datetime, *, secret: str) -> LinkClaims:
    """Check signature and expiry without consuming (for a confirmation page)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise LinkRefused("malformed", "token: not a Steward action link")
    body_part, sig_part = token.split(".")
    try:
        body, signature = _unb64(body_part), _unb64(sig_part)
    except (binascii.Error, ValueError):
        raise LinkRefused("malformed", "token: not base64url") from None
    if not hmac.compare_digest(signature, _sign(secret, body)):
        raise LinkRefused("forged", "token: signature does not match")
    try:
        claims = msgspec.json.decode(body, type=LinkClaims)
    except msgspec.ValidationError as exc:
        raise LinkRefused("malformed", f"token: {exc}") from None
    if now.timestamp() >= claims.e:
        raise LinkRefused("expired", "token: link expired")
    return claims


def verify_and_consume_link(
    conn: psycopg.Connection, token: str, now: dt.datetime, *, secret: str | None = None
) -> tuple[int, Action, str]:
    """Verify ``token`` and mark it used; return (incident_id, action, staff_id).

    ``secret`` defaults to ``STEWARD_ONCALL_LINK_SECRET`` from the settings. Raises
    ``LinkRefused`` for a malformed, forged, expired, unknown or replayed link.
    Runs in the caller's transaction: commit it together with the action taken.
    """
    if secret is None:
        from oncall.settings import OnCallSettings

        secret = OnCallSettings().link_secret.get_secret_value()  # type: ignore[call-arg]
    claims = peek_link(token, now, secret=secret)
    row = conn.execute(
        "UPDATE oncall_links SET used_at = %s WHERE nonce = %s AND used_at IS NULL AND revoked_at IS NULL"
        " AND incident_id = %s AND action = %s AND staff_id = %s"
        " AND EXISTS (SELECT 1 FROM staff WHERE staff_id = %s AND active) RETURNING nonce",
        (now, claims.n, claims.i, claims.a, claims.s, claims.s),
    ).fetchone()
    if row is None:
        known = conn.execute("SELECT used_at FROM oncall_links WHERE nonce = %s", (claims.n,)).fetchone()
        if known is None:
            raise LinkRefused("unknown", "token: this link was never issued")
        if known[0] is not None:
            raise LinkRefused("replayed", "token: this link was already used")
        raise LinkRefused("revoked", "token: the person this link was sent to is no longer active")
    return claims.i, claims.a, claims.s


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/oncall/links/{token}"
