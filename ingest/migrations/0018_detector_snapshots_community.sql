-- Detector snapshots name their community, so that a shard's worker restores
-- only its own (NULL: written before shards; restored by an unsharded runtime).
ALTER TABLE detector_snapshots ADD COLUMN IF NOT EXISTS community_id text;
CREATE INDEX IF NOT EXISTS detector_snapshots_by_community ON detector_snapshots (community_id);
