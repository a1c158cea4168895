"""The tenancy rule against the attacks of issue 17 ("Why" 1): an admin of one community taking over users
of others. The whole route × role × community matrix is in test_tenancy_matrix.py."""

from __future__ import annotations

import ast
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.security import Role
from tests.api.conftest import OTHER, OWN, PASSWORD, World, add_user, login

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared_admin(world: World) -> int:
    """The first admin of a two-community installation: communities OWN and OTHER."""
    with psycopg.connect(world.dsn) as conn:
        world.users["admin-both"] = add_user(conn, "admin-both", Role.ADMIN, [OWN, OTHER])
    return world.users["admin-both"]


def test_an_admin_cannot_issue_a_key_for_a_user_who_also_has_another_community(
        world: World, client: TestClient, shared_admin: int) -> None:
    attacker = world.headers(f"admin-{OWN}")
    r = client.post(f"/users/{shared_admin}/api-keys", headers=attacker, json={"name": "mine now"})
    assert r.status_code == 404 and r.json()["error"] == {
        "code": "not_found", "message": f"user {shared_admin} not found", "field": "path.user_id"}
    assert client.get(f"/users/{shared_admin}/api-keys", headers=attacker).status_code == 404
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (0,)


def test_an_admin_cannot_reset_demote_or_disable_a_user_who_also_has_another_community(
        world: World, client: TestClient, shared_admin: int) -> None:
    attacker = world.headers(f"admin-{OWN}")
    for body in ({"password": "attacker-chose-this"}, {"role": "technician"}, {"active": False},
                 {"communities": [OWN]}):
        r = client.patch(f"/users/{shared_admin}", headers=attacker, json=body)
        assert r.status_code == 404, (body, r.text)
    assert client.get(f"/users/{shared_admin}", headers=attacker).status_code == 404
    login(client, "admin-both")  # the password still works, the account is still an active admin
    me = client.get("/auth/me", headers=login(client, "admin-both")).json()
    assert me["role"] == "admin" and me["communities"] == sorted([OWN, OTHER])


def test_the_user_list_holds_exactly_the_users_the_admin_administers(
        world: World, client: TestClient, shared_admin: int) -> None:
    listed = {u["username"] for u in client.get("/users", headers=world.headers(f"admin-{OWN}")).json()}
    assert listed == {f"{role.value}-{OWN}" for role in Role}
    everyone = {u["username"] for u in client.get("/users", headers=world.headers("admin-both")).json()}
    assert everyone == {f"{role.value}-{c}" for role in Role for c in (OWN, OTHER)} | {"admin-both"}


def test_an_admin_of_both_communities_administers_users_of_either_and_of_both(
        world: World, client: TestClient, shared_admin: int) -> None:
    admin = world.headers("admin-both")
    r = client.post(f"/users/{world.users[f'operator-{OTHER}']}/api-keys", headers=admin, json={"name": "ci"})
    assert r.status_code == 201
    r = client.patch(f"/users/{world.users[f'operator-{OTHER}']}", headers=admin,
                     json={"communities": [OWN, OTHER]})
    assert r.status_code == 200 and r.json()["communities"] == sorted([OWN, OTHER])
    # ... and from then on that operator is no longer the single-community admin's to administer.
    r = client.get(f"/users/{world.users[f'operator-{OTHER}']}", headers=world.headers(f"admin-{OWN}"))
    assert r.status_code == 404


def test_an_admin_cannot_give_a_community_they_do_not_have(world: World, client: TestClient) -> None:
    attacker = world.headers(f"admin-{OWN}")
    target = world.users[f"operator-{OWN}"]
    r = client.patch(f"/users/{target}", headers=attacker, json={"communities": [OWN, OTHER]})
    assert r.status_code == 404 and r.json()["error"]["field"] == "body.communities"
    r = client.post("/users", headers=attacker, json={"username": "spy", "password": "long-enough-pw",
                                                     "role": "admin", "communities": [OWN, OTHER]})
    assert r.status_code == 404 and r.json()["error"]["field"] == "body.communities"


