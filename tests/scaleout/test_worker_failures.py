"""Several workers on one database and one broker, with real processes and real
faults: a worker SIGKILLed mid-stream, a worker paused past its lease and
resumed, a worker added, a worker removed. Every time: every published message
stored once, every fault scenario's incident raised once (three alarm presses
spread over the faults make one entrapment only if the presses of a lift are
counted by one detector state across takeovers), and nothing committed by a
worker that lost its shard.

The short variant runs in CI; ``pytest -m long tests/scaleout`` runs the long
one (five kills, a longer stream).
"""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest

from steward.brokers import MosquittoBroker
from tests.gateway.helpers import count, wait_for
from tests.scaleout.fleet import (
    COMMUNITIES,
    STREAM,
    Stream,
    Workers,
    check_every_message_once_and_every_incident_once,
    press,
    register_fleet,
    sos,
    start_flowing,
)

def run_faults(mosquitto: MosquittoBroker, database_url: str, tmp_path: Path, *, kills: int) -> None:
    register_fleet(database_url)
    workers = Workers(mosquitto.url, database_url, tmp_path)
    stream = Stream(mosquitto.url)
    try:
        start_flowing(workers, stream, mosquitto.url, database_url)

        # SIGKILL a shard owner mid-stream, start a replacement; the presses of every lift
        # straddle the takeovers.
        for k in range(kills):
            before = count(database_url, STREAM)
            victim = next(name for name in sorted(workers.running) if workers.owned_by(name))
            workers.kill(victim)
            if k == 0:
                stream.inject([press(c, 1, stream.base_ms) for c in COMMUNITIES])
            workers.start()
            workers.wait_balanced()
            wait_for(lambda: count(database_url, STREAM) > before + 500, 60, "the stream to flow after the kill")  # noqa: B023

        # SIGSTOP a shard owner past its lease: the others take its shards; resumed, it
        # must not commit again, and lets go.
        paused = next(name for name in sorted(workers.running) if workers.owned_by(name))
        had = workers.owned_by(paused)
        workers.running[paused].process.send_signal(signal.SIGSTOP)
        wait_for(
            lambda: all(o not in (None, paused) for s, o in workers.owners().items() if s in had),
            60,
            f"the shards {had} of the paused worker to be taken over",
            interval=0.2,
        )
        stream.inject([press(c, 2, stream.base_ms) for c in COMMUNITIES])
        stream.inject([sos(c, stream.base_ms) for c in COMMUNITIES])
        workers.running[paused].process.send_signal(signal.SIGCONT)
        wait_for(
            lambda: "was taken over" in workers.running[paused].log_text(),
            60,
            "the resumed worker to notice it lost its shards",
        )
        workers.wait_balanced()

        # Add a worker (rebalancing hands it shards), then remove one (SIGTERM: it hands
        # its shards back after its last commit).
        workers.start()
        workers.wait_balanced()
        workers.stop(sorted(workers.running)[0])
        workers.wait_balanced()

        check_every_message_once_and_every_incident_once(database_url, stream)
        with psycopg.connect(database_url) as conn:
            opened = conn.execute(
                "SELECT i.condition, count(*) FROM incident_timeline t JOIN incidents i ON i.id = t.incident_id "
                "WHERE t.kind = 'opened' AND i.condition IN ('entrapment', 'sos') GROUP BY 1 ORDER BY 1"
            ).fetchall()
        assert opened == [("entrapment", len(COMMUNITIES)), ("sos", len(COMMUNITIES))]
    finally:
        try:
            stream.stop()
        except BaseException:
            pass
        workers.close()


@pytest.mark.timeout(1200)  # about 1-2 min on a quiet machine; the shared one can be 10x slower
def test_workers_killed_paused_added_and_removed_mid_stream(
    mosquitto: MosquittoBroker, database_url: str, tmp_path: Path
) -> None:
    run_faults(mosquitto, database_url, tmp_path, kills=2)


@pytest.mark.long
@pytest.mark.timeout(1200)  # about 1-2 min on a quiet machine; the shared one can be 10x slower
def test_workers_killed_five_times_paused_added_and_removed_mid_stream(
    mosquitto: MosquittoBroker, database_url: str, tmp_path: Path
) -> None:
    run_faults(mosquitto, database_url, tmp_path, kills=5)
