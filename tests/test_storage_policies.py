"""TimescaleDB policies applied idempotently, and late data reaching the roll-ups in both modes.

What decides the jobs (``ingest.policies.plan``) runs everywhere; the jobs themselves,
the refresh of continuous aggregates and compressed chunks run in the tests marked
``timescale``, against a server with the extension."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from storage_samples import daily, flow_events, rollups, steward_jobs, store, store_work_order_changes

from ingest.migrate import migrate
from ingest.modes import StorageMode
from ingest.policies import Job, Policy, apply_policies, desired, plan

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
MANAGED = {("compression", "events"), ("retention", "events"), ("refresh", "events_5m"),
           ("refresh", "work_order_daily")}
CAGGS = {"events_5m", "work_order_daily"}


def _jobs(policies: list[Policy], first_id: int = 1000) -> list[Job]:
    return [Job(first_id + i, p.kind, p.relation, dict(p.settings), p.schedule_interval or dt.timedelta(hours=12))
            for i, p in enumerate(policies)]


def test_unchanged_settings_leave_every_job_alone() -> None:
    wanted = desired(compress_after=7 * DAY, retain_for=365 * DAY, caggs=CAGGS)
    assert plan(_jobs(wanted), wanted, MANAGED) == []


def test_a_new_database_gets_each_policy_once() -> None:
    wanted = desired(compress_after=7 * DAY, retain_for=365 * DAY, caggs=CAGGS)
    actions = plan([], wanted, MANAGED)
    assert [(a.verb, a.policy.kind, a.policy.relation) for a in actions] == [  # type: ignore[union-attr]
        ("add", "compression", "events"), ("add", "refresh", "events_5m"), ("add", "refresh", "work_order_daily"),
        ("add", "retention", "events")]
    # The roll-ups are refreshed from the start of the data: late events reach them whatever their age.
    policies = [a.policy for a in actions if a.policy is not None]
    refresh = {p.relation: p.settings for p in policies if p.kind == "refresh"}
    assert refresh["events_5m"] == {"start_offset": None, "end_offset": dt.timedelta(minutes=5)}
    assert refresh["work_order_daily"]["start_offset"] is None


def test_changed_settings_alter_the_existing_jobs_in_place() -> None:
    existing = _jobs(desired(compress_after=7 * DAY, retain_for=365 * DAY, caggs=CAGGS))
    wanted = desired(compress_after=14 * DAY, retain_for=400 * DAY, caggs=CAGGS)
    actions = plan(existing, wanted, MANAGED)
    assert [(a.verb, a.job.job_id, a.policy.settings) for a in actions] == [  # type: ignore[union-attr]
        ("alter", existing[0].job_id, {"compress_after": 14 * DAY}),
        ("alter", existing[1].job_id, {"drop_after": 400 * DAY}),
    ]


def test_retention_turned_off_deletes_its_job_and_an_old_refresh_window_is_widened() -> None:
    old_refresh = Job(1002, "refresh", "events_5m", {"start_offset": 3 * DAY, "end_offset": dt.timedelta(minutes=5)},
                      dt.timedelta(minutes=5))
    existing = _jobs(desired(compress_after=7 * DAY, retain_for=365 * DAY, caggs=set()))  # compression, retention
    wanted = desired(compress_after=7 * DAY, retain_for=None, caggs={"events_5m"})
    actions = plan([*existing, old_refresh], wanted, {("compression", "events"), ("retention", "events"),
                                                      ("refresh", "events_5m")})
    assert [(a.verb, a.job.job_id if a.job else None) for a in actions] == [("delete", existing[1].job_id),
                                                                          ("alter", 1002)]


def test_a_second_refresh_policy_is_deleted_before_the_first_is_altered() -> None:
    """Two refresh windows of one roll-up that overlap are refused by TimescaleDB: the
    extra one goes first, whatever its settings."""
    first = Job(1002, "refresh", "events_5m", {"start_offset": 3 * DAY, "end_offset": dt.timedelta(minutes=5)},
                dt.timedelta(minutes=5))
    second = Job(1009, "refresh", "events_5m", {"start_offset": 30 * DAY, "end_offset": 3 * DAY}, DAY)
    wanted = [p for p in desired(compress_after=7 * DAY, retain_for=None, caggs={"events_5m"}) if p.kind == "refresh"]
    actions = plan([second, first], wanted, {("refresh", "events_5m")})
    assert [(a.verb, a.job.job_id) for a in actions] == [("delete", 1009), ("alter", 1002)]  # type: ignore[union-attr]


def test_late_data_reaches_the_plain_rollups_whatever_its_age(empty_database: str) -> None:
    """The plain-mode half of the comparison the timescale test below makes: a device that
    buffered for ten days uploads, and its events are in events_5m and work_order_daily."""
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    migrate(empty_database, requested_mode="plain")
    store(empty_database, flow_events(now - 2 * DAY, 300))
    store_work_order_changes(empty_database, [now - 2 * DAY])
    before = rollups(empty_database)
    store(empty_database, flow_events(now - 10 * DAY, 241, prefix="late", received_at=now))
    store_work_order_changes(empty_database, [now - 10 * DAY])
    after = rollups(empty_database)
    assert sum(r[3] for r in before) == 300 and sum(r[3] for r in after) == 541
    assert after[: len(after) - len(before)][0][0] == now - 10 * DAY
    assert [r[0] for r in daily(empty_database)] == [now.replace(hour=0) - 10 * DAY, now.replace(hour=0) - 2 * DAY]


def _server_midnight(dsn: str) -> dt.datetime:
    """The start of the server's current UTC day: the refresh policies' windows follow its clock."""
    with psycopg.connect(dsn) as conn:
        (now,) = conn.execute("SELECT now()").fetchone()  # type: ignore[misc]
    return now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _job_ids(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    return {(proc, relation): job_id for job_id, proc, relation, _ in steward_jobs(conn)}


def _run_job(conn: psycopg.Connection, proc: str, relation: str) -> None:
    conn.execute("CALL run_job(%s)", (_job_ids(conn)[(proc, relation)],))


@pytest.mark.timescale
def test_policies_are_applied_once_and_altered_in_place(empty_database: str, server_has_timescale: bool) -> None:
    if not server_has_timescale:
        pytest.skip("TEST_DATABASE_URL has no timescaledb extension")
    assert migrate(empty_database, requested_mode="timescale")[0] is StorageMode.TIMESCALE
    assert len(apply_policies(empty_database, compress_after=7 * DAY, retain_for=365 * DAY)) == 4
    with psycopg.connect(empty_database) as conn:
        first = _job_ids(conn)
        assert set(first) == {("policy_compression", "events"), ("policy_retention", "events"),
                              ("policy_refresh_continuous_aggregate", "events_5m"),
                              ("policy_refresh_continuous_aggregate", "work_order_daily")}
    # A restart with the same settings (and `steward migrate`) leaves every job as it is.
    assert apply_policies(empty_database, compress_after=7 * DAY, retain_for=365 * DAY) == []
    migrate(empty_database)
    assert apply_policies(empty_database, compress_after=7 * DAY, retain_for=365 * DAY) == []
    # Changed settings change the same jobs.
    actions = apply_policies(empty_database, compress_after=14 * DAY, retain_for=400 * DAY)
    assert sorted(a.verb for a in actions) == ["alter", "alter"]
    with psycopg.connect(empty_database) as conn:
        assert _job_ids(conn) == first
        config = {f"{proc}:{relation}": conf for _, proc, relation, conf in steward_jobs(conn)}
        intervals = conn.execute(
            "SELECT %s::interval = %s::interval, %s::interval = %s::interval",
            (config["policy_compression:events"]["compress_after"], "14 days",
             config["policy_retention:events"]["drop_after"], "400 days")).fetchone()
        assert intervals == (True, True)
        assert config["policy_refresh_continuous_aggregate:events_5m"]["start_offset"] is None
    # Retention turned off removes its job and nothing else.
    assert [a.verb for a in apply_policies(empty_database, compress_after=14 * DAY, retain_for=None)] == ["delete"]
    with psycopg.connect(empty_database) as conn:
        ids = _job_ids(conn)
        assert ("policy_retention", "events") not in ids
        assert {k: v for k, v in first.items() if k[0] != "policy_retention"} == ids


@pytest.mark.timescale
def test_late_data_reaches_the_rollups_in_both_modes(admin_dsn: str, server_has_timescale: bool) -> None:
    """Devices buffer and upload late: events 9-10 days old, stored after the roll-ups were
    refreshed (into chunks the compression policy has already compressed), are in events_5m
    and work_order_daily after the refresh policy's next run, exactly as in plain mode.
    The policies' windows are relative to the server's clock, so the data is too."""
    if not server_has_timescale:
        pytest.skip("TEST_DATABASE_URL has no timescaledb extension")
    from steward.databases import create_database, drop_database

    plain, timescale = create_database(admin_dsn), create_database(admin_dsn)
    try:
        migrate(plain, requested_mode="plain")
        migrate(timescale, requested_mode="timescale")
        apply_policies(timescale, compress_after=7 * DAY, retain_for=365 * DAY)
        now = _server_midnight(timescale)  # the data stays at least a day older than the server's clock
        for dsn in (plain, timescale):
            store(dsn, flow_events(now - 12 * DAY, 300))  # an older stretch, to be compressed
            store(dsn, flow_events(now - 2 * DAY, 300, prefix="r"))
            store_work_order_changes(dsn, [now - 12 * DAY + 8 * HOUR, now - 2 * DAY + 8 * HOUR])
        with psycopg.connect(timescale, autocommit=True) as conn:
            _run_job(conn, "policy_compression", "events")
            assert conn.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'events' "
                                "AND is_compressed").fetchone()[0] >= 1
            _run_job(conn, "policy_refresh_continuous_aggregate", "events_5m")
            _run_job(conn, "policy_refresh_continuous_aggregate", "work_order_daily")
        assert rollups(timescale) == rollups(plain)
        for dsn in (plain, timescale):  # the late upload: 241 events from 9-10 days ago, received now
            store(dsn, flow_events(now - 10 * DAY, 241, step=dt.timedelta(minutes=6), prefix="late", received_at=now))
            store(dsn, flow_events(now - 12 * DAY + dt.timedelta(seconds=3), 30, prefix="latecompressed",
                                   received_at=now))
            store_work_order_changes(dsn, [now - 9 * DAY + 8 * HOUR])
        with psycopg.connect(timescale, autocommit=True) as conn:
            _run_job(conn, "policy_refresh_continuous_aggregate", "events_5m")
            _run_job(conn, "policy_refresh_continuous_aggregate", "work_order_daily")
        expected = rollups(plain)
        assert sum(r[3] for r in expected) == 300 + 300 + 241 + 30
        assert rollups(timescale) == expected
        assert daily(timescale) == daily(plain) and len(daily(plain)) == 3
        # Not computed live: the refresh materialized them (everything here is older than
        # the policies' end offsets), so the materialized part alone gives the same answers.
        with psycopg.connect(timescale, autocommit=True) as conn:
            for view in ("events_5m", "work_order_daily"):
                conn.execute(f"ALTER MATERIALIZED VIEW {view} SET (timescaledb.materialized_only = true)")
        assert rollups(timescale) == expected
        assert daily(timescale) == daily(plain)
    finally:
        drop_database(admin_dsn, plain)
        drop_database(admin_dsn, timescale)
