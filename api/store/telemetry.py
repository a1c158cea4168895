"""Events, dead letters, per-device series and 5-minute roll-ups.

Series buckets use ``time_bucket`` on TimescaleDB and ``date_bin`` on plain
PostgreSQL, both anchored at 2000-01-01 UTC so the two modes give the same
buckets (``time_bucket``'s own default origin is a Monday, 2000-01-03).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from ingest.migrate import StorageMode

ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class EventRow:
    time: dt.datetime
    received_at: dt.datetime
    community_id: str
    device_id: str
    device_type: str
    stream: str
    type: str
    msg_id: str
    value: float | None
    fields: dict[str, Any]


def list_events(conn: psycopg.Connection, *, communities: list[str], device_id: str | None = None,
                event_type: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
                after: tuple[dt.datetime, str, str] | None = None, limit: int = 100) -> list[EventRow]:
    """Newest first; ``after`` is the (time, device_id, msg_id) of the last row of the previous page."""
    params: dict[str, Any] = {"c": communities, "d": device_id, "t": event_type, "since": since, "until": until,
                              "limit": limit}
    keyset = ""
    if after is not None:
        keyset = "AND (time, device_id, msg_id) < (%(at)s, %(ad)s, %(am)s) "
        params.update(at=after[0], ad=after[1], am=after[2])
    rows = conn.execute(
        "SELECT time, received_at, community_id, device_id, device_type, stream, type, msg_id, value, fields "
        "FROM events WHERE community_id = ANY(%(c)s) AND (%(d)s::text IS NULL OR device_id = %(d)s) "
        "AND (%(t)s::text IS NULL OR type = %(t)s) AND (%(since)s::timestamptz IS NULL OR time >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR time < %(until)s) " + keyset +
        "ORDER BY time DESC, device_id DESC, msg_id DESC LIMIT %(limit)s",
        params,
    ).fetchall()
    return [EventRow(*r) for r in rows]


@dataclass(frozen=True)
class DeadLetterRow:
    id: int
    received_at: dt.datetime
    topic: str
    reason: str
    detail: str
    community_id: str | None
    device_id: str | None
    payload_text: str
    payload_size: int
    device_name: str | None = None  # the registered device's name in the letter's community, if any


def list_dead_letters(conn: psycopg.Connection, *, communities: list[str], include_unscoped: bool,
                      reason: str | None = None, before_id: int | None = None, limit: int = 100) -> list[DeadLetterRow]:
    """Newest first. Letters whose topic named no valid community only with ``include_unscoped``."""
    rows = conn.execute(
        "SELECT l.id, l.received_at, l.topic, l.reason, l.detail, l.community_id, l.device_id, l.payload,"
        " l.payload_size, d.name FROM dead_letters l LEFT JOIN devices d"
        " ON d.device_id = l.device_id AND d.community_id = l.community_id"
        " WHERE (l.community_id = ANY(%(c)s) OR (l.community_id IS NULL AND %(u)s)) "
        "AND (%(r)s::text IS NULL OR l.reason = %(r)s) AND (%(b)s::bigint IS NULL OR l.id < %(b)s) "
        "ORDER BY l.id DESC LIMIT %(limit)s",
        {"c": communities, "u": include_unscoped, "r": reason, "b": before_id, "limit": limit},
    ).fetchall()
    return [
        DeadLetterRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]).decode("utf-8", "replace"), r[8], r[9])
        for r in rows
    ]


@dataclass(frozen=True)
class SeriesPoint:
    bucket: dt.datetime
    count: int
    min: float | None
    max: float | None
    avg: float | None


@dataclass(frozen=True)
class Series:
    """One quantity over time: the readings of one event type on one stream of one device.
    ``stream``/``type`` are None when the device has no such reading in the range."""

    stream: str | None
    type: str | None
    points: list[SeriesPoint]


class MixedSeries(ValueError):
    """The field is carried by several event types of the device (a meter's ``value`` is
    its flow on telemetry and its battery on heartbeats): the caller must choose one."""

    def __init__(self, kinds: list[tuple[str, str]]) -> None:
        self.kinds = kinds
        super().__init__(", ".join(f"{t} ({s})" for s, t in kinds))


def _bucket_sql(mode: StorageMode) -> str:
    if mode is StorageMode.TIMESCALE:
        return "time_bucket(%(bucket)s::interval, time, %(origin)s::timestamptz)"
    return "date_bin(%(bucket)s::interval, time, %(origin)s::timestamptz)"


def series(conn: psycopg.Connection, *, mode: StorageMode, device_id: str, field: str, bucket: dt.timedelta,
           since: dt.datetime, until: dt.datetime, stream: str | None = None,
           event_type: str | None = None) -> Series:
    """Per-bucket count/min/max/avg of one numeric field (``value`` is the type's primary reading)
    of one (stream, type) of the device: the one given, or the only one that carries the
    field in the range. Raises :class:`MixedSeries` when that is not one: averaging a
    meter's flow with its battery would mean nothing.

    Messages without the field, or where it is not a number, are not counted;
    booleans count as 0/1 so e.g. a leak sensor's ``wet`` can be charted.
    """
    if field == "value":
        reading, source = "value", "events"
    else:
        # fields is json (or jsonb in an older TimescaleDB database): the one field,
        # as jsonb, gives the same answers from both.
        reading = (
            "CASE jsonb_typeof(f.v) WHEN 'number' THEN (f.v #>> '{}')::double precision "
            "WHEN 'boolean' THEN CASE WHEN f.v::boolean THEN 1.0 ELSE 0.0 END END"
        )
        source = "events CROSS JOIN LATERAL (SELECT (fields -> %(field)s)::jsonb AS v) AS f"
    # Grouped by (stream, type) too, so that one scan both finds which quantities the
    # range holds and computes the series when it is one.
    rows = conn.execute(
        f"SELECT stream, type, {_bucket_sql(mode)} AS b, count(r), min(r), max(r), avg(r) FROM ("
        f"  SELECT time, stream, type, {reading} AS r FROM {source} WHERE device_id = %(device)s "
        "   AND time >= %(since)s AND time < %(until)s AND (%(stream)s::text IS NULL OR stream = %(stream)s) "
        "   AND (%(type)s::text IS NULL OR type = %(type)s)) AS e "
        "WHERE r IS NOT NULL GROUP BY stream, type, b ORDER BY stream, type, b",
        {"bucket": bucket, "origin": ORIGIN, "field": field, "device": device_id, "since": since, "until": until,
         "stream": stream, "type": event_type},
    ).fetchall()
    kinds = list(dict.fromkeys((r[0], r[1]) for r in rows))
    if len(kinds) > 1:
        raise MixedSeries(kinds)
    if not kinds:
        return Series(stream, event_type, [])
    return Series(kinds[0][0], kinds[0][1], [SeriesPoint(r[2], r[3], r[4], r[5], r[6]) for r in rows])


@dataclass(frozen=True)
class RollupRow:
    bucket: dt.datetime
    type: str
    events: int
    min_value: float | None
    max_value: float | None
    avg_value: float | None
    sum_value: float | None


def rollups(conn: psycopg.Connection, *, device_id: str, since: dt.datetime, until: dt.datetime,
            event_type: str | None = None, limit: int = 500) -> list[RollupRow]:
    rows = conn.execute(
        "SELECT bucket, type, events, min_value, max_value, avg_value, sum_value FROM events_5m "
        "WHERE device_id = %(d)s AND bucket >= %(since)s AND bucket < %(until)s "
        "AND (%(t)s::text IS NULL OR type = %(t)s) ORDER BY bucket, type LIMIT %(limit)s",
        {"d": device_id, "since": since, "until": until, "t": event_type, "limit": limit},
    ).fetchall()
    return [RollupRow(*r) for r in rows]
