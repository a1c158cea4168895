"""The detectors on the live stream: the edge between the pure `Engine` and PostgreSQL.

The gateway's writer calls `process` inside the transaction that stored a batch
of new events, so incidents commit atomically with their events; the gateway
calls `tick` about once a second with the wall clock and `checkpoint` every
~30 s and at shutdown. `restore` at start loads the snapshots, then replays the
events stored after the last checkpoint (their incident changes were already
recorded with them, so the replay only rebuilds state). A restart in the
middle of a condition therefore keeps one incident: the state says it is raised,
and even a change fired twice is folded by the store's one-open-row-per-key rule.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

import msgspec
import psycopg

from domain.devices import DeviceType, Stream
from domain.events import Event
from domain.incidents import StoredChange
from detectors.config import DetectorConfig, load_config
from detectors.engine import Engine, Silence, as_epoch
from detectors.store import record_changes
from ingest.registry import load_active_devices

log = logging.getLogger(__name__)
UTC = dt.timezone.utc

Hook = Callable[[psycopg.Connection, list[StoredChange]], None]
RECENT_KEYS = 50_000  # per generation: see RecentKeys
SILENCE_REFRESH_S = 30.0
SILENCE_HORIZON_S = 30 * 86400.0
REBUILD_WITHOUT_CHECKPOINT = dt.timedelta(days=2)
# What a restore replays: the events received since the checkpoint. The BRIN index
# of migration 0005 finds them without reading the whole table. The bound on the
# event time lets TimescaleDB skip every chunk older than a day before the
# checkpoint, compressed ones included (its indexes do not reach into those): an
# event that arrived after the checkpoint with a time more than a day older than
# it (a device's clock that far behind, a day-old buffer) was processed live but
# is not replayed.
# Ordered by time, a cursor (planned to return its first rows fast) would take any
# btree on time that gives that order and read the whole last day by it to keep
# the few rows that arrived since the checkpoint: events has none in either mode
# (TimescaleDB's default events_time_idx is not created, migrations 0002 and 0007).
REPLAY_SQL = (
    "SELECT community_id, device_type, device_id, stream, msg_id, type, time, received_at, fields, value "
    "FROM events WHERE received_at > %(since)s AND time > %(since)s - interval '1 day' ORDER BY time, received_at"
)


class RecentKeys:
    """The keys of the events already folded into the detectors, so that one delivered
    twice (a replay overlapping the live stream, a batch retried without a restore) counts
    once. Bounded in bytes: two generations of at most ``per_generation`` 64-bit hashes of
    (device, message id); when the young one fills, the old one is dropped. At the default
    50,000 that is at most 100,000 ints in two sets, about 8 MB (sets of small ints cost
    ~72 B an entry), whatever the traffic; an event older than the last 50,000-100,000 is
    no longer recognised, and the database's unique key still stops it being stored twice.
    (The first version kept 200,000 tuples of strings in an OrderedDict: ~60 MB.)"""

    def __init__(self, per_generation: int = RECENT_KEYS) -> None:
        self.per_generation = per_generation
        self._young: set[int] = set()
        self._old: set[int] = set()

    def add(self, key: tuple[str, str]) -> bool:
        """Remember ``key``; False when it was already known."""
        h = hash(key)
        if h in self._young or h in self._old:
            return False
        self._young.add(h)
        if len(self._young) >= self.per_generation:
            self._old, self._young = self._young, set()
        return True

    def clear(self) -> None:
        self._young.clear()
        self._old.clear()

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


class DetectorRuntime:
    def __init__(
        self,
        *,
        config: DetectorConfig | None = None,
        hooks: Sequence[Hook] = (),
        name: str = "default",
        communities: Callable[[], set[str]] | None = None,
    ) -> None:
        """``name``: the checkpoint's (one per shard); ``communities``: the shard's, the
        only ones whose state is restored (None: every community, unsharded)."""
        self.config = config or load_config()
        self.hooks = list(hooks)
        self.name = name
        self.communities = communities
        self.engine = Engine(self.config)
        self.events_through: dt.datetime | None = None
        self._recent = RecentKeys()
        self._silences_loaded_at = 0.0
        self._reopen = dt.timedelta(seconds=self.config.reopen_window_s)
        self._restored_for: list[str] | None = None
        self._resume = False  # the first message or tick after a restore ends the receiver's absence

    # --- start ------------------------------------------------------------------------------

    def restore(self, conn: psycopg.Connection) -> int:
        """Load devices, silences, snapshots; replay the events stored since the checkpoint
        (returns how many)."""
        # Also after a failed batch (the gateway reconnects and restores): whatever the
        # rolled-back batch did in memory is gone, and its events will come again.
        communities = sorted(self.communities()) if self.communities is not None else None
        self._restored_for = communities
        engine = self.engine = Engine(self.config, load_active_devices(conn, communities=communities))
        self._recent.clear()
        self.events_through = None
        snapshots = (
            conn.execute("SELECT key, state FROM detector_snapshots")
            if communities is None
            else conn.execute("SELECT key, state FROM detector_snapshots WHERE community_id = ANY(%s)", (communities,))
        )
        for key, blob in snapshots:
            try:
                engine.load(key, bytes(blob))
            except msgspec.DecodeError:
                log.warning("dropping an unreadable detector snapshot for %s", key)
        row = conn.execute("SELECT events_through, clock FROM detector_checkpoints WHERE name = %s", (self.name,)).fetchone()
        if row is not None:
            self.events_through, engine.clock = row[0], row[1].timestamp()
            since = row[0]
        else:
            since = None
        self._load_silences(conn)
        engine.rebuild_derived()
        replayed = self._replay(conn, since)
        engine.dirty.clear()
        engine.dirty.update(engine.states)  # the replay changed them: the next checkpoint writes them
        self._resume = True
        log.info("detectors restored: %d device states, %d events replayed", len(engine.states), replayed)
        return replayed

    def _replay(self, conn: psycopg.Connection, since: dt.datetime | None) -> int:
        if since is None:
            last = conn.execute("SELECT max(received_at) FROM events").fetchone()[0]
            if last is None:
                return 0
            since = last - REBUILD_WITHOUT_CHECKPOINT
        _summarize_arrivals(conn)
        count = 0
        with conn.cursor(name="detector_replay") if not conn.autocommit else conn.cursor() as cur:
            cur.itersize = 5000
            if self._restored_for is None:
                cur.execute(REPLAY_SQL, {"since": since})
            else:  # a shard's communities only (the condition is pushed into the query)
                cur.execute(
                    f"SELECT * FROM ({REPLAY_SQL}) r WHERE community_id = ANY(%(communities)s)",
                    {"since": since, "communities": self._restored_for},
                )
            for r in cur:
                ev = Event(community_id=r[0], device_type=DeviceType(r[1]), device_id=r[2], stream=Stream(r[3]), msg_id=r[4],
                           type=r[5], ts=r[6], received_at=r[7], fields=r[8], value=r[9])
                self.engine.on_event(ev)  # changes were recorded with the events
                self._remember(ev)
                count += 1
        return count

    def _load_silences(self, conn: psycopg.Connection) -> None:
        # Windows that ended long before the engine's own (event) time cannot silence
        # anything it will still see; the database's clock has no say in that.
        horizon = dt.datetime.fromtimestamp(max(self.engine.clock - SILENCE_HORIZON_S, 0), UTC)
        rows = conn.execute(
            "SELECT scope, scope_id, starts_at, ends_at, device_type, reason FROM maintenance_windows "
            "WHERE ends_at > %s", (horizon,)
        ).fetchall()
        self.engine.set_silences(Silence(r[0], r[1], r[2].timestamp(), r[3].timestamp(), r[4], r[5]) for r in rows)
        self._silences_loaded_at = time.monotonic()

    def _remember(self, ev: Event) -> bool:
        if not self._recent.add(ev.key):
            return False
        if self.events_through is None or ev.received_at > self.events_through:
            self.events_through = ev.received_at
        return True

    # --- the live stream --------------------------------------------------------------------

    def process(self, conn: psycopg.Connection, events: list[Event]) -> list[StoredChange]:
        """Newly stored events of one batch, inside the batch's transaction."""
        unknown = {e.device_id for e in events if e.device_id not in self.engine.devices}
        if unknown:  # registered since the restore: only those are looked up
            for device in load_active_devices(conn, only=unknown).values():
                self.engine.add_device(device)
        changes = []
        newest = None
        if self._resume and events:
            self._resumed(min(e.received_at for e in events).timestamp())
        for ev in sorted(events, key=lambda e: e.ts):
            if self._remember(ev):
                changes += self.engine.on_event(ev)
                newest = ev.received_at if newest is None or ev.received_at > newest else newest
        if newest is not None:  # what the batch's arrival releases (reorder windows, watermarks)
            changes += self.engine.advance(newest.timestamp())
        stored = self._record(conn, changes)
        self.checkpoint(conn)
        return stored

    def tick(self, conn: psycopg.Connection, now: dt.datetime) -> list[StoredChange]:
        """Fire the timers due by ``now`` (offline, confirmation windows, inactivity...)."""
        if time.monotonic() - self._silences_loaded_at > SILENCE_REFRESH_S:
            self._load_silences(conn)
        if self._resume:
            self._resumed(as_epoch(now))
        stored = self._record(conn, self.engine.advance(as_epoch(now)))
        if self.engine.dirty:
            self.checkpoint(conn)
        return stored

    def _resumed(self, now: float) -> None:
        """Nothing was received between the last message processed before the restore and
        ``now``: that was this process being away, not the devices being silent."""
        self._resume = False
        self.engine.resume(now)

    def _record(self, conn: psycopg.Connection, changes: list) -> list[StoredChange]:
        if not changes:
            return []
        stored = record_changes(conn, changes, reopen_window=self._reopen)
        if stored:
            for hook in self.hooks:
                hook(conn, stored)
        return stored

    # --- persistence ------------------------------------------------------------------------

    def checkpoint(self, conn: psycopg.Connection) -> None:
        """Write the snapshots of every state changed since the last checkpoint.

        Runs in every batch's transaction (and every tick's that changed a state), so
        the stored state always matches the stored events: a worker that takes a
        shard over restores exactly what the last commit left, with nothing to
        replay. Replaying is not enough since detectors hold messages in reorder
        windows: what a message decides may come after its commit, and a replay
        cannot tell those decisions from the ones already recorded. The cost is
        one COPY of the states the batch touched (a batch of 10,000 messages over
        1,000 devices writes 1,000 rows)."""
        engine = self.engine
        keys = list(engine.dirty)
        engine.dirty.clear()
        total = 0
        if keys:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS detector_snapshots_stage (key text, state bytea, community_id text) "
                    "ON COMMIT DELETE ROWS"
                )
                devices = engine.devices
                with cur.copy("COPY detector_snapshots_stage (key, state, community_id) FROM STDIN") as copy:
                    for key in keys:
                        kind, _, name = key.partition(":")
                        if kind == "building":
                            building = engine.buildings.get(name)
                            if building is None:
                                continue
                            community = building.community_id
                        elif kind == "community":
                            if name not in engine.communities:
                                continue
                            community = name
                        elif key in engine.states:
                            device = devices.get(key)
                            community = device.community_id if device is not None else None
                        else:
                            continue
                        blob = engine.dump(key)
                        total += len(blob)
                        copy.write_row((key, blob, community))
                cur.execute(
                    "INSERT INTO detector_snapshots (key, state, community_id, updated_at) "
                    "SELECT key, state, community_id, now() FROM detector_snapshots_stage "
                    "ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, community_id = EXCLUDED.community_id, "
                    "updated_at = EXCLUDED.updated_at"
                )
                cur.execute("TRUNCATE detector_snapshots_stage")  # a second checkpoint in one transaction
        through = self.events_through or dt.datetime.fromtimestamp(0, UTC)
        clock = dt.datetime.fromtimestamp(engine.clock, UTC)
        conn.execute(
            "INSERT INTO detector_checkpoints (name, events_through, clock, taken_at, devices, bytes) VALUES (%s, %s, %s, now(), %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET events_through = EXCLUDED.events_through, clock = EXCLUDED.clock, "
            "taken_at = now(), devices = EXCLUDED.devices, bytes = EXCLUDED.bytes",
            (self.name, through, clock, len(keys), total),
        )


def _summarize_arrivals(conn: psycopg.Connection) -> None:
    """Summarize the block ranges of the ``received_at`` BRIN index (migration 0005) that
    are not yet: autovacuum does it soon after each fills, but where autovacuum is off
    (or behind) every unsummarized range is read by the replay. This reads each new
    range once; after that a replay reads only what arrived since the last restore.
    On TimescaleDB each chunk has its own index."""
    try:
        with conn.transaction():
            conn.execute(
                "SELECT brin_summarize_new_values(i.indexrelid::regclass) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                "WHERE a.amname = 'brin' AND (i.indrelid = 'events'::regclass OR i.indrelid IN "
                "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass))"
            )
    except psycopg.errors.InsufficientPrivilege:  # only the owner may; autovacuum still does it
        log.info("not the owner of events' BRIN index: leaving its summaries to autovacuum")
