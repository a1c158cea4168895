"""Durability on a broker that promises it: a 3-node RabbitMQ cluster (Debian's
3.10 with the MQTT plugin; the shards' sessions are quorum queues replicated on
every node), devices publishing QoS 1 to every node, and a sharded worker
consuming. Mid-stream one node is killed with SIGKILL; it is restarted, and then
the node holding the leader of a shard's session queue is killed. Every message
a node acknowledged to a device is stored, and stored once.

The short variant runs in CI; ``pytest -m long`` runs a longer stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from steward import rabbitmq
from tests.gateway.helpers import count, now_ms, wait_for
from tests.scaleout.fleet import COMMUNITIES, ROOT, flow, register_fleet, wait_subscribed


class DevicePublisher:
    """Publishes numbered QoS 1 messages to one node until told to stop or until the
    node goes away; remembers what the node acknowledged."""

    def __init__(self, node: rabbitmq.RabbitNode, tag: str, base_ms: int, window: int = 100) -> None:
        self.node, self.tag, self.base_ms, self.window = node, tag, base_ms, window
        self.acked: set[str] = set()
        self.sent = 0
        self._pending: dict[int, str] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"devices-{tag}", daemon=True)

    def start(self) -> DevicePublisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        with self._lock:  # never held around client.publish: paho calls this under its own lock
            msg_id = self._pending.pop(mid, None)
            if msg_id is not None:
                self.acked.add(msg_id)
            else:  # acknowledged before publish() returned its mid
                self._early.add(mid)

    def _run(self) -> None:
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"devices-{self.tag}")
        client.on_publish = self._on_publish
        client.connect("127.0.0.1", self.node.mqtt_port, 30)
        client.loop_start()
        deadline = time.monotonic() + 20
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)  # the CONNACK; bounded
        i = 0
        while not self._stop.is_set() and client.is_connected():
            with self._lock:
                busy = len(self._pending) >= self.window
            if busy:
                time.sleep(0.002)  # the window is full: wait for PUBACKs
                continue
            community = COMMUNITIES[i % len(COMMUNITIES)]
            topic, payload = flow(community, i, self.base_ms)
            payload = payload.replace(f'"f{i}"'.encode(), f'"{self.tag}-{i}"'.encode())
            info = client.publish(topic, payload, qos=1)
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self.acked.add(f"{self.tag}-{i}")
                else:
                    self._pending[info.mid] = f"{self.tag}-{i}"
            self.sent += 1
            i += 1
            if i % 50 == 0:
                time.sleep(0.01)  # a fleet's pace, not a wait
        # The last PUBACKs of a live node: until none is outstanding (a dead node's never come).
        deadline = time.monotonic() + 10
        while client.is_connected() and time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(0.01)  # polling for them, bounded by the deadline
        client.disconnect()
        client.loop_stop()


def start_worker(url: str, dsn: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
    env.update(
        STEWARD_MQTT_URL=url,
        STEWARD_DATABASE_URL=dsn,
        STEWARD_MQTT_CLIENT_ID="steward-gateway-rmq",
        STEWARD_SHARDS="2",
        STEWARD_DETECTORS="false",
        STEWARD_BATCH_SIZE="500",
        STEWARD_DATA_DIR=str(log.parent / "worker"),
        PYTHONFAULTHANDLER="1",  # a worker that hangs is aborted with every thread's stack in its log
    )
    return subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def run_cluster_faults(database_url: str, tmp_path: Path, *, per_phase: int) -> None:
    if not rabbitmq.available():
        pytest.fail("rabbitmq-server is not installed: run the README's test command, which installs it")
    register_fleet(database_url)
    cluster = rabbitmq.RabbitCluster(tmp_path / "rmq", prefix=f"steward-test-{os.getpid()}")
    cluster.start()
    n1, n2, n3 = cluster.nodes
    url = "mqtt://" + ",".join(f"127.0.0.1:{n.mqtt_port}" for n in (n1, n2, n3))
    worker = start_worker(url, database_url, tmp_path / "worker.log")
    publishers: list[DevicePublisher] = []
    try:
        wait_subscribed(url.replace(f",127.0.0.1:{n2.mqtt_port},127.0.0.1:{n3.mqtt_port}", ""), database_url, 120)
        base = now_ms() - 60_000
        stored = lambda: count(database_url, "SELECT count(*) FROM events")  # noqa: E731

        def phase(name: str) -> list[DevicePublisher]:
            live = [n for n in cluster.nodes if n.alive]
            started = [DevicePublisher(n, f"{name}{k}", base).start() for k, n in enumerate(live)]
            publishers.extend(started)
            return started

        # 1. Devices publish to every node; one node dies mid-stream.
        first = phase("a")
        before = stored()
        wait_for(lambda: stored() >= before + per_phase, 120, "the stream to flow")
        n3.kill()
        wait_for(lambda: stored() >= before + 2 * per_phase, 120, "the stream to flow on two nodes")
        for p in first:
            p.stop()
        n3.start()
        n3.wait_started()
        wait_for(lambda: len(cluster.running_nodes(n1)) == 3, 120, "the node to rejoin")

        # 2. The node holding the leader of shard 0's session queue dies mid-stream.
        leader = cluster.queue_leader("mqtt-subscription-steward-gateway-rmq-shard-0qos1", n1)
        assert leader is not None, "shard 0's session has no quorum queue"
        second = phase("b")
        before = stored()
        wait_for(lambda: stored() >= before + per_phase, 120, "the stream to flow again")
        cluster.node(leader).kill()
        wait_for(lambda: stored() >= before + 2 * per_phase, 180, "the stream to flow after the leader died")
        for p in second:
            p.stop()

        acked = set().union(*(p.acked for p in publishers))
        assert len(acked) >= 4 * per_phase
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM events WHERE msg_id = ANY(%s)", list(acked)) >= len(acked),
            180,
            f"all {len(acked)} acknowledged messages stored",
            interval=0.5,
        )
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT count(*), count(DISTINCT (device_id, msg_id)) FROM events WHERE left(msg_id, 5) <> 'probe'"
            ).fetchone()
        assert rows is not None and rows[0] == rows[1], "a message was stored twice"
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    except BaseException:
        worker.send_signal(signal.SIGABRT)
        raise
    finally:
        # Processes first, so that nothing outlives a failed or timed-out test; the
        # publishers' threads then end with their nodes.
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        cluster.stop()
        for p in publishers:
            p.stop()


@pytest.mark.timeout(1200)  # about 1-2 min on a quiet machine; the shared one can be 10x slower
def test_rabbitmq_cluster_loses_no_acknowledged_message_when_nodes_die(database_url: str, tmp_path: Path) -> None:
    run_cluster_faults(database_url, tmp_path, per_phase=1000)


@pytest.mark.long
@pytest.mark.timeout(1200)  # about 1-2 min on a quiet machine; the shared one can be 10x slower
def test_rabbitmq_cluster_long_stream_loses_no_acknowledged_message(database_url: str, tmp_path: Path) -> None:
    run_cluster_faults(database_url, tmp_path, per_phase=10_000)
