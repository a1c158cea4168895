-- TimescaleDB mode: a BRIN index on events.time instead of TimescaleDB's default
-- btree events_time_idx (databases created before 0002 said
-- create_default_indexes => FALSE lose it here).
-- The btree was the one index that returns events in time order across all
-- devices, so the detectors' replay cursor, which orders by time, was planned
-- as a backward scan of it: it read every row of the last day's chunks to keep
-- the few received since the checkpoint (1,436 of 4,937 blocks, against 40
-- through the BRIN index on received_at, 0005). Nothing else needs it: every
-- query by time also names a device or a community, which their own indexes
-- serve. What does read a time range across all devices is the refresh of the
-- continuous aggregates (a few minutes at a time, or an invalidated range):
-- rows arrive in about time order, so a BRIN index finds that range for next to
-- nothing per insert, where the btree cost one more index entry per row.
DROP INDEX IF EXISTS events_time_idx;
CREATE INDEX IF NOT EXISTS events_time_brin ON events USING brin (time) WITH (autosummarize = on);
