"""Property-based checks over the OpenAPI document: no input makes the server answer 5xx,
and every answer matches the documented schema. Bounded (max_examples) to stay fast.

The same run from the command line, against a running server:
    schemathesis run http://127.0.0.1:8000/openapi.json -H "Authorization: Bearer $TOKEN" --max-examples 20
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from ingest.migrate import migrate
from steward.databases import create_database, drop_database
from tests.api.conftest import OWN, seed

# One database and one app for the whole property run (module scope): fresh per example would be minutes.
_state: dict[str, object] = {}


@pytest.fixture(scope="module")
def fuzz_db(admin_dsn: str):  # type: ignore[no-untyped-def]
    dsn = create_database(admin_dsn)
    migrate(dsn)
    world = seed(dsn)
    _state["headers"] = world.headers(f"admin-{OWN}")
    try:
        yield dsn
    finally:
        drop_database(admin_dsn, dsn)


@pytest.fixture(scope="module")
def fuzz_app(fuzz_db: str):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    app = create_app(database_url=fuzz_db)
    with TestClient(app):  # runs the lifespan (opens the pool)
        yield app


def test_no_server_errors(fuzz_app) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    headers = _state["headers"]
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        # The stream never ends by itself; logout would revoke the token the run uses.
        if operation.path in ("/stream", "/auth/logout"):
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):  # type: ignore[no-untyped-def]
            case.headers = {**(case.headers or {}), **headers}
            response = case.call()
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")
            if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                body = response.json()
                assert set(body) == {"error"} and {"code", "message", "field"} <= set(body["error"]), body
            assert "Traceback" not in response.text
            case.validate_response(response, checks=[schemathesis.checks.not_a_server_error,
                                                     schemathesis.checks.response_schema_conformance])

        check()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 30, checked
