"""API fixtures: an app over a fresh migrated database, users of every role, two communities."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from api.app import create_app
from api.security import Role, hash_password
from api.settings import ApiSettings
from api.store import changes
from api.users import issue_token
from domain.devices import Device, DeviceType
from ingest.registry import upsert_devices
from steward.brokers import free_port

OWN, OTHER = "north", "south"
PASSWORD = "correct-horse-battery"
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)
API_NOW = T0 + dt.timedelta(hours=2)  # where the API's clock stands when a test starts


class SetClock:
    """The API's clock in these tests: an instant the test sets and moves, never the wall clock."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self.at += delta
        return self.at
_HASH: list[str] = []  # argon2 is slow on purpose: hash the shared test password once per run


def password_hash() -> str:
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def add_user(conn: psycopg.Connection, username: str, role: Role, communities: list[str]) -> int:
    row = conn.execute("INSERT INTO api_users (username, role, password_hash) VALUES (%s, %s, %s) RETURNING id",
                       (username, role.value, password_hash())).fetchone()
    assert row is not None
    for community in communities:
        conn.execute("INSERT INTO api_user_communities (user_id, community_id) VALUES (%s, %s)", (row[0], community))
    return int(row[0])


@dataclass
class World:
    """What `seeded` put in the database: the same kinds of rows in both communities."""

    dsn: str
    devices: dict[str, str] = field(default_factory=dict)  # community -> elderly hub id
    meters: dict[str, str] = field(default_factory=dict)  # community -> water meter id
    residents: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        """A bearer token issued directly (the login route itself is tested in test_auth)."""
        with psycopg.connect(self.dsn) as conn:
            token, _ = issue_token(conn, user_id=self.users[username], ttl=dt.timedelta(hours=1))
        return {"Authorization": f"Bearer {token}"}


def seed(dsn: str) -> World:
    world = World(dsn)
    with psycopg.connect(dsn) as conn:
        for community in (OWN, OTHER):
            hub, meter = f"{community}-hub-1", f"{community}-meter-1"
            upsert_devices(conn, [
                Device(device_id=hub, community_id=community, device_type=DeviceType.ELDERLY, kind="home_hub",
                       building_id="b1", unit_id="u101"),
                Device(device_id=meter, community_id=community, device_type=DeviceType.WATER, kind="meter",
                       building_id="b1", unit_id="u101"),
            ])
            world.devices[community], world.meters[community] = hub, meter
            for i in range(12):
                conn.execute(
                    "INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type, "
                    "msg_id, value, fields) VALUES (%s, %s, %s, %s, 'water', 'telemetry', 'flow', %s, %s, %s)",
                    (T0 + dt.timedelta(minutes=i), T0 + dt.timedelta(minutes=i), community, meter, f"m{i}",
                     float(i), Jsonb({"flow_lpm": float(i), "total_l": 100.0 + i})),
                )
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, reason, detail, community_id, device_id, payload, "
                "payload_size) VALUES (%s, %s, 'invalid_payload', 'flow_lpm: expected a number', %s, %s, %s, 3)",
                (T0, f"community/{community}/water/{meter}/telemetry", community, meter, b"{x}"),
            )
            row = conn.execute(
                "INSERT INTO residents (community_id, building_id, unit_id, device_id, full_name, phone, care_notes) "
                "VALUES (%s, 'b1', 'u101', %s, 'Wang Xiuying', '13800138000', 'diabetic; daughter visits Sundays') "
                "RETURNING id",
                (community, hub),
            ).fetchone()
            assert row is not None
            world.residents[community] = row[0]
        for role in Role:
            for community in (OWN, OTHER):
                world.users[f"{role.value}-{community}"] = add_user(conn, f"{role.value}-{community}", role,
                                                                    [community])
    return world


@pytest.fixture
def world(database_url: str) -> World:
    return seed(database_url)


@pytest.fixture
def clock() -> SetClock:
    return SetClock(API_NOW)


@pytest.fixture
def app(world: World, clock: SetClock) -> FastAPI:
    return create_app(database_url=world.dsn, settings=ApiSettings(stream_poll_seconds=0.2,
                                                                  stream_keepalive_seconds=1.0), clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def publish_change(dsn: str, community: str, entity_id: str, change: str = "opened") -> int:
    with psycopg.connect(dsn) as conn:
        return changes.publish(conn, community_id=community, entity="alert", entity_id=entity_id, change=change,
                               data={"title": f"alert in {community}"})


class LiveServer:
    """The app under a real uvicorn on a free loopback port (streaming needs a real socket)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        # proxy_headers off, as steward run starts it: the API decides whose X-Forwarded-For to believe.
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", proxy_headers=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15  # a start-up deadline: the monotonic clock, not the calendar
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
