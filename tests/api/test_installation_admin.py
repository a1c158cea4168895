"""The installation-wide administrator that `steward run` creates on a fresh database.

A production installation starts with no community at all: its first admin
must be able to register the first community's devices and users, and no
admin of one community may see or change that user.
"""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import Role
from api.users import ensure_admin
from tests.api.conftest import OWN, PASSWORD, World, add_user, login


def first_admin(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return ensure_admin(conn, username="admin", password=PASSWORD, community_ids=[]).id


def test_a_fresh_installation_gets_an_admin_who_can_set_up_the_first_community(database_url: str) -> None:
    first_admin(database_url)
    with TestClient(create_app(database_url=database_url), raise_server_exceptions=False) as client:
        admin = login(client, "admin")
        me = client.get("/auth/me", headers=admin).json()
        assert me["all_communities"] is True and me["communities"] == []
        assert client.get("/devices", headers=admin).json()["data"] == []

        r = client.post("/devices", headers=admin, json={
            "device_id": "lift-1", "community_id": "harbour", "device_type": "elevator", "kind": "lift",
            "issue_credentials": False})
        assert r.status_code == 201, r.text
        r = client.post("/users", headers=admin, json={
            "username": "harbour-admin", "password": "long-enough-password", "role": "admin",
            "communities": ["harbour"]})
        assert r.status_code == 201, r.text
        assert r.json()["all_communities"] is False

        # The new community is now part of what the installation admin sees.
        assert client.get("/auth/me", headers=admin).json()["communities"] == ["harbour"]
        assert [d["device_id"] for d in client.get("/devices", headers=admin).json()["data"]] == ["lift-1"]
        assert client.get("/devices", params={"community": "harbour"}, headers=admin).status_code == 200

        # The community's own admin works in it, and does not see the installation admin.
        local = login(client, "harbour-admin", "long-enough-password")
        assert client.get("/devices/lift-1", headers=local).status_code == 200
        assert "admin" not in [u["username"] for u in client.get("/users", headers=local).json()]
        admin_id = client.get("/auth/me", headers=admin).json()["user_id"]
        assert client.get(f"/users/{admin_id}", headers=local).status_code == 404
        assert client.patch(f"/users/{admin_id}", headers=local, json={"active": False}).status_code == 404
        assert client.post(f"/users/{admin_id}/api-keys", headers=local, json={"name": "x"}).status_code == 404
        assert client.post("/devices", headers=local, json={
            "device_id": "lift-2", "community_id": "elsewhere", "device_type": "elevator", "kind": "lift",
            "issue_credentials": False}).status_code == 404

        # The installation admin sees every user, their own record included.
        names = [u["username"] for u in client.get("/users", headers=admin).json()]
        assert names == ["admin", "harbour-admin"]
        assert client.get("/auth/me", headers=admin).json()["username"] == "admin"


def test_a_restart_keeps_the_admin_as_it_was(database_url: str) -> None:
    """ensure_admin never widens an existing admin (created before installation-wide admins existed)."""
    with psycopg.connect(database_url) as conn:
        add_user(conn, "admin", Role.ADMIN, [OWN])
        record = ensure_admin(conn, username="admin", password="ignored-password", community_ids=["east"])
    assert record.all_communities is False and record.communities == ("east", OWN)


def test_an_installation_admin_sees_every_community_of_the_seeded_world(world: World, client: TestClient) -> None:
    first_admin(world.dsn)
    admin = login(client, "admin")
    assert client.get("/auth/me", headers=admin).json()["communities"] == ["north", "south"]
    residents = client.get("/residents", headers=admin).json()["data"]
    assert sorted(r["community_id"] for r in residents) == ["north", "south"]
    # Every community admin is visible to them; they are visible to no community admin.
    users = {u["username"] for u in client.get("/users", headers=admin).json()}
    assert {"admin", "admin-north", "admin-south"} <= users
    for community_admin in ("admin-north", "admin-south"):
        listed = client.get("/users", headers=world.headers(community_admin)).json()
        assert "admin" not in {u["username"] for u in listed}


def test_an_admin_cannot_lock_themselves_out(database_url: str) -> None:
    """Deactivating or demoting yourself would leave a community (or the installation)
    without anybody to manage its users: refused, naming the field; another admin can."""
    first_admin(database_url)
    with TestClient(create_app(database_url=database_url), raise_server_exceptions=False) as client:
        admin = login(client, "admin")
        me = client.get("/auth/me", headers=admin).json()["user_id"]
        r = client.patch(f"/users/{me}", headers=admin, json={"active": False})
        assert r.status_code == 409 and r.json()["error"]["field"] == "body.active", r.text
        r = client.patch(f"/users/{me}", headers=admin, json={"role": "operator", "all_communities": False,
                                                              "communities": ["harbour"]})
        assert r.status_code == 409 and r.json()["error"]["field"] == "body.role", r.text
        assert client.get("/auth/me", headers=admin).status_code == 200  # still in, still admin
        assert client.patch(f"/users/{me}", headers=admin, json={"display_name": "Duty admin"}).status_code == 200

        r = client.post("/users", headers=admin, json={"username": "second-admin", "password": "long-enough-password",
                                                       "role": "admin", "all_communities": True})
        assert r.status_code == 201, r.text
        second = login(client, "second-admin", "long-enough-password")
        assert client.patch(f"/users/{me}", headers=second, json={"active": False}).status_code == 200
        assert client.get("/auth/me", headers=admin).status_code == 401
