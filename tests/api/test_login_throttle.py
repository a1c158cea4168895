"""Login throttling that protects (issue 17, "Why" 6 and 7).

Five wrong passwords for admin from anywhere used to refuse the right password
for 15 minutes; five failures of anyone from one address locked every user
behind it; 40 concurrent attempts were all evaluated past the limit; rotating
X-Forwarded-For defeated the per-address count; logins were not audited.

The API's clock stands still at API_NOW; time passing is simulated by ageing
the throttle rows, never by waiting for the wall clock.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.conftest import API_NOW, OWN, PASSWORD, LiveServer, SetClock, World

ATTACKER, CONTROL_ROOM, NAT = "203.0.113.9", "198.51.100.7", "192.0.2.44"
USER = f"operator-{OWN}"
POLICY = dict(login_free_failures=3, login_first_delay_seconds=30, login_lock_after=6, login_lock_seconds=900, login_max_delay_seconds=600,
              login_address_free_failures=10, login_account_free_failures=10, login_window_seconds=900)


def client_at(world: World, address: str, **settings: object) -> TestClient:
    app = create_app(database_url=world.dsn, settings=ApiSettings(**{**POLICY, **settings}), clock=SetClock(API_NOW))
    return TestClient(app, raise_server_exceptions=False, client=(address, 50000))


@pytest.fixture
def clients(world: World) -> Iterator[dict[str, TestClient]]:
    made = {a: client_at(world, a) for a in (ATTACKER, CONTROL_ROOM, NAT)}
    for c in made.values():
        c.__enter__()
    yield made
    for c in made.values():
        c.__exit__(None, None, None)


def age(dsn: str, seconds: float) -> None:
    """As if ``seconds`` had passed since every failure and lock."""
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE api_login_throttle SET last_failure_at = last_failure_at - make_interval(secs => %s), "
                     "locked_until = locked_until - make_interval(secs => %s)", (seconds, seconds))


def attempt(client: TestClient, username: str, password: str) -> httpx.Response:
    return client.post("/auth/token", data={"username": username, "password": password})


def audit(dsn: str, action: str) -> list[tuple[str, dict]]:
    with psycopg.connect(dsn) as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT username, detail FROM audit_log WHERE action = %s ORDER BY id", (action,))]


def test_an_attacker_locks_only_their_own_pair_and_the_right_password_works_from_another_address(
        world: World, clients: dict[str, TestClient]) -> None:
    attacker, room = clients[ATTACKER], clients[CONTROL_ROOM]
    codes = []
    for _ in range(6):
        r = attempt(attacker, USER, "guess")
        if r.status_code == 429:  # the exponential delay: wait it out (simulated)
            assert int(r.headers["Retry-After"]) <= 600
            age(world.dsn, int(r.headers["Retry-After"]))
            r = attempt(attacker, USER, "guess")
        codes.append(r.status_code)
    assert codes == [401] * 6
    # Locked: even the right password from the attacker's address is refused, for the bounded lock.
    r = attempt(attacker, USER, PASSWORD)
    assert r.status_code == 429 and "locked" in r.json()["error"]["message"]
    assert int(r.headers["Retry-After"]) == 900
    # The control room logs in at once with the right password.
    assert attempt(room, USER, PASSWORD).status_code == 200
    # The lock is bounded: once it is over, the right password works from there too.
    age(world.dsn, 901)
    assert attempt(attacker, USER, PASSWORD).status_code == 200
    failed = audit(world.dsn, "auth.login_failed")
    assert len(failed) == 6 and all(d["address"] == ATTACKER and d["reason"] == "wrong_password" for _, d in failed)
    assert [d["address"] for _, d in audit(world.dsn, "auth.lock")] == [ATTACKER]
    assert [d["address"] for _, d in audit(world.dsn, "auth.login")] == [CONTROL_ROOM, ATTACKER]


def test_delays_grow_exponentially_and_a_wait_is_refused_before_the_password_is_checked(world: World) -> None:
    with client_at(world, ATTACKER, login_lock_after=10) as attacker:
        waits = delays(world, attacker)
    assert waits == [30, 60, 120, 240, 480]


def delays(world: World, attacker: TestClient) -> list[int]:
    waits = []
    for _ in range(5):
        r = attempt(attacker, USER, "guess")
        while r.status_code == 401:
            r = attempt(attacker, USER, "guess")
        assert r.status_code == 429
        waits.append(int(r.headers["Retry-After"]))
        # A wait is a refusal: the right password does not get through it either, and counts nothing.
        assert attempt(attacker, USER, PASSWORD).status_code == 429
        age(world.dsn, waits[-1])
    return waits


def test_failures_behind_one_address_slow_it_but_never_lock_its_users(world: World,
                                                                      clients: dict[str, TestClient]) -> None:
    nat = clients[NAT]
    for i in range(15):  # somebody behind the NAT guesses fifteen accounts once each
        assert attempt(nat, f"nobody-{i}", "guess").status_code in (401, 429)
    r = attempt(nat, USER, PASSWORD)
    assert r.status_code == 429 and "from this address" in r.json()["error"]["message"]
    assert 30 <= int(r.headers["Retry-After"]) <= 600  # a wait growing with the failures, never a lock
    age(world.dsn, 600)
    assert attempt(nat, USER, PASSWORD).status_code == 200
    with psycopg.connect(world.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM api_login_throttle WHERE locked_until IS NOT NULL").fetchone() == (0,)


def test_concurrent_attempts_are_judged_one_after_the_other(world: World) -> None:
    # 40 requests queue for the pool's 10 connections behind three argon2 checks done one after
    # the other (about a second each on a loaded 2-core machine): the pool may make them wait as
    # long as it allows, so a busy machine is not mistaken for an unavailable database (503).
    app = create_app(database_url=world.dsn, settings=ApiSettings(**POLICY, pool_timeout_seconds=60),
                     clock=SetClock(API_NOW))
    with LiveServer(app) as live, concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        def one(_: int) -> int:
            return httpx.post(f"{live.url}/auth/token", data={"username": USER, "password": "guess"},
                              timeout=60).status_code

        codes = list(pool.map(one, range(40)))
    # Each attempt saw the failures before it: the three free ones had their password checked, every other
    # attempt had to wait (429) and was refused unchecked.
    assert sorted(codes) == [401] * 3 + [429] * 37, codes
    assert len(audit(world.dsn, "auth.login_failed")) == 3


def test_a_flood_of_logins_leaves_the_database_connections_to_everybody_else(world: World) -> None:
    # 150 concurrent logins of unknown users from one address: each used to hold a pooled connection while it
    # queued for the address's row (and the password check ahead of it), so the pool ran dry and the API
    # answered 503 to everybody, logins included. Now they wait their turn without a connection.
    settings = ApiSettings(**POLICY, pool_max_size=6, pool_timeout_seconds=1.0, login_max_concurrent=2)
    app = create_app(database_url=world.dsn, settings=settings, clock=SetClock(API_NOW))
    reader = world.headers(f"manager-{OWN}")
    with LiveServer(app) as live, concurrent.futures.ThreadPoolExecutor(max_workers=160) as pool:
        def one(i: int) -> int:
            return httpx.post(f"{live.url}/auth/token", data={"username": f"spray-{i}", "password": "guess"},
                              timeout=60).status_code

        def read(_: int) -> int:
            return httpx.get(f"{live.url}/alerts", headers=reader, timeout=60).status_code

        logins = [pool.submit(one, i) for i in range(150)]
        reads = [pool.submit(read, i) for i in range(5)]
        codes, read_codes = [f.result() for f in logins], [f.result() for f in reads]
    assert read_codes == [200] * 5, read_codes
    assert set(codes) <= {401, 429} and codes.count(401) >= 1, sorted(codes)
    assert app.state.login_gate.in_use() == 0  # every address's turn given back


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(world: World) -> None:
    # No proxy configured: the header is the attacker's own words; every attempt is the peer's.
    with client_at(world, ATTACKER) as direct:
        for i in range(4):
            attempt_via(direct, f"10.9.{i}.{i}")
    assert address_keys(world) == {ATTACKER}
    # Behind the configured proxy each client is told apart by the address the proxy adds last.
    with client_at(world, "10.0.0.2", trusted_proxies=["10.0.0.0/24"]) as proxied:
        for i in range(3):
            attempt_via(proxied, f"{ATTACKER}, 198.51.100.{i}")
        # ... and a client cannot pass itself off as one of the proxy's addresses: such a hop is skipped.
        attempt_via(proxied, "198.51.100.9, 10.0.0.7")
    assert address_keys(world) == {ATTACKER, "198.51.100.0", "198.51.100.1", "198.51.100.2", "198.51.100.9"}


def address_keys(world: World) -> set[str]:
    with psycopg.connect(world.dsn) as conn:
        return {r[0] for r in conn.execute("SELECT key FROM api_login_throttle WHERE scope = 'address'")}


def attempt_via(client: TestClient, forwarded: str) -> int:
    return client.post("/auth/token", data={"username": USER, "password": "guess"},
                       headers={"X-Forwarded-For": forwarded}).status_code


def test_logins_logouts_failures_password_and_key_changes_are_audited(world: World, client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {attempt(client, USER, PASSWORD).json()['access_token']}"}
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert attempt(client, USER, "wrong").status_code == 401
    assert attempt(client, "ghost", "wrong").status_code == 401
    admin = world.headers(f"admin-{OWN}")
    target = world.users[USER]
    assert client.patch(f"/users/{target}", headers=admin, json={"password": "a-new-long-password"}).status_code == 200
    key = client.post(f"/users/{target}/api-keys", headers=admin, json={"name": "ci"}).json()["id"]
    assert client.delete(f"/users/{target}/api-keys/{key}", headers=admin).status_code == 204
    with psycopg.connect(world.dsn) as conn:
        rows = conn.execute("SELECT action, username, target_id, communities FROM audit_log ORDER BY id").fetchall()
    actions = [r[0] for r in rows]
    assert actions == ["auth.login", "auth.logout", "auth.login_failed", "auth.login_failed", "user.update",
                       "user.password_change", "api_key.create", "api_key.revoke"]
    # Entries about the operator belong to the operator's communities; the unknown name's to none.
    assert all(r[3] == [OWN] for r in rows if r[2] in (str(target),) or r[0].startswith("api_key"))
    ghost = next(r for r in rows if r[1] == "ghost")
    assert ghost[3] == [] and ghost[0] == "auth.login_failed"
    # An admin of the operator's community reads them; the other community's admin does not.
    seen = {e["action"] for e in client.get("/audit", headers=admin).json()["data"]}
    assert {"auth.login", "auth.logout", "auth.login_failed", "user.password_change", "api_key.create"} <= seen
    assert client.get("/audit", headers=world.headers("admin-south")).json()["data"] == []