def test_user_administration_of_another_community_stays_out_of_the_audit(
        world: World, client: TestClient, shared_admin: int) -> None:
    admin_both = world.headers("admin-both")
    assert client.patch(f"/users/{world.users[f'manager-{OTHER}']}", headers=admin_both,
                        json={"display_name": "M. South"}).status_code == 200
    assert client.patch(f"/users/{world.users[f'manager-{OWN}']}", headers=admin_both,
                        json={"display_name": "M. North"}).status_code == 200
    assert client.post(f"/users/{shared_admin}/api-keys", headers=admin_both, json={"name": "x"}).status_code == 201
    seen = client.get("/audit", headers=world.headers(f"admin-{OWN}")).json()["data"]
    targets = {(e["action"], e["target_id"]) for e in seen}
    assert ("user.update", str(world.users[f"manager-{OWN}"])) in targets
    assert ("user.update", str(world.users[f"manager-{OTHER}"])) not in targets
    assert not any(e["action"] == "api_key.create" for e in seen)
    # The other community's admin sees its own user's entry, not ours.
    seen = client.get("/audit", headers=world.headers(f"admin-{OTHER}")).json()["data"]
    assert {e["target_id"] for e in seen if e["action"] == "user.update"} == {str(world.users[f"manager-{OTHER}"])}


def test_an_all_communities_admin_administers_every_community_and_only_another_one_sees_them(
        world: World, client: TestClient) -> None:
    from api.users import create_user

    with psycopg.connect(world.dsn) as conn:
        root = create_user(conn, username="root", password=PASSWORD, role=Role.ADMIN, community_ids=[],
                           all_communities=True)
    headers = login(client, "root")
    me = client.get("/auth/me", headers=headers).json()
    assert set(me["communities"]) >= {OWN, OTHER}
    # A community nobody has yet: the production first start creates its first device there.
    r = client.post("/devices", headers=headers, json={"device_id": "east-hub-1", "community_id": "east",
                                                      "device_type": "elderly", "kind": "home_hub",
                                                      "issue_credentials": False})
    assert r.status_code == 201, r.text
    assert client.get("/devices?community=east", headers=headers).json()["data"][0]["device_id"] == "east-hub-1"
    r = client.post("/users", headers=headers, json={"username": "admin-east", "password": "long-enough-pw",
                                                    "role": "admin", "communities": ["east"]})
    assert r.status_code == 201
    # Nobody but an installation-wide admin administers one.
    for admin in (f"admin-{OWN}", f"admin-{OTHER}"):
        assert client.get(f"/users/{root.id}", headers=world.headers(admin)).status_code == 404
    r = client.post("/users", headers=world.headers(f"admin-{OWN}"),
                    json={"username": "root2", "password": "long-enough-pw", "role": "admin",
                          "all_communities": True})
    assert r.status_code == 404 and r.json()["error"]["field"] == "body.all_communities"
    r = client.post("/users", headers=headers, json={"username": "root2", "password": "long-enough-pw",
                                                    "role": "operator", "all_communities": True})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.role"


ALLOWED_MEMBERSHIP_TESTS = {"api/tenancy.py"}


def test_no_route_tests_community_membership_itself() -> None:
    """Visibility is decided in api/tenancy.py only: a route that writes `x in caller.communities` (or `&`, `<=`)
    has its own rule. Routes pass caller.communities to SQL filters; they compare through api.tenancy."""
    offenders = []
    for path in sorted((ROOT / "api").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED_MEMBERSHIP_TESTS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Compare, ast.BinOp)):
                operands = [node.left, *(node.comparators if isinstance(node, ast.Compare) else [node.right])]
                if any(isinstance(o, ast.Attribute) and o.attr == "communities" for o in operands):
                    offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"community membership decided outside api/tenancy.py: {offenders}"
