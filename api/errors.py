"""One error shape for every answer that is not a success.

``{"error": {"code": "not_found", "message": "...", "field": "query.bucket"}}``:
``code`` is stable (clients branch on it), ``message`` is for people, ``field``
names the offending input when there is one. Validation errors (422) and
unexpected failures (500, logged here with their stack trace, never sent) use
the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """An error a handler raises on purpose; becomes ``status`` with this code and message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers
        if code:
            self.code = code


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Unauthorized(ApiError):
    status = 401
    code = "not_authenticated"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class InvalidInput(ApiError):
    status = 422
    code = "invalid"


class TooManyAttempts(ApiError):
    status = 429
    code = "too_many_attempts"


class Unavailable(ApiError):
    status = 503
    code = "unavailable"


# The documented error answers, for OpenAPI (`responses=` on routers).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, expired or invalid token or API key"},
    403: {"model": ErrorResponse, "description": "The role may not do this"},
    404: {"model": ErrorResponse, "description": "Not found, or in a community the caller does not see"},
    422: {"model": ErrorResponse, "description": "Invalid input; `field` names it"},
}

_STATUS_CODES = {
    400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid",
    429: "too_many_attempts", 500: "internal_error", 503: "unavailable",
}


# While the database is away every request answers 503 `unavailable` with this
# Retry-After; the pool reconnects within about as long once it is back.
RETRY_AFTER_S = 5

# SQLSTATE classes that mean "the server is away or cannot take us now":
# connection exceptions, insufficient resources (too many clients), operator
# intervention (shutdown, restart, starting up). psycopg reports a connection
# lost without a server message with no SQLSTATE at all.
_AWAY_CLASSES = ("08", "53", "57")


def database_away(exc: psycopg.OperationalError) -> bool:
    """The error means the database cannot be reached now, rather than a fault of this request."""
    return exc.sqlstate is None or exc.sqlstate[:2] in _AWAY_CLASSES


def error_json(status: int, code: str, message: str, field: str | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("query", "bucket") -> "query.bucket"; ("body", "tier") -> "body.tier"
    return ".".join(str(part) for part in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_json(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        allowed = getattr(request.app.state, "allowed_methods", None)
        if allowed is not None and request.method not in (methods := allowed(request.url.path)):
            # GET /alerts/acknowledge reached GET /alerts/{alert_id}, but the path names the other resource.
            return error_json(405, "method_not_allowed", f"{request.method} is not allowed here; allowed: "
                              f"{', '.join(methods)}", headers={"Allow": ", ".join(methods)})
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field_name(first.get("loc", ()))
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid"))
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        return error_json(422, "invalid", message, field or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = dict(getattr(exc, "headers", None) or {})
        allowed = getattr(request.app.state, "allowed_methods", None)
        if exc.status_code == 405 and allowed is not None:
            # Every method of every route with this path (Starlette names only the first route's).
            headers["Allow"] = ", ".join(allowed(request.url.path))
            message = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return error_json(exc.status_code, code, message, headers=headers or None)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_away(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, psycopg.OperationalError) and not database_away(exc):
            return await _unexpected(request, exc)
        log.warning("%s %s: the database is unavailable (%s)", request.method, request.url.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return error_json(503, "unavailable", "the database is unavailable; try again shortly",
                          headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_json(500, "internal_error", "internal error; the server log has the details")


# The closed loop's InvalidInput names its argument; this is where that argument came from in a request.
_CLOSED_LOOP_FIELDS = {"after": "query.cursor", "since": "query.from", "until": "query.to", "sort": "query.sort",
                       "limit": "query.limit", "building": "query.building", "start": "query.from",
                       "end": "query.to", "community_ids": "query.community", "incident_id": "path.alert_id",
                       "order_id": "path.order_id", "at": "body.at", "actor": "body.actor"}


def install_closed_loop_handlers(app: FastAPI) -> None:
    """Map `workorders.errors` (shared by alerts and work orders): 404, 409 and 422."""
    try:
        from workorders.errors import IllegalTransition, InvalidInput, NotFound
    except ModuleNotFoundError:
        return

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_json(404, "not_found", str(exc))

    @app.exception_handler(IllegalTransition)
    async def _illegal(_: Request, exc: IllegalTransition) -> JSONResponse:
        return error_json(409, "illegal_transition", str(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        field = _CLOSED_LOOP_FIELDS.get(exc.field, f"body.{exc.field}")
        return error_json(422, "invalid", str(exc), field)
