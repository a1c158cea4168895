"""Usernames are unique regardless of case (migration 0063 and POST /users); login is exact."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.security import Role
from ingest.migrate import MIGRATIONS_DIR, migrate
from tests.api.conftest import OWN, PASSWORD, World, add_user, login


def test_a_username_differing_only_in_case_is_taken(world: World, client: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    body = {"password": "long-enough-password", "role": "manager", "communities": [OWN]}
    assert client.post("/users", headers=admin, json={**body, "username": "desk-east"}).status_code == 201
    for lookalike in ("Desk-East", "DESK-EAST", f"Admin-{OWN}".upper()):
        r = client.post("/users", headers=admin, json={**body, "username": lookalike})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["field"] == "body.username" and "regardless of case" in r.json()["error"]["message"]
    # The database refuses it too, whoever writes (the unique index on lower(username)).
    with psycopg.connect(world.dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        add_user(conn, "DESK-east", Role.MANAGER, [OWN])


def test_login_is_exact(world: World, client: TestClient) -> None:
    assert login(client, f"admin-{OWN}")
    r = client.post("/auth/token", data={"username": f"ADMIN-{OWN}", "password": PASSWORD})
    assert r.status_code == 401


def test_migration_refuses_an_existing_case_only_duplicate_and_says_how_to_fix(empty_database: str,
                                                                                tmp_path: Path) -> None:
    before = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, before)
    (before / "0063_usernames_case_insensitive.sql").unlink()
    migrate(empty_database, directory=before)
    with psycopg.connect(empty_database) as conn:
        first = add_user(conn, "admin-south", Role.ADMIN, [OWN])
        second = add_user(conn, "Admin-South", Role.ADMIN, [OWN])
        conn.commit()
    with pytest.raises(psycopg.errors.RaiseException) as refused:
        migrate(empty_database)
    message = str(refused.value)
    assert f"admin-south (id {first})" in message and f"Admin-South (id {second})" in message
    assert refused.value.diag.message_hint and "UPDATE api_users SET username" in refused.value.diag.message_hint
    with psycopg.connect(empty_database) as conn:
        conn.execute("UPDATE api_users SET username = 'admin-south-2' WHERE id = %s", (second,))
        conn.commit()
    _, applied = migrate(empty_database)
    assert applied == ["0063_usernames_case_insensitive.sql"]


def test_a_look_alike_created_concurrently_is_a_409_not_a_500(world: World, client: TestClient) -> None:
    """Another transaction inserts `Desk-West` and has not committed when POST /users `desk-west` checks:
    the check sees nothing, the INSERT waits on the unique index, and once the other commits it fails
    there — answered as the same 409."""
    import threading
    import time

    admin = world.headers(f"admin-{OWN}")
    answer: list[object] = []
    with psycopg.connect(world.dsn) as other:
        add_user(other, "Desk-West", Role.MANAGER, [OWN])  # uncommitted
        waiter = threading.Thread(target=lambda: answer.append(client.post("/users", headers=admin, json={
            "username": "desk-west", "password": "long-enough-password", "role": "manager", "communities": [OWN]})))
        waiter.start()
        blocked = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO api_users%%'"
        deadline = time.monotonic() + 30
        with psycopg.connect(world.dsn, autocommit=True) as watch:
            while watch.execute(blocked).fetchone()[0] == 0:  # type: ignore[index]
                assert time.monotonic() < deadline, "the API's INSERT never waited on the other transaction"
                time.sleep(0.02)
        other.commit()
    waiter.join(30)
    r = answer[0]
    assert r.status_code == 409, r.text  # type: ignore[attr-defined]
    assert r.json()["error"]["field"] == "body.username"  # type: ignore[attr-defined]
