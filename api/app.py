"""The application factory: one FastAPI app over one connection pool.

``steward run`` (and tests) call `create_app`; nothing here reads global state
other than the optional ``STEWARD_API_*`` settings.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import compile_path
from psycopg_pool import ConnectionPool

from api.clock import Clock, wall_clock
from api.credentials import CredentialStore
from api.docs import install_offline_docs
from api.edge import InputGuard, document_common_responses
from api.throttle import LoginGate
from api.hub import ChangeHub
from api.i18n import LocalizedErrors
from api.errors import install_closed_loop_handlers, install_error_handlers
from api.settings import ApiSettings


# Every router of the API, in one visible place. Imported outright: a router whose module or one of its
# dependencies fails to import stops the API from starting, naming the import, instead of its routes
# vanishing from a running API (they once were optional, while the parts they wire had not landed).
ROUTERS = ("auth", "health", "devices", "events", "residents", "users", "audit", "stream", "ui",
           "alerts", "workorders", "oncall", "oncall_links", "people", "demo", "tree")


def _routers() -> list[Any]:
    return [importlib.import_module(f"api.routes.{name}").router for name in ROUTERS]


def create_app(*, database_url: str, gateway_status: Callable[[], dict[str, Any]] | None = None,
               broker: CredentialStore | None = None, settings: ApiSettings | None = None,
               oncall_link_secret: str | None = None, demo_phone_secret: str | None = None,
               clock: Clock = wall_clock) -> FastAPI:
    """The control-room API.

    ``gateway_status`` is the in-process gateway's ``status()`` (for /health);
    ``broker`` applies device MQTT credentials (see `api.credentials`); without
    it credentials are issued and stored but must be applied by the operator.
    ``oncall_link_secret`` (``OnCallSettings().link_secret``) verifies the signed
    on-call action links; without it ``/oncall/links/…`` answers 404.
    ``demo_phone_secret`` turns on the demo's notification sink (``/demo/phone``),
    whose receiver checks the on-call webhook's signature with it.
    ``clock`` is where every route takes "now" from (`api.clock`).
    """
    if oncall_link_secret is not None and len(oncall_link_secret) < 16:
        raise ValueError("oncall_link_secret must be at least 16 characters (STEWARD_ONCALL_LINK_SECRET)")
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A connection is checked before it is handed out, so one broken by a database
        # restart is replaced instead of failing a request. psycopg_pool retries a lost
        # connection with exponential backoff (1, 2, 4 ... s) for `reconnect_timeout`:
        # kept short, so that after a long outage the next request starts a fresh series
        # of attempts and the API is back within seconds of the database, not minutes.
        pool = ConnectionPool(database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size,
                              open=False, name="steward-api", check=ConnectionPool.check_connection,
                              timeout=settings.pool_timeout_seconds,
                              reconnect_timeout=settings.pool_reconnect_seconds,
                              kwargs={"application_name": "steward-api"})
        pool.open(wait=False)
        app.state.pool = pool
        # Every live stream of this process shares this one database listener (api/hub.py).
        hub = ChangeHub(database_url, poll_s=settings.stream_poll_seconds, max_total=settings.stream_max_total,
                        max_per_user=settings.stream_max_per_user)
        await hub.start()
        app.state.hub = hub
        # Logins queue here, not on the pool (api/throttle.py): a flood of them leaves connections to the rest.
        app.state.login_gate = LoginGate(total=min(settings.login_max_concurrent, max(1, settings.pool_max_size // 2)),
                                         wait_s=settings.login_wait_seconds)
        try:
            yield
        finally:
            await hub.stop()
            pool.close()

    app = FastAPI(
        title="Steward control-room API",
        version="1.0.0",
        description="Alerts, work orders, devices, telemetry and KPIs of residential communities. "
        "Every answer is limited to the caller's communities; errors have one shape: "
        '`{"error": {"code", "message", "field"}}`.',
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,  # both served from local assets by api.docs, never a CDN
    )
    app.state.settings = settings
    # Set when the server begins to stop: long-lived answers (/stream) end instead of
    # holding the shutdown until the client goes away.
    app.state.stopping = threading.Event()
    app.state.database_url = database_url
    app.state.gateway_status = gateway_status
    app.state.broker = broker
    app.state.oncall_link_secret = oncall_link_secret
    app.state.demo_phone_secret = demo_phone_secret
    app.state.clock = clock
    install_error_handlers(app)
    install_offline_docs(app)
    # Hostile input is refused before any route (api/edge.py); LocalizedErrors wraps it to translate its answers.
    routers = _routers()
    app.add_middleware(InputGuard, route_paths=lambda: [r.path for router in routers for r in router.routes])
    app.add_middleware(LocalizedErrors)
    install_closed_loop_handlers(app)
    for router in routers:
        app.include_router(router)
    _document(app, routers)
    return app


def _document(app: FastAPI, routers: list[Any]) -> None:
    """Every answer documented (the edge's 400/413/422/503 on every operation) and Allow on every 405."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_common_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    table = []
    for router in routers:
        for route in router.routes:
            regex, _, convertors = compile_path(route.path)
            table.append((regex, len(convertors), set(route.methods)))

    def allowed_methods(path: str) -> list[str]:
        # The path's own resource: /alerts/acknowledge is not /alerts/{alert_id}, though both match it.
        matches = [(params, methods) for regex, params, methods in table if regex.match(path)]
        fewest = min((params for params, _ in matches), default=0)
        return sorted(set().union(*(methods for params, methods in matches if params == fewest)))

    app.state.allowed_methods = allowed_methods
