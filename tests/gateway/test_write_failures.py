"""A writer that fails for another reason than the database being away (a bug in a
detector, a schema problem) keeps its batch, says so, and goes on once it can."""

from __future__ import annotations

import threading

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from gateway import metrics
from gateway.service import Gateway, GatewayConfig
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import count, flow, register_meters, wait_for


class BuggyDetectors:
    """A detector runtime that raises a TypeError while ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = threading.Event()
        self.processed = 0

    def restore(self, conn: psycopg.Connection) -> None:
        pass

    def process(self, conn: psycopg.Connection, events: list) -> None:
        if self.broken.is_set():
            raise TypeError("a bug in a detector")
        self.processed += len(events)

    def tick(self, conn: psycopg.Connection, now: object) -> None:
        pass

    def checkpoint(self, conn: psycopg.Connection) -> None:
        pass


def test_a_bug_in_a_batch_is_reported_retried_and_loses_nothing(mosquitto: MosquittoBroker, database_url: str) -> None:
    devices = register_meters(database_url, 5)
    detectors = BuggyDetectors()
    detectors.broken.set()
    failures_before = metrics.WRITE_FAILURES._value.get()
    config = GatewayConfig(
        mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-buggy", failure_retry_s=0.2
    )
    gw = Gateway(config, sink=detectors).start()
    try:
        wait_for(lambda: gw.status()["broker_connected"], 10, "the gateway to connect")
        assert publish_all(mosquitto.url, [flow(devices[i % 5], i) for i in range(200)]) == 200
        wait_for(lambda: gw.status()["write_error"] is not None, 20, "the failure to show in the status")
        assert gw.status()["write_error"] == "TypeError: a bug in a detector"
        with TestClient(create_app(database_url=database_url, gateway_status=gw.status)) as api:
            health = api.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["write_error"] == "TypeError: a bug in a detector"
        # Retried, not dropped: the writer thread lives on, and nothing was stored.
        wait_for(lambda: metrics.WRITE_FAILURES._value.get() >= failures_before + 2, 20, "a retry that fails again")
        assert count(database_url, "SELECT count(*) FROM events") == 0
        assert all(t.is_alive() for t in gw._writers)

        detectors.broken.clear()  # the bug is gone (say, a restarted detector)
        assert gw.wait_committed(200, timeout=30)
        assert gw.status()["write_error"] is None
        assert detectors.processed == 200
        assert count(database_url, "SELECT count(*) FROM events") == 200
        with TestClient(create_app(database_url=database_url, gateway_status=gw.status)) as api:
            assert api.get("/health").json()["status"] == "ok"
    finally:
        gw.stop()
