"""The API through a database outage, on a real PostgreSQL the test stops and starts.

While the database is away every request answers 503 ``unavailable`` with
``Retry-After`` (never 500), ``/health`` says ``down``; once it is back, the
API's pool reconnects and ``/health`` says ``ok`` within seconds, however long
the outage lasted (psycopg_pool's own backoff would have waited up to half
the outage again).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from api.users import ensure_admin
from ingest.migrate import migrate
from steward.databases import EmbeddedPostgres
from tests.api.conftest import PASSWORD, login
from tests.gateway.helpers import wait_for

# Long enough that psycopg_pool's default backoff (attempts 1, 3, 7, 15, 31 s after
# the loss) would leave the API down for about 10 s after the database is back.
OUTAGE_S = 20
# What "within seconds" allows on a loaded 2-core machine.
RECOVERY_DEADLINE_S = 12


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of this test alone (never the shared one: it is stopped)."""
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="steward-pg-outage-")))
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        except Exception:
            pass


def test_the_api_answers_503_during_an_outage_and_recovers_within_seconds(own_postgres: EmbeddedPostgres) -> None:
    dsn = own_postgres.dsn
    migrate(dsn)
    with psycopg.connect(dsn) as conn:
        ensure_admin(conn, username="admin", password=PASSWORD, community_ids=["north"])
    app = create_app(database_url=dsn, settings=ApiSettings(pool_min_size=2))
    with TestClient(app, raise_server_exceptions=False) as client:
        admin = login(client, "admin")
        assert client.get("/devices", headers=admin).status_code == 200
        assert client.get("/health").json()["status"] == "ok"

        own_postgres.stop()
        down_since = time.monotonic()
        seen: dict[str, set[int]] = {}
        while time.monotonic() - down_since < OUTAGE_S:
            for method, path, kwargs in (
                ("GET", "/devices", {"headers": admin}),
                ("GET", "/alerts", {"headers": admin}),
                ("GET", "/auth/me", {"headers": admin}),
                ("POST", "/auth/token", {"data": {"username": "admin", "password": PASSWORD}}),
            ):
                r = client.request(method, path, **kwargs)
                seen.setdefault(path, set()).add(r.status_code)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.json()["error"]["code"] == "unavailable"
                assert int(r.headers["Retry-After"]) > 0
            health = client.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "down"
            assert health.json()["database_reachable"] is False
        assert all(codes == {503} for codes in seen.values()), seen

        own_postgres.restart()
        back_at = time.monotonic()
        # No sleep: ask as a control-room page would, until the answers are right.
        wait_for(lambda: client.get("/devices", headers=admin).status_code == 200, RECOVERY_DEADLINE_S,
                 "GET /devices to answer 200 after the database came back", interval=0.2)
        api_back = time.monotonic() - back_at
        wait_for(lambda: client.get("/health").json()["status"] == "ok", RECOVERY_DEADLINE_S,
                 "/health to say ok after the database came back", interval=0.2)
        health_back = time.monotonic() - back_at
        print(f"outage {OUTAGE_S} s: API back {api_back:.1f} s and /health ok {health_back:.1f} s "
              "after the database")
        # Every route works again, logins included.
        assert client.get("/alerts", headers=admin).status_code == 200
        assert login(client, "admin")
