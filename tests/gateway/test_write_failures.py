"""A writer that fails for another reason than the database being away (a bug in a
detector, a schema problem, a value the database refuses) keeps its batch, says so,
and goes on once it can; one message that cannot be stored does not hold up the rest."""

from __future__ import annotations

import threading

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from gateway import metrics
from gateway.service import GatewayConfig
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import count, flow, register_meters, running_gateway, wait_for


class BuggyDetectors:
    """A detector runtime that raises a TypeError while ``broken`` is set."""

    def __init__(self, trips_on: str | None = None) -> None:
        self.broken = threading.Event()
        self.trips_on = trips_on  # a message id the bug is triggered by
        self.processed = 0

    def restore(self, conn: psycopg.Connection) -> None:
        pass

    def process(self, conn: psycopg.Connection, events: list) -> None:
        if self.broken.is_set():
            raise TypeError("a bug in a detector")
        if any(e.msg_id == self.trips_on for e in events):
            raise KeyError(self.trips_on)
        self.processed += len(events)

    def tick(self, conn: psycopg.Connection, now: object) -> None:
        pass

    def checkpoint(self, conn: psycopg.Connection) -> None:
        pass


def _retrying_fast(mosquitto: MosquittoBroker, database_url: str, client_id: str) -> GatewayConfig:
    return GatewayConfig(
        mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id=client_id, failure_retry_s=0.2
    )


def _meters_with_schema_change(database_url: str, ddl: str) -> list[str]:
    """Five registered meters, and a change to the schema that makes some writes fail."""
    devices = register_meters(database_url, 5)
    with psycopg.connect(database_url) as conn:
        conn.execute(ddl)
    return devices


def test_a_bug_in_a_batch_is_reported_retried_and_loses_nothing(mosquitto: MosquittoBroker, database_url: str) -> None:
    devices = register_meters(database_url, 5)
    detectors = BuggyDetectors()
    detectors.broken.set()
    failures_before = metrics.WRITE_FAILURES._value.get()
    config = _retrying_fast(mosquitto, database_url, "gw-buggy")
    with running_gateway(config, sink=detectors) as gw:
        assert publish_all(mosquitto.url, [flow(devices[i % 5], i) for i in range(200)]) == 200
        wait_for(lambda: gw.status()["write_error"] is not None, 20, "the failure to show in the status")
        assert gw.status()["write_error"] == "TypeError: a bug in a detector"
        with TestClient(create_app(database_url=database_url, gateway_status=gw.status)) as api:
            health = api.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["write_error"] == "TypeError: a bug in a detector"
        # Retried, not dropped: the writer thread lives on, and nothing was stored. Past the
        # second failure the batch is tried in parts, but every part fails: the bug is the
        # whole stream's, and nothing is dead-lettered.
        wait_for(lambda: metrics.WRITE_FAILURES._value.get() >= failures_before + 4, 20, "retries that fail again")
        assert count(database_url, "SELECT count(*) FROM events") == 0
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
        assert all(t.is_alive() for t in gw.writers.threads)

        detectors.broken.clear()  # the bug is gone (say, a restarted detector)
        assert gw.wait_committed(200, timeout=30)
        assert gw.status()["write_error"] is None
        assert detectors.processed == 200
        assert count(database_url, "SELECT count(*) FROM events") == 200
        with TestClient(create_app(database_url=database_url, gateway_status=gw.status)) as api:
            assert api.get("/health").json()["status"] == "ok"


def _letters(dsn: str) -> list[tuple[str, str, bytes]]:
    with psycopg.connect(dsn) as conn:
        return [(r, d, bytes(p)) for r, d, p in conn.execute("SELECT reason, detail, payload FROM dead_letters")]


