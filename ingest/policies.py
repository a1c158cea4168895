"""TimescaleDB's background jobs for Steward's tables, applied idempotently at every start.

Each policy is compared with the job TimescaleDB already has: an unchanged one
is left alone (same job id, same schedule, its statistics kept), a changed one
is altered in place with ``alter_job``, a missing one is added, and one the
settings no longer ask for (retention turned off, a second refresh policy on
the same roll-up) is deleted. Steward owns the policies of its own tables.

The roll-ups' refresh windows reach back to the start of the data
(``start_offset => NULL``): a device that buffered for days and uploads late
still reaches ``events_5m`` and ``work_order_daily``, whatever the age of its
events within retention. That costs no more than a short window: a refresh
re-materializes only the ranges the invalidation log marks as changed (one
range per chunk per transaction that wrote older rows), and dropping chunks
for retention invalidates their range too, so the roll-ups keep exactly the
events that are stored, as the plain-mode views do.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from ingest.modes import StorageMode, current_mode

log = logging.getLogger(__name__)

Offsets = dict[str, dt.timedelta | None]  # config key -> interval (None: JSON null, "from the start")


@dataclass(frozen=True)
class Policy:
    kind: str  # compression, retention, refresh
    relation: str  # the hypertable (events) or the continuous aggregate (events_5m...)
    settings: Offsets
    schedule_interval: dt.timedelta | None = None  # None: TimescaleDB's default, not managed


@dataclass(frozen=True)
class Job:
    job_id: int
    kind: str
    relation: str
    settings: Offsets
    schedule_interval: dt.timedelta
    config: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Action:
    verb: str  # add, alter, delete
    policy: Policy | None = None
    job: Job | None = None


# The roll-ups: their refresh ends one bucket-ish short of now (the newest bucket is
# still filling and is computed live, materialized_only = false) and runs that often.
REFRESH = {
    "events_5m": (dt.timedelta(minutes=5), dt.timedelta(minutes=5)),
    "work_order_daily": (dt.timedelta(hours=1), dt.timedelta(hours=1)),
}
PROC_KINDS = {
    "policy_compression": "compression",
    "policy_retention": "retention",
    "policy_refresh_continuous_aggregate": "refresh",
}
SETTING_KEYS = {
    "compression": ("compress_after",),
    "retention": ("drop_after",),
    "refresh": ("start_offset", "end_offset"),
}


def desired(*, compress_after: dt.timedelta, retain_for: dt.timedelta | None, caggs: set[str]) -> list[Policy]:
    policies = [Policy("compression", "events", {"compress_after": compress_after})]
    if retain_for is not None:
        policies.append(Policy("retention", "events", {"drop_after": retain_for}))
    for view, (end_offset, every) in REFRESH.items():
        if view in caggs:
            policies.append(Policy("refresh", view, {"start_offset": None, "end_offset": end_offset}, every))
    return policies


def plan(existing: list[Job], wanted: list[Policy], managed: set[tuple[str, str]]) -> list[Action]:
    """What to do so that the jobs of every managed (kind, relation) are exactly ``wanted``:
    deletions first (a second refresh policy would overlap the one kept), then changes, then additions."""
    deletes: list[Action] = []
    alters: list[Action] = []
    adds: list[Action] = []
    by_key = {(p.kind, p.relation): p for p in wanted}
    for key in sorted(managed | set(by_key)):
        jobs = sorted((j for j in existing if (j.kind, j.relation) == key), key=lambda j: j.job_id)
        policy = by_key.get(key)
        if policy is None:
            deletes.extend(Action("delete", job=j) for j in jobs)
            continue
        if not jobs:
            adds.append(Action("add", policy=policy))
            continue
        keep, extra = jobs[0], jobs[1:]
        deletes.extend(Action("delete", job=j) for j in extra)
        schedule_changed = policy.schedule_interval is not None and keep.schedule_interval != policy.schedule_interval
        if keep.settings != policy.settings or schedule_changed:
            alters.append(Action("alter", policy=policy, job=keep))
    return deletes + alters + adds


_JOBS = """
SELECT j.job_id, j.proc_name, coalesce(c.view_name, j.hypertable_name), j.schedule_interval, j.config,
       (j.config ->> 'compress_after')::interval, (j.config ->> 'drop_after')::interval,
       (j.config ->> 'start_offset')::interval, (j.config ->> 'end_offset')::interval
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.continuous_aggregates c
       ON j.proc_name = 'policy_refresh_continuous_aggregate' AND c.view_schema = current_schema()
      AND j.hypertable_name IN (c.view_name, c.materialization_hypertable_name)
