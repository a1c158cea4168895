"""Several workers on one database and one broker when the database goes away
mid-stream and comes back: leases cannot be renewed, so every worker stops
committing and lets its shards go; once the database is back the shards are
taken again (new epochs) and the sessions' backlogs are drained. Every published
message stored once, every fault scenario's incident raised once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.migrate import migrate
from steward.brokers import MosquittoBroker
from steward.databases import EmbeddedPostgres
from tests.gateway.helpers import count, wait_for
from tests.scaleout.fleet import (
    COMMUNITIES,
    Stream,
    Workers,
    check_every_message_once_and_every_incident_once,
    press,
    register_fleet,
    sos,
    start_flowing,
)


@pytest.mark.timeout(900)
def test_database_outage_under_several_workers_loses_nothing(
    mosquitto: MosquittoBroker, private_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    dsn = private_postgres.dsn
    migrate(dsn)
    register_fleet(dsn)
    workers = Workers(mosquitto.url, dsn, tmp_path)
    stream = Stream(mosquitto.url)
    try:
        start_flowing(workers, stream, mosquitto.url, dsn)
        wait_for(lambda: count(dsn, "SELECT count(*) FROM events WHERE msg_id = 'press0'") == len(COMMUNITIES), 60,
                 "the first presses to be stored")

        # The database goes away: the second presses and the SOSes are published while
        # nothing can be committed (the broker holds them in the shards' sessions).
        generated = stream.flows
        private_postgres.stop()
        stream.inject([press(c, 1, stream.base_ms) for c in COMMUNITIES])
        stream.inject([sos(c, stream.base_ms) for c in COMMUNITIES])
        # Down past the leases' TTL (2 s; a lease round every TTL/3): every worker has
        # failed four rounds, and the stream has gone on into the broker meanwhile.
        failed_before = {n: w.log_text().count("lease round failed") for n, w in workers.running.items()}
        wait_for(
            lambda: all(w.log_text().count("lease round failed") >= failed_before[n] + 4 for n, w in workers.running.items())
            and stream.flows > generated + 2000,
            60,
            "every worker to fail its lease rounds past the TTL",
        )
        private_postgres.restart()
        workers.wait_balanced(timeout=120)
        stream.inject([press(c, 2, stream.base_ms) for c in COMMUNITIES])
        wait_for(lambda: count(dsn, "SELECT count(*) FROM events WHERE msg_id = 'press2'") == len(COMMUNITIES), 120,
                 "the presses published after the outage to be stored")

        check_every_message_once_and_every_incident_once(dsn, stream)
    finally:
        try:
            stream.stop()
        except BaseException:
            pass
        workers.close()
