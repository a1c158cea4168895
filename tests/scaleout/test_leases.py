"""Shard layout and leases against PostgreSQL: stable assignment, the fixed count,
and the fence that keeps a worker that lost its shard from ever committing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from domain.devices import Device, DeviceType
from gateway.endpoint import MqttEndpoint
from gateway.service import GatewayConfig
from gateway.worker import ShardWorker
from ingest import shards as db
from ingest.registry import upsert_devices
from steward.brokers import MosquittoBroker, free_port
from steward.publisher import publish_all
from steward.settings import ConfigError, load_settings
from tests.gateway.helpers import GATEWAY_NOW, GATEWAY_NOW_MS, wait_for


def _register(dsn: str, *communities: str) -> None:
    with psycopg.connect(dsn) as conn:
        upsert_devices(
            conn,
            [Device(device_id=f"{c}-m", community_id=c, device_type=DeviceType.WATER, kind="meter") for c in communities],
        )


def _assignment(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT community_id, shard FROM community_shards").fetchall())


def test_communities_keep_their_shard_when_others_are_added(database_url: str) -> None:
    _register(database_url, "a", "b", "c")  # before any worker: assigned when the layout is made
    with psycopg.connect(database_url) as conn:
        db.ensure_layout(conn, 4)
    first = _assignment(database_url)
    assert sorted(first) == ["a", "b", "c"] and len(set(first.values())) == 3  # fewest communities first
    _register(database_url, *(f"n{i}" for i in range(9)))
    after = _assignment(database_url)
    assert {c: after[c] for c in first} == first  # nobody moved
    per_shard = [list(after.values()).count(s) for s in range(4)]
    assert max(per_shard) - min(per_shard) <= 1
    with psycopg.connect(database_url) as conn:  # a device moving community keeps the rest where they are
        conn.execute("UPDATE devices SET community_id = 'z' WHERE device_id = 'a-m'")
    assert {c: s for c, s in _assignment(database_url).items() if c in after} == after


def test_the_shard_count_is_fixed_once_laid_out(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        db.ensure_layout(conn, 4)
        with pytest.raises(db.LayoutMismatch, match="laid out in 4 shards, not 8"):
            db.ensure_layout(conn, 8)


def test_settings_refuse_a_share_group_or_auto_registration_with_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_SHARDS", "4")
    monkeypatch.setenv("STEWARD_MQTT_SHARE_GROUP", "g")
    with pytest.raises(ConfigError, match="mqtt_share_group"):
        load_settings()
    monkeypatch.delenv("STEWARD_MQTT_SHARE_GROUP")
    monkeypatch.setenv("STEWARD_DEVICE_POLICY", "auto")
    with pytest.raises(ConfigError, match="device_policy"):
        load_settings()


def _insert_marker(conn: psycopg.Connection, worker: str, lease: db.Lease) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO dead_letters (topic, reason, detail, received_at, payload, payload_size) VALUES (%s, 'bad_topic', 'x', now(), '', 0)",
            (f"marker/{worker}",),
        )
        db.check_fence(conn, worker, lease)


def test_a_worker_that_lost_its_lease_never_commits_again(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        db.ensure_layout(conn, 2)
    leases = psycopg.connect(database_url, autocommit=True)
    a = psycopg.connect(database_url)
    b = psycopg.connect(database_url)
    try:
        lease_a = db.acquire(leases, "A", 0, ttl_s=0.2)
        assert lease_a is not None
        assert db.acquire(leases, "B", 0, ttl_s=30) is None  # held: not B's to take
        _insert_marker(a, "A", lease_a)  # the owner commits
        # A pauses: its lease expires, B takes the shard over (a new epoch)...
        wait = leases.execute("SELECT pg_sleep(0.3)")
        assert wait is not None
        lease_b = db.acquire(leases, "B", 0, ttl_s=30)
        assert lease_b is not None and lease_b.epoch == lease_a.epoch + 1
        assert not db.renew(leases, "A", lease_a, 30)
        # ...and A, resumed, can never commit again; B can.
        with pytest.raises(db.Fenced):
            _insert_marker(a, "A", lease_a)
        _insert_marker(b, "B", lease_b)
        rows = leases.execute("SELECT topic FROM dead_letters ORDER BY id").fetchall()
        assert rows == [("marker/A",), ("marker/B",)]
    finally:
        for c in (leases, a, b):
            c.close()


def test_a_takeover_waits_for_a_commit_already_past_the_fence(database_url: str) -> None:
    """The old owner passed the check just before the lease expired: the new owner's
    UPDATE waits for that commit (so its restore sees it) instead of racing it."""
    with psycopg.connect(database_url) as conn:
        db.ensure_layout(conn, 1)
    leases = psycopg.connect(database_url, autocommit=True)
    a = psycopg.connect(database_url)
    try:
        lease_a = db.acquire(leases, "A", 0, ttl_s=0.2)
        assert lease_a is not None
        a.execute("INSERT INTO dead_letters (topic, reason, detail, received_at, payload, payload_size) VALUES ('late', 'bad_topic', 'x', now(), '', 0)")
        db.check_fence(a, "A", lease_a)  # passed; the commit is still to come
        leases.execute("SELECT pg_sleep(0.3)")  # the lease has expired
        taken: list[db.Lease | None] = []
        other = psycopg.connect(database_url, autocommit=True)
        thread = threading.Thread(target=lambda: taken.append(db.acquire(other, "B", 0, ttl_s=30)))
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the takeover did not wait for the commit in progress"
        a.commit()
        thread.join(10)
        assert taken and taken[0] is not None
        assert leases.execute("SELECT count(*) FROM dead_letters WHERE topic = 'late'").fetchone() == (1,)
        other.close()
    finally:
        leases.close()
        a.close()


def _leases(dsn: str) -> dict[int, tuple[str | None, bool]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT shard, owner, expires_at > now() FROM shard_leases ORDER BY shard").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_handing_a_shard_back_does_not_hold_up_the_lease_loop(mosquitto: MosquittoBroker, database_url: str) -> None:
    """A worker over its share drains a shard before releasing it; on a loaded machine the
    drain (a commit in progress) takes seconds. Meanwhile its lease loop must go on
    renewing every lease it holds, the one being handed back too: when it waited for the
    drain, the worker's other leases lapsed, the other workers took them, and the shards
    changed hands over and over (seen on a loaded CI machine)."""
    _register(database_url, "a", "b")
    config = GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="steward-handback")
    worker = ShardWorker(config, shard_count=2, lease_ttl_s=3.0, worker_id="A").start()
    drained = threading.Event()
    try:
        wait_for(lambda: sorted(worker.owned) == [0, 1], 30, "worker A to own both shards")
        slow = worker.owned[1].gateway
        real_stop = slow.stop

        def slow_stop(timeout: float = 10.0) -> None:  # a drain held up (a commit taking long)
            drained.wait(120)
            real_stop(timeout)

        slow.stop = slow_stop  # type: ignore[method-assign]
        with psycopg.connect(database_url, autocommit=True) as conn:
            db.heartbeat(conn, "B", 120, "elsewhere", 1)  # another live worker: A's share is one shard
        wait_for(lambda: 1 not in worker.owned, 30, "worker A to start handing shard 1 back")
        rounds = worker.rounds
        wait_for(lambda: worker.rounds >= rounds + 6, 30, "lease rounds (two lease lifetimes) during the drain")
        assert _leases(database_url) == {0: ("A", True), 1: ("A", True)}, "a lease lapsed while a shard drained"
        drained.set()
        wait_for(lambda: _leases(database_url)[1][0] is None, 30, "shard 1 released once drained")
        assert sorted(worker.owned) == [0] and _leases(database_url)[0] == ("A", True)
    finally:
        drained.set()
        worker.stop()



def test_an_unreachable_broker_does_not_hold_up_the_lease_loop(database_url: str, tmp_path: Path) -> None:
    """A worker takes its shards while the broker is down (a restart, a network cut): each
    shard's first connection retries until the broker is back, and meanwhile the lease
    loop goes on renewing the worker's leases. When the first connection waited in the
    lease loop, the worker's other leases lapsed while it retried."""
    _register(database_url, "a", "b")
    broker = MosquittoBroker(workdir=tmp_path / "mqtt", port=free_port())
    config = GatewayConfig(
        mqtt=MqttEndpoint(f"mqtt://127.0.0.1:{broker.port}"), database_url=database_url, client_id="steward-unreachable"
    )
    worker = ShardWorker(config, shard_count=2, lease_ttl_s=1.5, worker_id="A", clock=lambda: GATEWAY_NOW).start()
    try:
        wait_for(lambda: sorted(worker.owned) == [0, 1], 30, "worker A to take both shards")
        rounds = worker.rounds
        wait_for(lambda: worker.rounds >= rounds + 9, 30, "lease rounds (three lease lifetimes) with no broker")
        assert _leases(database_url) == {0: ("A", True), 1: ("A", True)}, "a lease lapsed while the broker was down"
        assert sorted(worker.owned) == [0, 1]
        broker.start()
        wait_for(lambda: worker.status()["broker_connected"], 30, "both shards' sessions to connect")
        body = json.dumps({"id": "after", "ts": GATEWAY_NOW_MS - 1000, "type": "flow", "flow_lpm": 1.0, "total_l": 10.0})
        publish_all(broker.url, [(f"community/{c}/water/{c}-m/telemetry", body.encode()) for c in ("a", "b")])
        wait_for(lambda: worker.committed >= 2, 30, "a message of each shard stored")
    finally:
        worker.stop()
        broker.stop()