WHERE j.proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')
  AND (c.view_name IS NOT NULL OR j.hypertable_schema = current_schema())
  AND coalesce(c.view_name, j.hypertable_name) IN ('events', 'events_5m', 'work_order_daily')
"""


def existing_jobs(conn: psycopg.Connection) -> list[Job]:
    jobs = []
    for job_id, proc, relation, schedule, config, compress_after, drop_after, start, end in conn.execute(_JOBS):
        kind = PROC_KINDS[proc]
        values = {"compress_after": compress_after, "drop_after": drop_after, "start_offset": start, "end_offset": end}
        settings = {k: values[k] for k in SETTING_KEYS[kind]}
        jobs.append(Job(job_id, kind, relation, settings, schedule, config or {}))
    return jobs


def continuous_aggregates(conn: psycopg.Connection) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = current_schema()"
        )
    }


def apply_policies_on(conn: psycopg.Connection, *, compress_after: dt.timedelta,
                      retain_for: dt.timedelta | None) -> list[Action]:
    """Make the jobs match the settings on a TimescaleDB connection (inside the caller's
    transaction, if any); returns what was done."""
    caggs = continuous_aggregates(conn)
    wanted = desired(compress_after=compress_after, retain_for=retain_for, caggs=caggs)
    managed = {("compression", "events"), ("retention", "events")} | {("refresh", v) for v in REFRESH if v in caggs}
    actions = plan(existing_jobs(conn), wanted, managed)
    for action in actions:
        _perform(conn, action)
        log.info("TimescaleDB policy: %s %s on %s", action.verb,
                 (action.policy or action.job).kind,  # type: ignore[union-attr]
                 (action.policy or action.job).relation)  # type: ignore[union-attr]
    return actions


def _perform(conn: psycopg.Connection, action: Action) -> None:
    if action.verb == "delete":
        assert action.job is not None
        conn.execute("SELECT delete_job(%s)", (action.job.job_id,))
        return
    policy = action.policy
    assert policy is not None
    s = policy.settings
    if action.verb == "alter":
        assert action.job is not None
        # Only the keys Steward manages change; the rest of the job's config (ids,
        # options a newer TimescaleDB adds) stays as it is. Intervals are written as
        # the server spells them, as TimescaleDB does.
        config = dict(action.job.config)
        for key, value in s.items():
            config[key] = None if value is None else _interval_text(conn, value)
        conn.execute("SELECT job_id FROM alter_job(%s, schedule_interval => %s::interval, config => %s::jsonb)",
                     (action.job.job_id, policy.schedule_interval, Jsonb(config)))
    elif policy.kind == "compression":
        conn.execute("SELECT add_compression_policy(%s::regclass, compress_after => %s::interval)",
                     (policy.relation, s["compress_after"]))
    elif policy.kind == "retention":
        conn.execute("SELECT add_retention_policy(%s::regclass, drop_after => %s::interval)",
                     (policy.relation, s["drop_after"]))
    else:
        conn.execute(
            "SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => %s::interval,"
            " end_offset => %s::interval, schedule_interval => %s::interval)",
            (policy.relation, s["start_offset"], s["end_offset"], policy.schedule_interval),
        )


def _interval_text(conn: psycopg.Connection, value: dt.timedelta) -> str:
    (text,) = conn.execute("SELECT %s::interval::text", (value,)).fetchone()  # type: ignore[misc]
    return str(text)


def apply_policies(dsn: str, *, compress_after: dt.timedelta, retain_for: dt.timedelta | None) -> list[Action]:
    """Apply the policies from the settings. No-op in plain mode, where retention is
    left to the operator (documented in the README)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if current_mode(conn) is not StorageMode.TIMESCALE:
            return []
        with conn.transaction():
            return apply_policies_on(conn, compress_after=compress_after, retain_for=retain_for)
