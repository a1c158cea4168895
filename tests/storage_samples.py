"""Sample data for the storage-mode tests: events stored the way the gateway stores
them (validated, then COPYed by the writer), work-order changes, and the roll-ups
read back from ``events_5m`` and ``work_order_daily`` in a form both modes share."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
from psycopg.types.json import Jsonb

from domain.devices import Device, DeviceType
from domain.events import Event
from gateway.validate import Limits, validate_message
from ingest import writer
from ingest.registry import upsert_devices

METERS = [f"wm{i}" for i in range(3)]


def flow_events(start: dt.datetime, n: int, *, step: dt.timedelta = dt.timedelta(seconds=7),
                prefix: str = "s", received_at: dt.datetime | None = None) -> list[Event]:
    """n flow readings from three meters, ``step`` apart from ``start``, received at
    ``received_at`` (default: when they happened): a late upload is old events received now."""
    events = []
    for i in range(n):
        ts = start + i * step
        topic = f"community/c1/water/{METERS[i % 3]}/telemetry"
        payload = json.dumps({"id": f"{prefix}{i}", "ts": ts.isoformat(), "type": "flow", "flow_lpm": i % 17 / 2})
        event = validate_message(topic, payload.encode(), received_at or ts, Limits())
        assert isinstance(event, Event), event
        events.append(event)
    return events


def store(dsn: str, events: list[Event]) -> None:
    with psycopg.connect(dsn) as conn:
        upsert_devices(conn, [Device(device_id=m, community_id="c1", device_type=DeviceType.WATER, kind="meter")
                              for m in METERS])
        table = writer.prepare(conn)
        with conn.transaction():
            writer.write_batch(conn, table, events, [])


def store_work_order_changes(dsn: str, times: list[dt.datetime]) -> None:
    """One work order created, accepted and completed at each of ``times`` (its changes 1 h apart)."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        for at in times:
            (order,) = conn.execute(  # type: ignore[misc]
                "INSERT INTO work_orders (community_id, source, tier, title, team_kind, state, created_at, created_by,"
                " updated_at) VALUES ('c1', 'staff', 3, 'sample', 'engineering', 'completed', %s, 'test', %s)"
                " RETURNING id", (at, at)).fetchone()
            for kind, offset, detail in (("created", 0, {}), ("accept", 1, {"first": True}), ("complete", 2, {})):
                conn.execute(
                    "INSERT INTO work_order_events (at, work_order_id, community_id, kind, actor, elapsed_s, detail)"
                    " VALUES (%s, %s, 'c1', %s, 'test', %s, %s)",
                    (at + dt.timedelta(hours=offset), order, kind, offset * 3600.0, Jsonb(detail)))


EVENTS_5M = ("SELECT bucket, device_id, type, events, min_value, max_value, round(avg_value::numeric, 6), sum_value "
             "FROM events_5m ORDER BY 1, 2, 3")
WORK_ORDER_DAILY = ("SELECT day, community_id, orders_created, first_accepts, response_s_sum, completions, "
                    "completions_within_24h FROM work_order_daily ORDER BY 1, 2")


def rollups(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(EVENTS_5M).fetchall()


def daily(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(WORK_ORDER_DAILY).fetchall()


# timescaledb_information.jobs names a refresh policy's materialization hypertable
# (_timescaledb_internal._materialized_hypertable_N), not the continuous aggregate:
# the view's name comes from continuous_aggregates. Steward's tables only (TimescaleDB
# has jobs of its own, e.g. telemetry, without a hypertable).
STEWARD_JOBS = (
    "SELECT j.job_id, j.proc_name, coalesce(c.view_name, j.hypertable_name) AS relation, j.config "
    "FROM timescaledb_information.jobs j "
    "LEFT JOIN timescaledb_information.continuous_aggregates c "
    "  ON c.materialization_hypertable_schema = j.hypertable_schema "
    " AND c.materialization_hypertable_name = j.hypertable_name "
    "WHERE j.hypertable_name IS NOT NULL ORDER BY j.job_id"
)


def steward_jobs(conn: psycopg.Connection) -> list[tuple[int, str, str, dict]]:
    """(job id, procedure, relation, config) of every policy job, the relation being the
    hypertable (events) or the continuous aggregate (events_5m, work_order_daily)."""
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(STEWARD_JOBS)]
