-- TimescaleDB: events becomes a hypertable (1-day chunks), compressed by device,
-- with a real-time continuous aggregate of 5-minute per-device roll-ups.
-- Compression and retention policies are (re)applied at start from the
-- settings by ingest.storage.apply_policies, so they stay configurable.
SELECT create_hypertable('events', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);

ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC, msg_id'
);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_5m
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

SELECT add_continuous_aggregate_policy('events_5m',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes',
    if_not_exists => TRUE);
