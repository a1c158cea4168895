"""On-call action links for staff phones (``/oncall/links/{token}``).

They need no login: the signed, single-use token is the credential. GET shows a
confirmation page and consumes nothing (chat apps and mail scanners fetch links
to preview them); POST consumes the link and acknowledges or resolves the
incident in one transaction. A resolve link's POST carries what the person found
(``resolution``, ``reason``, as a form from the confirmation page or as JSON): a
Level 1 alert is closed with both, as on every other path (the rule is
``alerts.lifecycle.level1_needs``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import json
import logging
import urllib.parse
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError

from alerts.errors import IllegalTransition
from alerts.errors import InvalidInput as LifecycleInvalid
from api import audit
from api.clock import Now
from api.body import Body
from api.deps import Conn
from api.i18n import to_chinese
from api.errors import ERROR_RESPONSES, ErrorResponse, NotFound, error_json
from api.store import oncall as store
from domain.conditions import condition_name
from oncall.actions import apply_link
from oncall.links import MAX_TOKEN_LENGTH, LinkClaims, LinkRefused, peek_link

log = logging.getLogger(__name__)

router = APIRouter(prefix="/oncall", tags=["on-call"], responses=ERROR_RESPONSES)

UTC = dt.UTC


class LinkPublic(BaseModel):
    incident_id: int
    action: Literal["ack", "resolve"]
    staff_id: str
    expires_at: dt.datetime
    title: str
    tier: int
    status: str
    needs_reason: bool = Field(default=False, description="A resolve link of a Level 1 alert: POST needs "
                               "`resolution` and `reason`")


class LinkResolveBody(Body):
    """What the person found, sent with a resolve link (form fields or JSON; nothing for an acknowledge link)."""

    resolution: Literal["false_alarm", "confirmed"] | None = Field(
        default=None, description="Required for Level 1 (a duplicate is marked from the console, which knows the other alert)")
    reason: str | None = Field(default=None, max_length=4000, description="Why; required for Level 1")


class LinkResultPublic(BaseModel):
    incident_id: int
    action: Literal["ack", "resolve"]
    staff_id: str
    status: str = Field(description="The incident's status after the action")
    at: dt.datetime



# ----------------------------------------------------------------------------------------------- links

# LinkRefused.reason -> (status, what the person holding the phone is told)
LINK_REFUSALS: dict[str, tuple[int, str]] = {
    "malformed": (400, "This is not a Steward action link (it may have been cut off when copied)."),
    "forged": (403, "This link's signature is not valid."),
    "expired": (403, "This link has expired. Open the alert in the Steward app instead."),
    "unknown": (404, "This link was never issued."),
    "replayed": (403, "This link was already used."),
    "revoked": (403, "This link is no longer valid: the person it was sent to is no longer active."),
}
_ACTION_WORDS = {"ack": ("确认接单", "Acknowledge"), "resolve": ("标记已解决", "Resolve")}
_LINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "`link_malformed`"},
    403: {"model": ErrorResponse, "description": "`link_forged`, `link_expired`, `link_replayed` or "
          "`link_revoked` (its staff member was deactivated)"},
    404: {"model": ErrorResponse, "description": "`link_unknown`; `not_found` when links are not enabled"},
    409: {"model": ErrorResponse, "description": "`illegal_transition`: the alert is already acknowledged or resolved"},
}
_PAGE_HEADERS = {
    # The token is in the URL: never send it on as a Referer, never cache or index the page.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
}


def _link_secret(request: Request) -> str:
    secret: str | None = getattr(request.app.state, "oncall_link_secret", None)
    if not secret:
        raise NotFound("action links are not enabled on this server (no on-call link secret configured)",
                       field="path.token")
    return secret


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(title: str, body_html: str, status: int) -> HTMLResponse:
    document = (
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.5}button{font-size:1.25rem;padding:.75rem 1.5rem;width:100%}</style>"
        f"</head><body>{body_html}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_PAGE_HEADERS)


def _refusal(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_html(request):  # the phone's page says it in Chinese and English, like the confirmation page
        return _page("Steward", f"<h1>{status}</h1><p><strong>{html.escape(to_chinese(code, message))}</strong></p>"
                                f"<p>{html.escape(message)}</p>", status)
    return error_json(status, code, message, "path.token", headers=_PAGE_HEADERS)


def _link_refused(request: Request, exc: LinkRefused) -> Response:
    status, message = LINK_REFUSALS.get(exc.reason, (403, "This link cannot be used."))
    return _refusal(request, status, f"link_{exc.reason}", message)


def _invalid_link_body(request: Request, token: str, now: dt.datetime, secret: str, conn: Conn,
                       problem: tuple[str, str], filled: LinkResolveBody | None) -> Response:
    """422 naming the field; a phone gets the confirmation page again with the message in both languages."""
    field, message = problem
    try:
        claims = peek_link(token, now, secret=secret)  # a forged or expired link is refused as such first
    except LinkRefused as exc:
        return _link_refused(request, exc)
    if _wants_html(request):
        brief = store.incident_brief(conn, incident_id=claims.i)
        if brief is not None:
            return _confirmation(claims, title=_both_names(conn, claims.i, brief[1]), tier=brief[2], status=brief[3],
                                 problem=problem, filled=filled, who=_person(conn, claims.s))
    return error_json(422, "invalid", message, field, headers=_PAGE_HEADERS)


def _signed_claims(token: str) -> LinkClaims | None:
    """The claims of a token whose signature was verified but that was refused (expired, unknown, replayed)."""
    try:
        body = token.split(".")[0]
        return msgspec.json.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), type=LinkClaims)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _audit_link(conn: Conn, *, staff_id: str, incident_id: int, action: str, outcome: str) -> None:
    # No API user acts here: the person is the link's staff id (the signature vouches for it).
    known = store.incident_brief(conn, incident_id=incident_id)
    audit.record(conn, caller=None, username=staff_id, action=f"oncall.link.{outcome}",
                 community_id=known[0] if known else None, target_type="alert", target_id=incident_id,
                 detail={"via": "oncall_link", "action": action})


@router.get("/links/{token}", response_model=LinkPublic, responses={
    **_LINK_RESPONSES, 200: {"content": {"text/html": {}}, "description": "A confirmation page with a POST button "
                             "(HTML when the client accepts text/html, else JSON)"}})
def preview_link(now: Now, token: Annotated[str, Path(max_length=MAX_TOKEN_LENGTH + 1)], request: Request, conn: Conn) -> Response:
    """Show what the link will do, without consuming it (chat apps fetch links to preview them)."""
    secret = _link_secret(request)
    try:
        claims = peek_link(token, now, secret=secret)
    except LinkRefused as exc:
        return _link_refused(request, exc)
    issued, used_at, revoked = store.link_record(conn, claims=claims)
    if not issued:
        return _link_refused(request, LinkRefused("unknown", "token: this link was never issued"))
    if used_at is not None:
        return _link_refused(request, LinkRefused("replayed", "token: this link was already used"))
    if revoked:
        return _link_refused(request, LinkRefused("revoked", "token: its staff member is no longer active"))
    brief = store.incident_brief(conn, incident_id=claims.i)
    if brief is None:
        return _refusal(request, 404, "not_found", f"Alert {claims.i} no longer exists.")
    _, title, tier, status = brief
    if status == "resolved" or (claims.a == "ack" and status == "acknowledged"):
        return _refusal(request, 409, "illegal_transition", f"Alert {claims.i} is already {status}.")
    expires_at = dt.datetime.fromtimestamp(claims.e, UTC)
    if not _wants_html(request):
        public = LinkPublic(incident_id=claims.i, action=claims.a, staff_id=claims.s, expires_at=expires_at,
                            title=title, tier=tier, status=status, needs_reason=claims.a == "resolve" and tier == 1)
        return JSONResponse(public.model_dump(mode="json"), headers=_PAGE_HEADERS)
    return _confirmation(claims, title=_both_names(conn, claims.i, title), tier=tier, status=status,
                         who=_person(conn, claims.s))


_TIER_WORDS = {1: ("一级（红色）", "Level 1"), 2: ("二级（橙色）", "Level 2"), 3: ("三级（黄色）", "Level 3")}
_STATUS_WORDS = {"open": ("待确认", "open"), "acknowledged": ("已确认", "acknowledged"), "resolved": ("已解决", "resolved")}


def _both_names(conn: Conn, incident_id: int, title: str) -> str:
    """The alert's condition in Chinese and English for a phone's page (the detector's title is English)."""
    row = conn.execute("SELECT condition FROM incidents WHERE id = %s", (incident_id,)).fetchone()
    zh = condition_name("zh-CN", row[0]) if row else None
    en = condition_name("en", row[0]) if row else None
    return f"{zh} / {en}" if zh and en else title


def _person(conn: Conn, staff_id: str) -> str:
    row = conn.execute("SELECT name FROM staff WHERE staff_id = %s", (staff_id,)).fetchone()
    return str(row[0]) if row and row[0] else staff_id


def _confirmation(claims: LinkClaims, *, title: str, tier: int, status: str, problem: tuple[str, str] | None = None,
                  filled: LinkResolveBody | None = None, who: str | None = None) -> HTMLResponse:
    """The page a phone shows for a link: what it will do, and for a resolve link what was found and why
    (both required for Level 1, as everywhere). ``problem`` is (field, English message) of a refused POST."""
    zh, en = _ACTION_WORDS[claims.a]
    expires_at = dt.datetime.fromtimestamp(claims.e, UTC)
    expires_local = expires_at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    fields = ""
    if claims.a == "resolve":
        required = " required" if tier == 1 else ""
        chosen = filled.resolution if filled else None
        options = "".join(
            f"<option value=\"{value}\"{' selected' if value == chosen else ''}>{label}</option>"
            for value, label in (("", "— 请选择 / choose —"), ("confirmed", "属实，已处理 / Confirmed, handled"),
                                 ("false_alarm", "误报 / False alarm")))
        star = " *" if tier == 1 else ""
        fields = (
            f"<p><label>处理结论 / Finding{star}<br><select name=\"resolution\"{required}>{options}</select></label></p>"
            f"<p><label>原因 / Reason{star}<br><textarea name=\"reason\" rows=\"3\" maxlength=\"4000\"{required}>"
            f"{html.escape(filled.reason or '') if filled else ''}</textarea></label></p>"
            + ("<p>一级告警必须填写处理结论和原因 / A Level 1 alert needs a finding and a reason.</p>" if tier == 1 else "")
        )
    alert = ""
    if problem is not None:
        field, message = problem
        alert = (f"<p role=\"alert\" data-field=\"{html.escape(field)}\"><strong>{html.escape(to_chinese('invalid', message))}"
                 f"</strong><br>{html.escape(message)}</p>")
    body = (
        f"<h1>{zh} / {en}</h1>{alert}"
        f"<p><strong>{html.escape(title)}</strong><br>#{claims.i} · {' / '.join(_TIER_WORDS.get(tier, (str(tier),) * 2))}"
        f" · {html.escape(' / '.join(_STATUS_WORDS.get(status, (status, status))))}</p>"
        f"<p>{html.escape(who or claims.s)} · 有效期至 / valid until {expires_local} (UTC+8)</p>"
        f"<form method=\"post\">{fields}<button type=\"submit\">{zh} / {en}</button></form>"
    )
    return _page(f"{en} #{claims.i}", body, 200 if problem is None else 422)


async def _link_form(request: Request) -> dict[str, Any] | str:
    """The POST body of a link: the confirmation page's form fields, JSON, or nothing (an acknowledge link).
    A string is why the body could not be read."""
    raw = await request.body()
    if not raw.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                           max_num_fields=10)
        except (UnicodeDecodeError, ValueError) as exc:
            return f"body: not a readable form ({exc})"
        return {k: (v.strip() or None) for k, v in pairs}
    if kind in ("application/json", ""):
        try:
            doc = json.loads(raw)
        except ValueError:
            return "body: not valid JSON"
        return doc if isinstance(doc, dict) else "body: must be a JSON object"
    return f"body: {kind} is not accepted (send a form or JSON)"


