"""End to end: a labelled simulator scenario published over MQTT to a private Mosquitto
becomes an incident row (gateway -> validation -> events -> detectors -> incidents)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import psycopg

from detectors.runtime import DetectorRuntime
from gateway.service import Gateway, GatewayConfig
from ingest.registry import upsert_devices
from simulators import build_fleet
from simulators.engine import Simulation
from simulators.scenarios import Placement
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


# Where the gateway's clock starts: a set instant, never this machine's date.
START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)


def running_clock(start: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock that starts at ``start`` and runs at the machine's pace (the gateway's ticks
    release the reorder window and the timers as time passes)."""
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


def test_entrapment_published_over_mqtt_becomes_an_incident_row(mosquitto: MosquittoBroker, database_url: str) -> None:
    fleet = build_fleet(11, preset="building")
    now = START
    fault_at = now - dt.timedelta(minutes=30)
    sim = Simulation(fleet, start=now - dt.timedelta(minutes=40), duration=dt.timedelta(minutes=35), auto_incidents=False,
                     placements=[Placement(type="lift_fault_7", at=fault_at, minutes=10)])
    (scenario,) = sim.scenarios
    lift = scenario.devices[0]
    messages = [(m.topic, m.payload) for m in sim.messages()]
    with psycopg.connect(database_url) as conn:
        upsert_devices(conn, fleet.devices)

    gw = Gateway(GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-detectors-e2e"),
                 sink=DetectorRuntime(), clock=running_clock(now))
    gw.start()
    try:
        wait_for(lambda: gw.status()["broker_connected"], 10, "the gateway to connect")
        assert publish_all(mosquitto.url, messages) == len(messages)
        assert gw.wait_committed(len(messages), timeout=60)

        def entrapment() -> tuple | None:
            with psycopg.connect(database_url) as conn:
                return conn.execute("SELECT id, tier, status, opened_at, device_ids FROM incidents WHERE dedup_key = %s",
                                    (f"{lift}:entrapment",)).fetchone()

        wait_for(lambda: entrapment() is not None, 30, "the entrapment incident row")
        incident_id, tier, status, opened_at, device_ids = entrapment()  # type: ignore[misc]
        assert tier == 1 and device_ids == [lift]
        assert abs((opened_at - fault_at).total_seconds()) <= 2  # event time, not arrival time
        wait_for(lambda: (entrapment() or (0, 0, ""))[2] == "resolved", 30, "the entrapment to clear with the fault code")
        with psycopg.connect(database_url) as conn:
            kinds = [k for (k,) in conn.execute("SELECT kind FROM incident_timeline WHERE incident_id = %s ORDER BY id", (incident_id,))]
            assert kinds[0] == "opened" and kinds[-1] == "cleared"
            assert conn.execute("SELECT count(*) FROM incidents WHERE dedup_key LIKE %s", (f"{lift}:%",)).fetchone()[0] == 1
    finally:
        gw.stop()