def test_a_message_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    devices = _meters_with_schema_change(  # the server refuses one row
        database_url, "ALTER TABLE events ADD CONSTRAINT no_m25 CHECK (msg_id <> 'm25')"
    )
    messages = [flow(devices[i % 5], i) for i in range(200)]
    config = _retrying_fast(mosquitto, database_url, "gw-refused")
    with running_gateway(config) as gw:
        assert publish_all(mosquitto.url, messages) == 200
        assert gw.wait_committed(199, timeout=30)
        wait_for(lambda: gw.status()["pending"] == 0, 10, "every message to be acknowledged")
        assert gw.status()["write_error"] is None
    assert count(database_url, "SELECT count(*) FROM events") == 199
    assert count(database_url, "SELECT count(*) FROM events WHERE msg_id = 'm25'") == 0
    ((reason, detail, payload),) = _letters(database_url)
    assert reason == "internal_error" and "no_m25" in detail
    assert payload == messages[25][1]  # kept whole, to be stored once the cause is fixed
    # Acknowledged: a new gateway on the same session gets nothing again.
    with running_gateway(config) as gw:
        publish_all(mosquitto.url, [flow(devices[0], 1000)])
        assert gw.wait_committed(1, timeout=20)
        assert gw.duplicates == 0 and gw.rejected == 0


def test_a_bug_one_event_trips_dead_letters_that_event_only(mosquitto: MosquittoBroker, database_url: str) -> None:
    devices = register_meters(database_url, 5)
    detectors = BuggyDetectors(trips_on="m7")
    config = _retrying_fast(mosquitto, database_url, "gw-trips")
    with running_gateway(config, sink=detectors) as gw:
        assert publish_all(mosquitto.url, [flow(devices[i % 5], i) for i in range(100)]) == 100
        assert gw.wait_committed(99, timeout=30)
        wait_for(lambda: gw.rejected == 1, 10, "the event to be dead-lettered")
    assert count(database_url, "SELECT count(*) FROM events") == 99
    ((reason, detail, _),) = _letters(database_url)
    assert reason == "internal_error" and "KeyError" in detail and "m7" in detail


def test_a_schema_problem_is_retried_and_reported_not_dead_lettered(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    """Dead-lettering every message would not fix a broken schema: the gateway waits."""
    devices = _meters_with_schema_change(database_url, "ALTER TABLE events RENAME COLUMN value TO value_renamed")
    config = _retrying_fast(mosquitto, database_url, "gw-schema")
    failures_before = metrics.WRITE_FAILURES._value.get()
    with running_gateway(config) as gw:
        assert publish_all(mosquitto.url, [flow(devices[i % 5], i) for i in range(100)]) == 100
        # Past the second failure, when a batch would be isolated if it could be one message's doing.
        wait_for(lambda: metrics.WRITE_FAILURES._value.get() >= failures_before + 4, 20, "repeated failures")
        assert "value" in (gw.status()["write_error"] or "")
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
        with psycopg.connect(database_url) as conn:
            conn.execute("ALTER TABLE events RENAME COLUMN value_renamed TO value")
        assert gw.wait_committed(100, timeout=30)
        assert gw.status()["write_error"] is None
    assert count(database_url, "SELECT count(*) FROM events") == 100
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


def test_a_lone_bad_message_before_a_single_writer_does_not_hold_up_what_follows(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    """With detectors there is one writer: while the bad message's batch fails, nothing
    else is stored, so nothing tells a bad message from a broken stream, until what
    came after it is tried with it."""
    devices = _meters_with_schema_change(database_url, "ALTER TABLE events ADD CONSTRAINT no_m0 CHECK (msg_id <> 'm0')")
    config = _retrying_fast(mosquitto, database_url, "gw-lone")
    failures_before = metrics.WRITE_FAILURES._value.get()
    with running_gateway(config, sink=BuggyDetectors()) as gw:
        publish_all(mosquitto.url, [flow(devices[0], 0)])  # alone: a batch of one
        wait_for(lambda: metrics.WRITE_FAILURES._value.get() >= failures_before + 3, 20, "isolating to fail alone")
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0  # not yet known to be the message
        assert publish_all(mosquitto.url, [flow(devices[i % 5], i) for i in range(1, 51)]) == 50
        assert gw.wait_committed(50, timeout=30)
        wait_for(lambda: gw.rejected == 1, 10, "the bad message to be dead-lettered")
    ((reason, detail, _),) = _letters(database_url)
    assert reason == "internal_error" and "no_m0" in detail
    assert count(database_url, "SELECT count(*) FROM events") == 50
