-- Daily closed-loop roll-up per community, by the day (UTC) each change
-- happened. Plain PostgreSQL: a view over work_order_events, always current;
-- TimescaleDB mode makes it a real-time continuous aggregate with the same
-- columns and answers. Backs the KPI trend (workorders.kpis.daily_rollup).
CREATE OR REPLACE VIEW work_order_daily AS
SELECT date_bin('1 day', at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS day,
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
GROUP BY 1, 2;
