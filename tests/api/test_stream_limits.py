"""Bounded resources (issue 17, "Why" 5): 110 open streams used to take 110 PostgreSQL connections and exhaust
the server, the gateway included. Now every stream of a process shares one listener, streams are capped per
user and in all (429), and the API's connections stay within its pool plus that one listener."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from api.app import create_app
from api.security import Role
from api.settings import ApiSettings
from gateway.endpoint import MqttEndpoint
from gateway.service import Gateway, GatewayConfig
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from tests.api.conftest import OWN, LiveServer, World, add_user, publish_change
from tests.api.test_stream import SseReader
from tests.gateway.helpers import BASE_TS, wait_for

POOL_MAX = 4


def api_connections(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name LIKE 'steward-api%%'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def server(world: World) -> Iterator[LiveServer]:
    app = create_app(database_url=world.dsn, settings=ApiSettings(
        pool_max_size=POOL_MAX, stream_max_per_user=3, stream_max_total=30, stream_poll_seconds=0.2,
        stream_keepalive_seconds=1.0))
    with LiveServer(app) as live:
        yield live


def open_streams(url: str, headers: dict[str, str], n: int) -> list[SseReader]:
    readers = [SseReader(f"{url}/stream", headers) for _ in range(n)]
    for reader in readers:
        assert reader.opened.wait(15)
    return readers


def test_streams_are_capped_per_user_and_in_all_with_429(world: World, server: LiveServer) -> None:
    operator = world.headers(f"operator-{OWN}")
    mine = open_streams(server.url, operator, 3)
    try:
        assert [r.status for r in mine] == [200, 200, 200]
        r = httpx.get(f"{server.url}/stream", headers=operator, timeout=10)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_streams"
        assert r.headers["Retry-After"] == "5"
        # Another user still gets theirs.
        other = open_streams(server.url, world.headers(f"technician-{OWN}"), 1)
        assert other[0].status == 200
        other[0].close()
        # A closed stream gives its place back.
        mine.pop().close()
        wait_for(lambda: httpx.get(f"{server.url}/auth/me", headers=operator).status_code == 200, 10, "the API")

        def reopened() -> bool:
            reader = open_streams(server.url, operator, 1)[0]
            if reader.status == 200:
                mine.append(reader)
                return True
            reader.close()
            return False

        wait_for(reopened, 15, "a stream slot to be given back", interval=0.2)
    finally:
        for reader in mine:
            reader.close()


def test_many_streams_share_one_listener_and_the_gateway_still_stores(
        world: World, server: LiveServer, mosquitto: MosquittoBroker) -> None:
    # 10 users with 3 streams each: the total cap of 30; then 110 attempts more, as the attack made.
    with psycopg.connect(world.dsn) as conn:
        users = [add_user(conn, f"viewer-{i}", Role.MANAGER, [OWN])
                 for i in range(10)]
    world.users.update({f"viewer-{i}": u for i, u in enumerate(users)})
    readers: list[SseReader] = []
    try:
        for i in range(10):
            readers += open_streams(server.url, world.headers(f"viewer-{i}"), 3)
        assert all(r.status == 200 for r in readers) and len(readers) == 30
        token = world.headers(f"manager-{OWN}")  # a read-only token, as the attack used
        refused = [httpx.get(f"{server.url}/stream", headers=token, timeout=10) for _ in range(110)]
        assert {r.status_code for r in refused} == {429}
        # Whatever the clients do, the API holds at most its pool and the one listener.
        assert api_connections(world.dsn) <= POOL_MAX + 1
        # One change reaches all 30 streams (the fan-out), and the gateway still connects and commits.
        marker = publish_change(world.dsn, OWN, "fan-out")
        for reader in readers:
            assert reader.next(20)["id"] == marker
        gateway = Gateway(GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=world.dsn,
                                        client_id="steward-gw-limits"))
        gateway.start()
        try:
            topic = f"community/{OWN}/water/{world.meters[OWN]}/telemetry"
            payload = b'{"id": "lim-1", "ts": %d, "type": "flow", "flow_lpm": 2.5}' % BASE_TS
            assert publish_all(mosquitto.url, [(topic, payload)]) == 1
            assert gateway.wait_committed(1, timeout=30)
        finally:
            gateway.stop()
        assert api_connections(world.dsn) <= POOL_MAX + 1
    finally:
        for reader in readers:
            reader.close()


def test_health_is_degraded_while_the_gateway_cannot_reach_the_database(world: World) -> None:
    """After the server ran out of connections the gateway failed to reconnect while /health said ok."""
    from fastapi.testclient import TestClient

    state = {"broker_connected": True, "database_ok": False, "last_commit_at": None, "ingest_lag_seconds": None,
             "pending": 0, "write_error": None}
    with TestClient(create_app(database_url=world.dsn, gateway_status=lambda: dict(state))) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        assert r.json()["database_reachable"] is True and r.json()["gateway_database_ok"] is False
        state["database_ok"] = True
        assert client.get("/health").json()["status"] == "ok"
