-- TimescaleDB: events becomes a hypertable (1-day chunks), compressed by device,
-- with a real-time continuous aggregate of 5-minute per-device roll-ups.
-- The policies (compression, retention, the roll-up's refresh) are applied at
-- every start from the settings by ingest/policies.py, so they stay
-- configurable and are changed in place, never added twice.
--
-- The same file converts a plain database (steward storage convert-to-timescale,
-- ingest/convert.py), in the conversion's one transaction: the existing rows
-- move into chunks and the plain view is replaced by the continuous aggregate.
-- On a new database the DROP finds nothing. CREATE has no IF NOT EXISTS: a
-- view of that name that is not the continuous aggregate must fail loudly.
--
-- No default index (create_default_indexes => FALSE): TimescaleDB's would be a
-- btree on time (events_time_idx), which the detectors' replay cursor takes for
-- its time order and reads a whole day by (see REPLAY_SQL in detectors/runtime.py).
-- The roll-up's refresh, which reads a time range across every device, gets a
-- BRIN index on time instead (0007).
SELECT create_hypertable('events', by_range('time', INTERVAL '1 day'), create_default_indexes => FALSE,
                         if_not_exists => TRUE, migrate_data => TRUE);

ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC, msg_id'
);

DROP VIEW IF EXISTS events_5m;

CREATE MATERIALIZED VIEW events_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '5 minutes', time) AS bucket,
       community_id,
       device_id,
       type,
       count(*)    AS events,
       min(value)  AS min_value,
       max(value)  AS max_value,
       avg(value)  AS avg_value,
       sum(value)  AS sum_value
FROM events
GROUP BY 1, 2, 3, 4
WITH NO DATA;
