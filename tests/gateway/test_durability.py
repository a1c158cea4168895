"""Nothing valid is lost and nothing is stored twice: the gateway killed with
SIGKILL mid-stream, and the database restarted mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from gateway.service import Gateway, GatewayConfig
from ingest.migrate import migrate
from steward.brokers import MosquittoBroker
from steward.databases import EmbeddedPostgres
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import count, flow, register_meters, wait_for

ROOT = Path(__file__).resolve().parents[2]


def start_gateway_process(mqtt_url: str, database_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STEWARD_MQTT_URL": mqtt_url,
        "STEWARD_DATABASE_URL": database_url,
        "STEWARD_MQTT_CLIENT_ID": "steward-gw-durability",
        "STEWARD_BATCH_SIZE": "500",
    }
    env.pop("STEWARD_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT
    )


def test_gateway_killed_mid_stream_loses_nothing_and_stores_nothing_twice(
    mosquitto: MosquittoBroker, database_url: str, tmp_path: Path
) -> None:
    total = 20_000
    devices = register_meters(database_url, 100)
    log_path = tmp_path / "gateway.log"
    gw = start_gateway_process(mosquitto.url, database_url, log_path)
    try:
        # The gateway's persistent session and subscription must exist before the stream
        # starts: a probe message stored proves both.
        probe_topic, _ = flow(devices[0], 0)
        probe = b'{"id": "probe", "ts": 1795000000000, "type": "flow", "flow_lpm": 0}'
        stored_probe = lambda: count(database_url, "SELECT count(*) FROM events WHERE msg_id = 'probe'") > 0  # noqa: E731
        for _ in range(10):  # a probe sent before the subscription is simply not delivered: send again
            publish_all(mosquitto.url, [(probe_topic, probe)], client_id="probe")
            try:
                wait_for(stored_probe, 3, "the probe")
                break
            except AssertionError:
                continue
        assert stored_probe(), "the gateway never subscribed"
        published: list[int] = []
        publisher = threading.Thread(
            target=lambda: published.append(
                publish_all(mosquitto.url, (flow(devices[i % 100], i) for i in range(total)), client_id="pub")
            )
        )
        publisher.start()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM events") >= 3000 + 1, 60, "3000 events to be stored")
        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        stored_at_kill = count(database_url, "SELECT count(*) FROM events")
        publisher.join(120)
        assert published == [total]
        gw = start_gateway_process(mosquitto.url, database_url, log_path)
        stream = "SELECT count(*) FROM events WHERE msg_id <> 'probe'"
        wait_for(lambda: count(database_url, stream) >= total, 120, f"all {total} events after the restart")
        assert stored_at_kill < total, "the kill happened after everything was stored: the test proved nothing"
        assert count(database_url, stream) == total
        assert (
            count(database_url, "SELECT count(DISTINCT (device_id, msg_id)) FROM events WHERE msg_id <> 'probe'")
            == total
        )
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        gw.terminate()
        gw.wait(10)


def test_database_restart_mid_stream_loses_nothing(
    mosquitto: MosquittoBroker, private_postgres: EmbeddedPostgres
) -> None:
    dsn = private_postgres.dsn
    migrate(dsn)
    total = 6000
    devices = register_meters(dsn, 20)
    gw = Gateway(
        GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=dsn, client_id="gw-dbrestart", batch_size=200)
    )
    gw.start()
    try:
        wait_for(lambda: gw.status()["broker_connected"], 10, "the gateway to connect")
        first = [flow(devices[i % 20], i) for i in range(total // 2)]
        second = [flow(devices[i % 20], i) for i in range(total // 2, total)]
        publish_all(mosquitto.url, first)
        assert gw.wait_committed(total // 2, 60)
        private_postgres.stop()
        publish_all(mosquitto.url, second)  # the broker takes them while the database is down
        wait_for(lambda: not gw.status()["database_ok"], 30, "the gateway to notice the outage")
        assert gw.committed < total
        private_postgres.restart()
        assert gw.wait_committed(total, 120), f"only {gw.committed} of {total} stored after the restart"
        assert count(dsn, "SELECT count(*) FROM events") == total
        assert count(dsn, "SELECT count(DISTINCT (device_id, msg_id)) FROM events") == total
    finally:
        gw.stop()


def test_a_stop_in_the_middle_of_a_backlog_drains_what_it_holds_and_leaves_the_rest_to_the_session(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    """A gateway told to stop (a shard handed back, a worker stopped) while the broker is
    still sending it a backlog: it commits and acknowledges what it had taken in and stops
    taking more, instead of draining the whole backlog first (in a worker, past its drain
    timeout, with the last commit fenced once the lease is released). What it left goes,
    through the broker's session, to the next gateway with the client id: nothing lost or
    doubled."""
    meters = register_meters(database_url, 100)
    config = GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url,
                           client_id="steward-gw-stop-mid-backlog", batch_size=500, max_in_flight=1000)
    session = Gateway(config).start()  # the persistent session, then away while the backlog queues
    wait_for(lambda: session.session.connected, 30, "the gateway to subscribe")
    session.stop()
    total = 20_000
    assert publish_all(mosquitto.url, (flow(meters[i % 100], i) for i in range(total))) == total
    first = Gateway(config).start()
    second = None
    try:
        wait_for(lambda: first.committed >= 1000, 60, "the backlog to start draining")
        first.stop(timeout=60)
        assert not any(t.is_alive() for t in first.writers.threads)
        left = total - count(database_url, "SELECT count(*) FROM events")
        assert left > 10_000, "the stopping gateway went on taking the backlog in"
        second = Gateway(config).start()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM events") >= total, 120, "the rest from the session")
        assert count(database_url, "SELECT count(*) FROM events") == total
        assert count(database_url, "SELECT count(DISTINCT (device_id, msg_id)) FROM events") == total
    finally:
        if second is not None:
            second.stop()
        first.stop()
