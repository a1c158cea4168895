"""Shared fixtures: a private Mosquitto per test and a throw-away database per test.

The database server is, in order: ``TEST_DATABASE_URL`` (an admin DSN; point
it at a TimescaleDB server to run the Timescale-mode tests), the local
PostgreSQL on 127.0.0.1:5432, or an embedded PostgreSQL started for the run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.migrate import migrate
from ingest.modes import ServerTimescale, probe_server
from steward.brokers import MosquittoBroker
from steward.databases import EmbeddedPostgres, create_database, drop_database, reachable

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def admin_dsn() -> Iterator[str]:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    if reachable(LOCAL_DSN):
        yield LOCAL_DSN
        return
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="steward-pg-")))
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def timescale_offer(admin_dsn: str) -> ServerTimescale:
    """Whether the server has TimescaleDB, and preloads it (without which it cannot be used)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return probe_server(conn)


@pytest.fixture(scope="session")
def server_has_timescale(timescale_offer: ServerTimescale) -> bool:
    """TimescaleDB usable: installed and in shared_preload_libraries."""
    return timescale_offer.available and timescale_offer.preloaded


@pytest.fixture
def empty_database(admin_dsn: str) -> Iterator[str]:
    """A new, empty database (no migrations), dropped afterwards."""
    dsn = create_database(admin_dsn)
    try:
        yield dsn
    finally:
        drop_database(admin_dsn, dsn)


@pytest.fixture
def database_url(empty_database: str) -> str:
    """A new database with every migration applied in the server's best mode."""
    migrate(empty_database)
    return empty_database


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private, anonymous Mosquitto on a free port with persistence and no queue limits."""
    if not MosquittoBroker.available():
        pytest.fail("mosquitto is not installed: run the README's test command, which installs it")
    with MosquittoBroker(workdir=tmp_path / "mqtt") as broker:
        yield broker


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of the test's own, for tests that stop and restart it (an outage)."""
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="steward-pg-own-")))
    server.start()
    yield server
    try:
        server.stop()
    except Exception:
        pass
