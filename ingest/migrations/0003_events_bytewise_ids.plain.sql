-- Databases created before 0001 declared the events ids COLLATE "C" (see there
-- why): give them the same. Changing a collation rebuilds the two indexes,
-- which takes a while on a large table, once. The 5-minute view reads those
-- columns, so it is dropped and created again unchanged. (TimescaleDB cannot
-- change a column of a compressed hypertable; a database that was already on
-- TimescaleDB keeps its locale's collation: same rows, slower inserts.)
DROP VIEW IF EXISTS events_5m;

ALTER TABLE events
    ALTER COLUMN community_id TYPE text COLLATE "C",
    ALTER COLUMN device_id TYPE text COLLATE "C",
    ALTER COLUMN msg_id TYPE text COLLATE "C";

CREATE VIEW events_5m AS
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
