"""The detector runtime against a real PostgreSQL: incidents commit with their events,
hooks run in the same transaction, timers fire on ticks, state survives restarts."""

from __future__ import annotations

import datetime as dt

import msgspec
import psycopg
import pytest

from domain.devices import DeviceType
from domain.events import Event
from detectors.config import DetectorConfig, Thresholds
from detectors.runtime import DetectorRuntime
from detectors.store import add_maintenance_window
from dtables import at, device, event
from ingest.registry import upsert_devices

UTC = dt.timezone.utc
METER = device("m1", DeviceType.WATER, "meter", unit="u1")
LIFT = device("lift1", DeviceType.ELEVATOR, "lift")
# Storage and restarts: messages on time and in order, no reorder window (its own test below).
CONFIG = DetectorConfig(defaults=Thresholds(offline_after_s=900, allowed_lateness_s=0.0))
T = at(10)


def store_events(conn: psycopg.Connection, events: list[Event]) -> None:
    """What the gateway's writer does before calling the runtime (same transaction)."""
    for e in events:
        conn.execute(
            "INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type, msg_id, value, fields) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (e.ts, e.received_at, e.community_id, e.device_id, e.device_type.value, e.stream.value, e.type, e.msg_id, e.value,
             msgspec.json.encode(e.fields).decode()))


def batch(conn: psycopg.Connection, runtime: DetectorRuntime, events: list[Event]) -> list:
    with conn.transaction():
        store_events(conn, events)
        return runtime.process(conn, events)


