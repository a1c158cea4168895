"""Login, tokens, API keys, failed-login rate limiting, the error shape."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.conftest import API_NOW, OWN, PASSWORD, SetClock, World, login


def test_login_returns_an_expiring_token_that_authenticates(client: TestClient) -> None:
    r = client.post("/auth/token", data={"username": f"operator-{OWN}", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("stw_t_") and body["expires_at"]
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["role"] == "operator" and me["communities"] == [OWN] and me["via"] == "token"


def test_passwords_are_stored_as_argon2_hashes(world: World) -> None:
    with psycopg.connect(world.dsn) as conn:
        hashes = [r[0] for r in conn.execute("SELECT password_hash FROM api_users")]
    assert hashes and all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_wrong_password_is_401_in_the_error_shape(client: TestClient) -> None:
    r = client.post("/auth/token", data={"username": f"operator-{OWN}", "password": "nope"})
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "invalid_credentials", "message": "wrong username or password",
                                  "field": None}}


def test_no_token_and_bad_token_are_401(client: TestClient) -> None:
    assert client.get("/devices").json()["error"]["code"] == "not_authenticated"
    r = client.get("/devices", headers={"Authorization": "Bearer stw_t_forged"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_failed_logins_are_throttled_with_retry_after(world: World) -> None:
    app = create_app(database_url=world.dsn, settings=ApiSettings(login_free_failures=3, login_first_delay_seconds=60,
                                                                  login_max_delay_seconds=600), clock=SetClock(API_NOW))
    with TestClient(app) as client:
        user = f"supervisor-{OWN}"
        codes = [client.post("/auth/token", data={"username": user, "password": "guess"}).status_code
                 for _ in range(3)]
        assert codes == [401, 401, 401]
        r = client.post("/auth/token", data={"username": user, "password": PASSWORD})
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
        assert int(r.headers["Retry-After"]) == 60  # the API's clock stands still; then twice as long ... (test_login_throttle.py)


def test_expired_token_is_refused(world: World, client: TestClient) -> None:
    headers = world.headers(f"manager-{OWN}")
    assert client.get("/devices", headers=headers).status_code == 200
    with psycopg.connect(world.dsn) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
    r = client.get("/devices", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_logout_revokes_the_token(world: World, client: TestClient) -> None:
    headers = world.headers(f"technician-{OWN}")
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert client.get("/auth/me", headers=headers).status_code == 401


def test_api_key_acts_as_its_user_and_can_be_revoked(world: World, client: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    users = {u["username"]: u["id"] for u in client.get("/users", headers=admin).json()}
    integration = users[f"operator-{OWN}"]
    r = client.post(f"/users/{integration}/api-keys", headers=admin, json={"name": "bms bridge"})
    assert r.status_code == 201
    key, key_id = r.json()["key"], r.json()["id"]
    me = client.get("/auth/me", headers={"X-API-Key": key}).json()
    assert me["username"] == f"operator-{OWN}" and me["via"] == "api_key"
    assert client.delete(f"/users/{integration}/api-keys/{key_id}", headers=admin).status_code == 204
    assert client.get("/auth/me", headers={"X-API-Key": key}).status_code == 401


def test_disabled_user_loses_access_at_once(world: World, client: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    operator = world.headers(f"operator-{OWN}")
    users = {u["username"]: u["id"] for u in client.get("/users", headers=admin).json()}
    r = client.patch(f"/users/{users[f'operator-{OWN}']}", headers=admin, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/devices", headers=operator).status_code == 401


def test_admin_cannot_grant_a_community_it_does_not_see(world: World, client: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    r = client.post("/users", headers=admin, json={"username": "newbie", "password": "long-enough-pw",
                                                   "role": "operator", "communities": ["south"]})
    assert r.status_code == 404 and r.json()["error"]["field"] == "body.communities"


def test_validation_error_names_the_field(world: World, client: TestClient) -> None:
    admin = world.headers(f"admin-{OWN}")
    r = client.post("/users", headers=admin, json={"username": "x", "password": "short", "role": "operator",
                                                   "communities": [OWN]})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid" and r.json()["error"]["field"] == "body.password"
