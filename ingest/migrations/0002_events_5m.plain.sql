-- 5-minute per-device roll-ups. Plain PostgreSQL: a view over events, always
-- current; TimescaleDB mode makes this a real-time continuous aggregate with
-- the same columns and answers.
CREATE OR REPLACE VIEW events_5m AS
SELECT date_bin('5 minutes', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       community_id,
       device_id,
       type,
       count(*)    AS events,
       min(value)  AS min_value,
       max(value)  AS max_value,
       avg(value)  AS avg_value,
       sum(value)  AS sum_value
FROM events
GROUP BY 1, 2, 3, 4;
