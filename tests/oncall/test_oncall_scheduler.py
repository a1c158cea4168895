"""The scheduler alone, ticked by hand: control-room acknowledgements, the sweep, several schedulers at once."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
from oncall_helpers import LINK_SECRET, T0, open_incident

from alerts import lifecycle
from oncall.clock import ManualClock
from oncall.scheduler import EscalationScheduler
from oncall.settings import OnCallSettings

MIN = dt.timedelta(minutes=1)
# Only e-mail is "configured": outbox rows are written but nothing here sends them.
SETTINGS = OnCallSettings(link_secret=LINK_SECRET, smtp_host="127.0.0.1", smtp_port=1)


def rows(dsn: str, incident_id: int) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT kind, step, repeat, status, due_at FROM oncall_pending WHERE incident_id = %s ORDER BY pending_id",
            (incident_id,),
        ).fetchall()


def test_control_room_ack_is_noticed_by_the_next_step(configured_db: str) -> None:
    clock = ManualClock(T0)
    scheduler = EscalationScheduler(configured_db, SETTINGS, clock)
    incident_id = open_incident(configured_db, at=T0)
    assert scheduler.tick() == 1
    with psycopg.connect(configured_db) as conn:  # acknowledged in the control room: no on-call bookkeeping
        lifecycle.acknowledge(conn, incident_id=incident_id, actor="operator-1", at=T0 + 2 * MIN)
    clock.advance(5 * MIN)
    assert scheduler.tick() == 1
    assert rows(configured_db, incident_id)[1:] == [
        ("step", 1, 0, "cancelled", T0 + 5 * MIN),
        ("ack_renotify", 0, 0, "pending", T0 + 32 * MIN),  # 30 min after the acknowledgement itself
    ]
    clock.advance(27 * MIN)
    scheduler.tick()
    with psycopg.connect(configured_db) as conn:
        reminded = conn.execute(
            "SELECT o.staff_id, o.reason FROM oncall_outbox o JOIN oncall_pending p USING (pending_id)"
            " WHERE p.incident_id = %s AND p.kind = 'ack_renotify'",
            (incident_id,),
        ).fetchall()
    # operator-1 has no contact rows: nobody is e-mailed, and the reason says so.
    assert reminded == []
    with psycopg.connect(configured_db) as conn:
        (reason,) = conn.execute(
            "SELECT reason FROM oncall_pending WHERE incident_id = %s AND kind = 'ack_renotify' AND step = 0",
            (incident_id,),
        ).fetchone()  # type: ignore[misc]
    assert "acknowledged by operator-1 but unresolved" in reason and "operator-1: no contact channel" in reason


def test_sweep_starts_escalation_the_hook_missed(configured_db: str) -> None:
    clock = ManualClock(T0 + MIN)
    scheduler = EscalationScheduler(configured_db, SETTINGS, clock)
    with psycopg.connect(configured_db) as conn:
        (incident_id,) = conn.execute(
            "INSERT INTO incidents (dedup_key, community_id, scope, scope_id, building_id, condition, tier, title,"
            " device_ids, status, opened_at, updated_at) VALUES ('lift-9:entrapment', 'c1', 'device', 'lift-9', 'b1',"
            " 'entrapment', 1, 'trapped', '{lift-9}', 'open', %s, %s) RETURNING id",
            (T0, T0),
        ).fetchone()  # type: ignore[misc]
    assert scheduler.sweep() == 1
    assert scheduler.sweep() == 0
    assert scheduler.tick() == 1
    assert rows(configured_db, incident_id)[0][:4] == ("step", 0, 0, "fired")


def test_two_schedulers_fire_each_step_once(configured_db: str) -> None:
    clock = ManualClock(T0)
    ids = [open_incident(configured_db, at=T0, device_ids=(f"lift-{i}",)) for i in range(30)]
    schedulers = [EscalationScheduler(configured_db, SETTINGS, clock) for _ in range(2)]
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run(s: EscalationScheduler) -> None:
        barrier.wait()
        counts.append(s.tick())

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(counts) == 30
    with psycopg.connect(configured_db) as conn:
        fired = conn.execute(
            "SELECT count(*), count(DISTINCT incident_id) FROM oncall_pending WHERE status = 'fired' AND incident_id = ANY(%s)",
            (ids,),
        ).fetchone()
        mails = conn.execute("SELECT count(*) FROM oncall_outbox WHERE incident_id = ANY(%s)", (ids,)).fetchone()
    assert fired == (30, 30) and mails == (30,)


def test_reminders_due_during_downtime_are_one_reminder_not_a_burst(configured_db: str) -> None:
    """Nobody acknowledges; the chain runs out at T0 + 30 min and reminds every 10 min. The scheduler is down
    from T0 + 41 to T0 + 75 min: reminders 2, 3 and 4 came due meanwhile; one goes out (the latest), not three
    one tick apart, and the next one keeps the original timetable."""
    clock = ManualClock(T0)
    scheduler = EscalationScheduler(configured_db, SETTINGS, clock)
    incident_id = open_incident(configured_db, at=T0)
    for minute in (0, 5, 10, 20, 25, 30, 40):
        clock.set(T0 + minute * MIN)
        assert scheduler.tick() == 1
    assert rows(configured_db, incident_id)[-1][:4] == ("reminder", 1, 0, "pending")

    clock.set(T0 + 75 * MIN)  # back after downtime
    while scheduler.tick():  # as the run loop does, tick after tick
        pass
    reminders = [r for r in rows(configured_db, incident_id) if r[0] == "reminder"]
    assert [(step, status, due) for _, step, _, status, due in reminders] == [
        (0, "fired", T0 + 40 * MIN), (1, "fired", T0 + 50 * MIN), (4, "pending", T0 + 80 * MIN)]
    with psycopg.connect(configured_db) as conn:
        sent = conn.execute(
            "SELECT o.staff_id, p.reason FROM oncall_outbox o JOIN oncall_pending p USING (pending_id)"
            " WHERE p.incident_id = %s AND p.kind = 'reminder' ORDER BY o.outbox_id", (incident_id,)).fetchall()
    assert [who for who, _ in sent] == ["s-qian", "s-qian"]  # reminder 1 on time, then one for the downtime
    assert sent[1][1].startswith("reminder 4: tier 1 alert still unacknowledged")
    assert "2 earlier reminders missed while the scheduler was down, collapsed into this one" in sent[1][1]


def test_a_reminder_waiting_for_its_channel_is_superseded_by_the_next(configured_db: str) -> None:
    """The channel is down (nothing here sends): reminders 1 and 2 queue for s-qian; when it is back only
    reminder 2 goes out. The pages of the chain's steps are never superseded."""
    clock = ManualClock(T0)
    scheduler = EscalationScheduler(configured_db, SETTINGS, clock)
    incident_id = open_incident(configured_db, at=T0)
    for minute in (0, 5, 10, 20, 25, 30, 40, 50):
        clock.set(T0 + minute * MIN)
        assert scheduler.tick() == 1
    with psycopg.connect(configured_db) as conn:
        rows_ = conn.execute(
            "SELECT p.kind, p.step, o.status FROM oncall_outbox o JOIN oncall_pending p USING (pending_id)"
            " WHERE o.incident_id = %s AND o.staff_id = 's-qian' ORDER BY o.outbox_id", (incident_id,)).fetchall()
    assert rows_ == [("step", 2, "pending"), ("step", 2, "pending"), ("reminder", 0, "superseded"),
                     ("reminder", 1, "pending")]
