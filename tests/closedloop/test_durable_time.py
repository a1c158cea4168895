"""SLA clocks and overdue states come from stored times: a restart of the service
and of the database server changes no answer."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import psycopg

from alerts import lifecycle
from ingest.migrate import migrate
from steward.databases import EmbeddedPostgres, create_database, reachable
from domain.incidents import Tier
from tests.closedloop.conftest import HOUR, MIN, T0, change, record, seed
from workorders import kpis, store


def answers(dsn: str, now: dt.datetime) -> tuple:
    """Everything a restarted service would recompute, from a fresh connection."""
    with psycopg.connect(dsn) as conn:
        overdue = [(o.work_order_id, o.clock.milestone.value, o.clock.status.value, o.clock.late_by, o.team_lead)
                   for o in store.overdue(conn, community_ids=["c1"], now=now)]
        clocks = {o.id: [(c.milestone.value, c.status.value, c.late_by) for c in o.clocks or []]
                  for o in (store.get_order(conn, order_id=o.id, now=now)
                            for o in store.list_orders(conn, community_ids=["c1"]))}
        alerts = [(a.id, a.ack_overdue) for a in lifecycle.list_alerts(conn, community_ids=["c1"], now=now).items]
        overdue_kpi = kpis.compute_kpis(conn, community_id="c1", start=T0 - HOUR, end=T0 + HOUR,
                                        now=now)["kpis"]["overdue_count"]["value"]
    return overdue, clocks, alerts, overdue_kpi


def test_sla_breaches_survive_a_restart() -> None:
    # A private server we may restart. Not under pytest's tmp_path: its folders are
    # private to root, and the server runs as its own system user.
    data_dir = Path(tempfile.mkdtemp(prefix="steward-closedloop-pg-"))
    server = EmbeddedPostgres(data_dir)
    admin = server.start()
    try:
        _check_restart(server, admin)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _check_restart(server: EmbeddedPostgres, admin: str) -> None:
    dsn = create_database(admin)
    migrate(dsn)
    with psycopg.connect(dsn) as conn:
        seed(conn)
        conn.execute("UPDATE teams SET lead_staff_id = 'li' WHERE team_id = 'c1-eng'")
        # A Level 1 entrapment (follow-up order, ack due 5 min, on site 30 min) and a
        # Level 3 staff order (complete due 24 h).
        [stored] = record(conn, [change("opened", "lift-1", "entrapment", Tier.LIFE_SAFETY, T0)])
        [lift] = store.list_orders(conn, community_ids=["c1"], incident_id=stored.incident_id)
        routine = store.create_order(conn, community_id="c1", title="Replace a lamp", source="staff", at=T0,
                                     actor="op1", tier=3)
        store.act(conn, order_id=lift.id, action="accept", at=T0 + 7 * MIN, actor=lift.assignee)
        conn.commit()

    now = T0 + 40 * MIN
    before = answers(dsn, now)
    overdue, clocks, alerts, overdue_kpi = before
    # ack met 2 min late (not in the overdue list: it is met), on site 10 min overdue.
    assert overdue == [(lift.id, "respond", "overdue", 10 * MIN, "li")]
    assert clocks[lift.id] == [("ack", "met_late", 2 * MIN), ("respond", "overdue", 10 * MIN)]
    assert clocks[routine.id] == [("complete", "running", None)]
    assert alerts == [(stored.incident_id, True)] and overdue_kpi == 1

    server.stop()
    assert not reachable(dsn, timeout_s=1)
    server.restart()
    assert answers(dsn, now) == before
    # Time moved on while nothing ran: the routine order is overdue by exactly 1 h.
    later = answers(dsn, T0 + 25 * HOUR)
    assert (routine.id, "complete", "overdue", HOUR, "li") in later[0]
    assert later[3] == 2
