"""Liveness/readiness and Prometheus metrics (no authentication: for probes and scrapers)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field

from ingest.migrate import current_mode

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "down"]
    database_reachable: bool
    storage_mode: Literal["timescale", "plain"] | None
    gateway_running: bool  # false when the gateway does not run in this process
    broker_connected: bool | None
    last_commit_at: dt.datetime | None
    ingest_lag_seconds: float | None
    pending: int | None
    # Set while the gateway's last attempt to store a batch failed for another reason
    # than the database being away (a bug, a schema problem): nothing is stored meanwhile.
    write_error: str | None = None
    gateway_database_ok: bool | None = Field(default=None, description="The gateway's writers reach the database")
    broker_refused: str | None = Field(default=None, description="The broker's last refusal of the gateway's login "
                                       "or subscription, until it lets it in (credentials or ACL to fix)")


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(request: Request, response: Response) -> HealthPublic:
    """``ok``: database reachable and (if the gateway runs here) broker connected and batches
    being stored; ``degraded`` (503) otherwise; ``down`` (503) without a database."""
    mode: str | None = None
    try:
        with request.app.state.pool.connection(timeout=3) as conn:
            mode = current_mode(conn).value
        reachable = True
    except Exception:  # any failure to reach the database is the answer, not an error
        log.warning("health: database unreachable", exc_info=True)
        reachable = False
    status_fn = request.app.state.gateway_status
    gateway = status_fn() if status_fn is not None else None
    broker_connected = bool(gateway["broker_connected"]) if gateway else None
    status: Literal["ok", "degraded", "down"] = "ok"
    if not reachable:
        status = "down"
    elif gateway is not None and (not broker_connected or gateway.get("write_error")
                                  or gateway.get("database_ok") is False):
        # The gateway's own connections count, not the API's: after the server ran out of connections the
        # API's pool may be back while the gateway's writers are not.
        status = "degraded"
    if status != "ok":
        response.status_code = 503
    return HealthPublic(
        status=status,
        database_reachable=reachable,
        storage_mode=mode,  # type: ignore[arg-type]
        gateway_running=gateway is not None,
        broker_connected=broker_connected,
        last_commit_at=gateway.get("last_commit_at") if gateway else None,
        ingest_lag_seconds=gateway.get("ingest_lag_seconds") if gateway else None,
        pending=gateway.get("pending") if gateway else None,
        write_error=gateway.get("write_error") if gateway else None,
        gateway_database_ok=gateway.get("database_ok") if gateway else None,
        broker_refused=gateway.get("broker_refused") if gateway else None,
    )


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"}})
def metrics() -> Response:
    """Everything registered in prometheus-client's default registry (the gateway's counters among them)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
