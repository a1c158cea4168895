-- TimescaleDB: work_order_events becomes a hypertable (7-day chunks) and the
-- daily roll-up a real-time continuous aggregate (materialized_only = false,
-- so rows newer than the last refresh are computed on the fly and the answers
-- equal the plain view's). Same columns as 0023_work_order_daily.plain.sql.
-- Converting a plain database runs this file too (see 0002): the plain view
-- is dropped and replaced. The refresh policy is ingest/policies.py's.
SELECT create_hypertable('work_order_events', by_range('at', INTERVAL '7 days'), if_not_exists => TRUE, migrate_data => TRUE);

DROP VIEW IF EXISTS work_order_daily;

CREATE MATERIALIZED VIEW work_order_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', at) AS day,
       community_id,
       count(*) FILTER (WHERE kind = 'created')                                      AS orders_created,
       count(*) FILTER (WHERE kind = 'accept' AND detail ->> 'first' = 'true')       AS first_accepts,
       coalesce(sum(elapsed_s) FILTER (WHERE kind = 'accept' AND detail ->> 'first' = 'true'), 0) AS response_s_sum,
       count(*) FILTER (WHERE kind = 'complete')                                     AS completions,
       count(*) FILTER (WHERE kind = 'complete' AND elapsed_s <= 86400)              AS completions_within_24h,
       count(*) FILTER (WHERE kind = 'reject')                                       AS reworks,
       count(*) FILTER (WHERE kind = 'verify')                                       AS verifications,
       count(*) FILTER (WHERE kind = 'return_visit')                                 AS return_visits,
       coalesce(sum((detail ->> 'rating')::int) FILTER (WHERE kind = 'return_visit'), 0) AS rating_sum,
       count(*) FILTER (WHERE kind = 'cancel')                                       AS cancellations,
       count(*) FILTER (WHERE kind = 'repeat_failure')                               AS repeat_failures
FROM work_order_events
GROUP BY 1, 2
WITH NO DATA;