def setup(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        upsert_devices(conn, [METER, LIFT])


def incidents(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT dedup_key, status, tier, opened_at, resolved_at FROM incidents ORDER BY id").fetchall()


def test_events_become_incidents_and_hooks_see_them_in_the_transaction(database_url: str) -> None:
    setup(database_url)
    seen: list[tuple] = []

    def hook(conn: psycopg.Connection, stored: list) -> None:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        row = conn.execute("SELECT status FROM incidents WHERE id = %s", (stored[0].incident_id,)).fetchone()
        seen.append((stored[0].change.kind, stored[0].change.condition, row[0]))

    runtime = DetectorRuntime(config=CONFIG, hooks=[hook])
    with psycopg.connect(database_url) as conn:
        runtime.restore(conn)
        conn.commit()
        stored = batch(conn, runtime, [event(LIFT, "fault", T, code=7, active=True),
                                       event(LIFT, "fault", T + 0.002, code=7, active=True)])
        assert [(s.change.kind, s.change.condition) for s in stored] == [("opened", "entrapment")]
        batch(conn, runtime, [event(LIFT, "fault", T + 600, code=7, active=False)])
        rows = incidents(conn)
    assert [(k, s, tier) for k, s, tier, _, _ in rows] == [("lift1:entrapment", "resolved", 1)]
    assert seen == [("opened", "entrapment", "open"), ("cleared", "entrapment", "resolved")]


def test_tick_fires_offline_at_the_exact_second(database_url: str) -> None:
    setup(database_url)
    runtime = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        runtime.restore(conn)
        batch(conn, runtime, [event(METER, "heartbeat", T, battery=90.0)])
        for k in range(1, 5):  # ticks every 300 s: too early
            with conn.transaction():
                assert runtime.tick(conn, dt.datetime.fromtimestamp(T + k * 200, UTC)) == []
        with conn.transaction():
            stored = runtime.tick(conn, dt.datetime.fromtimestamp(T + 900.7, UTC))
        assert [(s.change.condition, s.change.ts.timestamp()) for s in stored] == [("offline", T + 900)]


def leak_flows(start: float, minutes: int) -> list[Event]:
    return [event(METER, "flow", start + i * 60, flow_lpm=2.0) for i in range(minutes)]


def test_restart_in_the_middle_of_a_condition_keeps_one_incident(database_url: str) -> None:
    """Crash after the leak opened and between checkpoints; the new process restores
    snapshots + replays the stored events, and the leak stays ONE incident."""
    setup(database_url)
    flows = leak_flows(T, 90)
    first = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        first.restore(conn)
        batch(conn, first, flows[:10])
        with conn.transaction():
            first.checkpoint(conn)  # snapshots at minute 10
        batch(conn, first, flows[10:40])  # the leak opens at minute 20; then the process dies
        assert [(k, s) for k, s, *_ in incidents(conn)] == [("m1:continuous_flow", "open")]

    second = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        second.restore(conn)  # snapshot at minute 10 + replay of minutes 10..40
        conn.commit()
        batch(conn, second, flows[40:90])
        batch(conn, second, [event(METER, "flow", T + 90 * 60, flow_lpm=0.0)])
        rows = incidents(conn)
        timeline = conn.execute("SELECT kind FROM incident_timeline ORDER BY id").fetchall()
    assert [(k, s) for k, s, *_ in rows] == [("m1:continuous_flow", "resolved")]
    assert rows[0][3].timestamp() == T + 20 * 60
    assert [k for (k,) in timeline][0] == "opened" and [k for (k,) in timeline][-1] == "cleared"
    assert "reopened" not in [k for (k,) in timeline]


def test_restart_without_any_checkpoint_rebuilds_from_stored_events(database_url: str) -> None:
    setup(database_url)
    flows = leak_flows(T, 60)
    first = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        first.restore(conn)
        batch(conn, first, flows[:30])
    second = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        second.restore(conn)
        conn.commit()
        stored = batch(conn, second, flows[30:])
        assert all(s.change.kind != "opened" for s in stored)
        assert len(incidents(conn)) == 1


def test_learned_state_survives_a_restart(database_url: str) -> None:
    setup(database_url)
    runtime = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        runtime.restore(conn)
        for day in range(9):  # a home whose normal evening trickle lasts 30 minutes
            start = at(19, day=day)
            batch(conn, runtime, [event(METER, "flow", start + i * 60, flow_lpm=1.0) for i in range(30)]
                  + [event(METER, "flow", start + 1800, flow_lpm=0.0)])
        with conn.transaction():
            runtime.checkpoint(conn)
        size = conn.execute("SELECT octet_length(state) FROM detector_snapshots WHERE key = 'm1'").fetchone()[0]
    assert size < 400
    again = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        again.restore(conn)
        conn.commit()
        start = at(19, day=10)
        stored = batch(conn, again, [event(METER, "flow", start + i * 60, flow_lpm=1.0) for i in range(30)])
    # the learned limit (not the 20-minute default) came back with the snapshot
    assert [s for s in stored if s.change.condition == "continuous_flow"] == []


def test_maintenance_window_from_the_database(database_url: str) -> None:
    setup(database_url)
    with psycopg.connect(database_url) as conn:
        with pytest.raises(ValueError, match="ends_at"):
            add_maintenance_window(conn, community_id="c1", scope="device", scope_id="lift1",
                                   starts_at=dt.datetime.fromtimestamp(T, UTC), ends_at=dt.datetime.fromtimestamp(T - 1, UTC))
        add_maintenance_window(conn, community_id="c1", scope="device", scope_id="lift1", reason="inspection",
                               starts_at=dt.datetime.fromtimestamp(T - 60, UTC), ends_at=dt.datetime.fromtimestamp(T + 3600, UTC))
        conn.commit()
        runtime = DetectorRuntime(config=CONFIG)
        runtime.restore(conn)
        stored = batch(conn, runtime, [event(LIFT, "fault", T, code=10, active=True), event(LIFT, "fault", T + 10, code=10, active=True)])
        assert stored == []
        assert incidents(conn) == []


def test_a_rolled_back_batch_is_forgotten_by_restore(database_url: str) -> None:
    """The gateway restores after a failed commit and retries the same batch: the
    retried events must count (once), as if the failed attempt never happened."""
    setup(database_url)
    runtime = DetectorRuntime(config=CONFIG)
    presses = [event(LIFT, "alarm_button", T + k * 30) for k in range(3)]
    with psycopg.connect(database_url) as conn:
        runtime.restore(conn)
        conn.commit()
        try:
            with conn.transaction():
                store_events(conn, presses)
                runtime.process(conn, presses)
                raise RuntimeError("the commit failed")
        except RuntimeError:
            pass
        runtime.restore(conn)
        conn.commit()
        stored = batch(conn, runtime, presses)
        assert [s.change.condition for s in stored if s.change.kind == "opened"] == ["passenger_alarm", "entrapment"]
        assert [k for k, *_ in incidents(conn)] == ["lift1:passenger_alarm", "lift1:entrapment"]


def test_the_reorder_window_is_released_by_ticks(database_url: str) -> None:
    """With the default 2 s window a batch's last messages wait for the next tick; two
    messages of one device out of order are applied in event-time order."""
    setup(database_url)
    runtime = DetectorRuntime(config=DetectorConfig(defaults=Thresholds(offline_after_s=900)))
    moving = dict(floor=3, moving=True, door="closed", door_zone=False, occupied=True)
    stopped = dict(floor=3, moving=False, door="closed", door_zone=False, occupied=True)
    with psycopg.connect(database_url) as conn:
        runtime.restore(conn)
        conn.commit()
        first = event(LIFT, "status", T, **stopped)
        earlier = msgspec.structs.replace(event(LIFT, "status", T - 1, **moving), received_at=first.received_at)
        assert batch(conn, runtime, [first]) == []
        assert batch(conn, runtime, [earlier]) == []  # one second late, same receive time
        with conn.transaction():
            stored = runtime.tick(conn, dt.datetime.fromtimestamp(T + 10, UTC))
        # stopped between floors from T (the moving report at T - 1 came before it in event time)
        assert [(s.change.condition, s.change.ts.timestamp()) for s in stored] == [("entrapment", T + 5)]


def test_a_message_waiting_in_its_reorder_window_at_a_takeover_is_released_by_the_next_owner(database_url: str) -> None:
    """A lift's third alarm press is stored, and its batch's snapshot committed, while it
    still waits in the 2 s reorder window; then the shard changes owner (a worker killed,
    paused or handing it back). The lift sends nothing more. The next owner restores the
    snapshot with the press held and must release it when the window ends: one entrapment."""
    setup(database_url)
    config = DetectorConfig(defaults=Thresholds(offline_after_s=900))
    presses = [event(LIFT, "alarm_button", T + k * 20, floor=3) for k in range(3)]
    first = DetectorRuntime(config=config, name="shard-0")
    with psycopg.connect(database_url) as conn:
        first.restore(conn)
        conn.commit()
        for press in presses[:2]:
            batch(conn, first, [press])
        with conn.transaction():
            first.tick(conn, dt.datetime.fromtimestamp(T + 25, UTC))  # the first two applied
        assert batch(conn, first, presses[2:]) == []  # held in the window; its snapshot committed
    # The next owner takes over at once, 5 s later, or after a long pause.
    for after in (0.5, 5.0, 600.0):
        with psycopg.connect(database_url) as conn:  # one transaction, rolled back: each takeover alike
            nxt = DetectorRuntime(config=config, name="shard-0")
            nxt.restore(conn)
            opened = []
            for t in (0.0, 1.0, 2.0, 3.0, 5.0):
                stored = nxt.tick(conn, dt.datetime.fromtimestamp(T + 40 + after + t, UTC))
                opened += [s.change.condition for s in stored if s.change.kind == "opened"]
            conn.rollback()
            assert opened == ["entrapment"], f"the held press was never released (takeover {after} s after it)"
            assert nxt.engine.states["lift1"].clock.pending == []


_EVENTS_AND_CHUNKS = (
    "SELECT oid FROM pg_class WHERE relname = 'events' "
    "UNION SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass"
)


def _blocks_fetched(conn: psycopg.Connection) -> int:
    """Blocks of events (and its chunks) this server has read so far: the shared
    counters plus what this session has not flushed to them yet."""
    conn.execute("SET stats_fetch_consistency = none")
    (blocks,) = conn.execute(
        "SELECT sum(pg_stat_get_blocks_fetched(oid) + pg_stat_get_xact_blocks_fetched(oid)) "
        f"FROM ({_EVENTS_AND_CHUNKS}) r"
    ).fetchone()
    return int(blocks)


def _insert_history(conn: psycopg.Connection, start: dt.datetime, first: int, last: int) -> None:
    """Rows first..last, received one second apart from ``start``."""
    conn.execute(
        "INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type, msg_id, value, fields) "
        "SELECT t, t, 'c1', 'm' || (i %% 500), 'water', 'telemetry', 'flow', 'id' || i, i %% 50, "
        "json_build_object('flow_lpm', i %% 50, 'total_l', i) "
        "FROM generate_series(%s::int, %s::int) i, LATERAL (SELECT %s + i * interval '1 second' AS t) x",
        (first, last, start),
    )


def test_a_restore_reads_only_what_arrived_since_its_checkpoint(database_url: str) -> None:
    """Replaying since the checkpoint must not read the whole history: restarts and
    reconnects would grow slower with every month of events. Nor does it replay what
    claims to have happened more than a day before the checkpoint."""
    start = dt.datetime.fromtimestamp(T, UTC)
    checkpoint = start + dt.timedelta(seconds=300_000)
    runtime = DetectorRuntime(config=CONFIG)
    with psycopg.connect(database_url) as conn:
        _insert_history(conn, start, 1, 300_000)
        conn.execute(
            "INSERT INTO detector_checkpoints (name, events_through, clock, taken_at, devices, bytes) "
            "VALUES ('default', %s, %s, now(), 0, 0)",
            (checkpoint, checkpoint),
        )
        conn.execute("ANALYZE events")  # what autovacuum does (this machine's server runs without it)
        conn.commit()
        runtime.restore(conn)  # the first restore after the history was written
        conn.commit()
        _insert_history(conn, start, 300_001, 301_000)  # arrived after the checkpoint
        conn.execute(  # so did this one, but it claims to be from two days before
            "INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type, msg_id, value, fields) "
            "VALUES (%s, %s, 'c1', 'm1', 'water', 'telemetry', 'flow', 'stale', 0, '{\"flow_lpm\": 0, \"total_l\": 0}')",
            (checkpoint - dt.timedelta(days=2), checkpoint + dt.timedelta(seconds=1)),
        )
        conn.commit()
        before = _blocks_fetched(conn)
        replayed = runtime.restore(conn)  # a restart, or a reconnect after a failed batch
        fetched = _blocks_fetched(conn) - before
        (table_blocks,) = conn.execute(
            f"SELECT sum(pg_relation_size(oid)) / 8192 FROM ({_EVENTS_AND_CHUNKS}) r"
        ).fetchone()
        conn.commit()
    assert replayed == 1000
    assert fetched < table_blocks / 10, (fetched, table_blocks)
    # The intended index, in either storage mode: the BRIN index on received_at of
    # events (or of each chunk TimescaleDB did not exclude), never a scan by time
    # (TimescaleDB mode may AND it with its BRIN index on time, both a few pages).
    with psycopg.connect(database_url) as conn:
        used = _replay_indexes(conn, checkpoint)
    assert "events_received_brin" in used and used <= {"events_received_brin", "events_time_brin"}, used


def _replay_indexes(conn: psycopg.Connection, since: dt.datetime) -> set[str]:
    """The indexes the replay cursor's plan reads (chunk prefixes stripped), asserting
    it reads events through no other kind of scan."""
    from detectors.runtime import REPLAY_SQL

    (plan,) = conn.execute("EXPLAIN (FORMAT JSON) DECLARE replay_plan CURSOR FOR " + REPLAY_SQL,
                           {"since": since}).fetchone()
    conn.rollback()
    found: set[str] = set()

    def walk(node: dict) -> None:
        kind, relation = node["Node Type"], node.get("Relation Name", "")
        if kind in ("Seq Scan", "Index Scan", "Index Only Scan") and (relation == "events" or "chunk" in relation):
            raise AssertionError(f"the replay reads events by {kind} {node.get('Index Name', relation)}")
        if kind == "Bitmap Index Scan":
            found.add(node["Index Name"].split("_chunk_")[-1])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found
