"""A database server with no connection left (issue 17, "Why" 5 and "Deliver" 4).

110 live streams once took 110 PostgreSQL connections: the server refused
everyone ("sorry, too many clients already") and the gateway then failed to
reconnect. Here a server of this test alone, with a small ``max_connections``,
is filled to its last slot by other clients while the gateway runs: the
gateway's writers keep the connections they opened at start, so it goes on
storing every acknowledged message. And the API, hammered by concurrent
requests, never holds more than its pool and its one stream listener, so other
clients still find a free slot; what it cannot serve is a 503, never a 500.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from api.app import create_app
from api.settings import ApiSettings
from gateway.endpoint import MqttEndpoint
from gateway.service import Gateway, GatewayConfig
from ingest.migrate import migrate
from steward.brokers import MosquittoBroker
from steward.databases import EmbeddedPostgres, create_database, drop_database
from steward.publisher import publish_all
from tests.api.conftest import OWN, LiveServer, seed
from tests.gateway.helpers import BASE_TS, wait_for

MAX_CONNECTIONS = 20
POOL_MAX = 4


@pytest.fixture(scope="module")
def small_server() -> Iterator[str]:
    """A PostgreSQL server of this module alone with MAX_CONNECTIONS slots, all usable by its (super)user."""
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="steward-pg-full-")))
    server.start()
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
            conn.execute("ALTER SYSTEM SET superuser_reserved_connections = 0")
        server.stop()
        server.restart()  # max_connections takes a restart
        with psycopg.connect(server.dsn) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
        assert row == (str(MAX_CONNECTIONS),)
        yield server.dsn
    finally:
        try:
            server.stop()
        except Exception:
            pass


@pytest.fixture
def database(small_server: str) -> Iterator[str]:
    dsn = create_database(small_server)
    try:
        migrate(dsn)
        yield dsn
    finally:
        drop_database(small_server, dsn)


def fill(dsn: str) -> list[psycopg.Connection]:
    """Every connection the server still gives, as an attacker's clients would take them."""
    taken: list[psycopg.Connection] = []
    while len(taken) <= MAX_CONNECTIONS:
        try:
            taken.append(psycopg.connect(dsn, connect_timeout=5))
        except psycopg.OperationalError as exc:
            assert "too many clients" in str(exc), exc
            return taken
    raise AssertionError(f"the server let in more than max_connections ({MAX_CONNECTIONS}) clients")


def named(conn: psycopg.Connection, application: str) -> int:
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                       (application,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_gateway_keeps_storing_while_other_clients_take_every_free_connection(
        database: str, mosquitto: MosquittoBroker) -> None:
    world = seed(database)
    config = GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=make_conninfo(database, application_name="gw-full"),
                           client_id="steward-gateway-full-db", writers=2)
    gateway = Gateway(config).start()
    taken: list[psycopg.Connection] = []
    try:
        with psycopg.connect(database) as probe:
            wait_for(lambda: named(probe, "gw-full") == config.writers, 30, "the gateway's writers to connect")
        taken = fill(database)
        assert len(taken) >= MAX_CONNECTIONS - config.writers - 1, len(taken)  # (the probe's may be closing)
        topic = f"community/{OWN}/water/{world.meters[OWN]}/telemetry"
        messages = [(topic, b'{"id": "full-%d", "ts": %d, "type": "flow", "flow_lpm": 2.5}' % (i, BASE_TS + i))
                    for i in range(200)]
        assert publish_all(mosquitto.url, messages) == len(messages)  # every one acknowledged by the broker
        assert gateway.wait_committed(len(messages), timeout=60), gateway.status()
        row = taken[0].execute("SELECT count(*) FROM events WHERE device_id = %s", (world.meters[OWN],)).fetchone()
        assert row is not None and row[0] >= len(messages)  # 12 seeded readings, then every one published
        assert gateway.status()["database_ok"] is True
    finally:
        for conn in taken:
            conn.close()
        gateway.stop()


def test_the_api_under_concurrent_requests_leaves_the_server_connections_to_others(database: str) -> None:
    world = seed(database)
    app = create_app(database_url=database, settings=ApiSettings(pool_max_size=POOL_MAX, pool_timeout_seconds=2))
    token = world.headers(f"operator-{OWN}")
    codes: list[int] = []
    most = 0
    with LiveServer(app) as server, psycopg.connect(database, autocommit=True) as probe:
        done = threading.Event()

        def ask(i: int) -> int:
            path = ("/devices", "/alerts", "/events", "/residents")[i % 4]
            return httpx.get(f"{server.url}{path}", headers=token, timeout=30).status_code

        def hammer() -> None:
            with ThreadPoolExecutor(max_workers=20) as pool:
                codes.extend(pool.map(ask, range(120)))
            done.set()

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            while not done.wait(0.1):  # sample what the API holds while the requests are in flight
                most = max(most, named(probe, "steward-api%"))
                with psycopg.connect(database, connect_timeout=5):
                    pass  # another client still gets in
        finally:
            thread.join()
    assert set(codes) <= {200, 503} and codes.count(200) > 0, sorted(set(codes))
    assert 0 < most <= POOL_MAX + 1, most