def _resolve_body(form: dict[str, Any] | str) -> LinkResolveBody | tuple[str, str]:
    """The validated body, or (field, message) naming what is wrong."""
    if isinstance(form, str):
        return "body", form
    try:
        return LinkResolveBody.model_validate(form)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "body." + ".".join(str(p) for p in first.get("loc", ())) if first.get("loc") else "body"
        return field, f"{field}: {first.get('msg', 'invalid')}"


_LINK_BODY_DOC: dict[str, Any] = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": LinkResolveBody.model_json_schema()},
    "application/x-www-form-urlencoded": {"schema": LinkResolveBody.model_json_schema()}}}}


@router.post("/links/{token}", response_model=LinkResultPublic, openapi_extra=_LINK_BODY_DOC, responses={
    **_LINK_RESPONSES, 422: {"model": ErrorResponse, "description": "`invalid`: a Level 1 alert resolved without "
                             "`resolution` or `reason` (the field is named); the link stays usable"}})
def use_link(now: Now, token: Annotated[str, Path(max_length=MAX_TOKEN_LENGTH + 1)], request: Request, conn: Conn,
             form: Annotated[dict[str, Any] | str, Depends(_link_form)]) -> Response:
    """Consume the link and acknowledge or resolve the incident; a second use is refused. A resolve link
    takes ``resolution`` and ``reason`` (form or JSON), required for a Level 1 alert."""
    secret = _link_secret(request)
    found = _resolve_body(form)
    if isinstance(found, tuple):
        return _invalid_link_body(request, token, now, secret, conn, found, None)
    try:
        with conn.transaction():  # the link is consumed only if the action succeeds
            incident_id, action, staff_id = apply_link(conn, token, now, secret=secret, resolution=found.resolution,
                                                       reason=found.reason)
            brief = store.incident_brief(conn, incident_id=incident_id)
            assert brief is not None
            _audit_link(conn, staff_id=staff_id, incident_id=incident_id, action=action, outcome=action)
    except LinkRefused as exc:
        signed = _signed_claims(token) if exc.reason in ("expired", "unknown", "replayed", "revoked") else None
        if signed is None:
            log.info("action link refused (%s)", exc.reason)  # unsigned noise: not attributable to anybody
        else:
            _audit_link(conn, staff_id=signed.s, incident_id=signed.i, action=signed.a, outcome=f"refused.{exc.reason}")
        return _link_refused(request, exc)
    except IllegalTransition as exc:
        signed = _signed_claims(token)
        if signed is not None:
            _audit_link(conn, staff_id=signed.s, incident_id=signed.i, action=signed.a,
                        outcome="refused.illegal_transition")
        return _refusal(request, 409, "illegal_transition", str(exc))
    except LifecycleInvalid as exc:  # a Level 1 without its finding or reason: the link stays usable
        return _invalid_link_body(request, token, now, secret, conn, (f"body.{exc.field}", str(exc)), found)
    result = LinkResultPublic(incident_id=incident_id, action=action, staff_id=staff_id, status=brief[3], at=now)  # type: ignore[arg-type]
    if _wants_html(request):
        zh, en = {"ack": ("已确认接单", "Acknowledged"), "resolve": ("已标记解决", "Resolved")}[action]
        named = _both_names(conn, incident_id, brief[1])
        return _page(en, f"<h1>{zh} / {en}</h1><p><strong>{html.escape(named)}</strong><br>#{incident_id}</p>", 200)
    return JSONResponse(result.model_dump(mode="json"), headers=_PAGE_HEADERS)
