-- Shards of communities and the leases that let one worker at a time own a shard.
--
-- shard_layout: the number of shards, fixed when the first worker starts (a
-- different count later is refused: it would move communities).
-- community_shards: which shard each community belongs to, assigned once when
-- the community first appears in the registry (the trigger below) and never
-- changed, so adding a community never moves another.
-- shard_leases: who owns a shard until when; epoch is the fencing token, raised
-- at every change of owner, and every commit of a shard's worker checks it in
-- the same transaction.
-- shard_workers: the live workers (a heartbeat), to divide the shards fairly.

CREATE TABLE IF NOT EXISTS shard_layout (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    shard_count  integer NOT NULL CHECK (shard_count BETWEEN 1 AND 4096),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS community_shards (
    community_id  text PRIMARY KEY,
    shard         integer NOT NULL CHECK (shard >= 0),
    assigned_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS community_shards_by_shard ON community_shards (shard);

CREATE TABLE IF NOT EXISTS shard_leases (
    shard        integer PRIMARY KEY CHECK (shard >= 0),
    owner        text,                                   -- worker id; NULL: free
    epoch        bigint NOT NULL DEFAULT 0,              -- fencing token
    expires_at   timestamptz NOT NULL DEFAULT '-infinity',
    acquired_at  timestamptz
);

CREATE TABLE IF NOT EXISTS shard_workers (
    worker_id   text PRIMARY KEY,
    seen_until  timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    host        text,
    pid         integer
);

-- Assign a community its shard: the one with the fewest communities (ties: the
-- lowest number). A no-op for a community that has one, or before the layout
-- exists (the first worker then assigns every community of the registry).
CREATE OR REPLACE FUNCTION assign_community_shard(c text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    s integer;
BEGIN
    SELECT shard INTO s FROM community_shards WHERE community_id = c;
    IF FOUND THEN
        RETURN s;
    END IF;
    SELECT shard_count INTO n FROM shard_layout;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT g.s INTO s FROM generate_series(0, n - 1) AS g(s)
        LEFT JOIN community_shards cs ON cs.shard = g.s
        GROUP BY g.s ORDER BY count(cs.community_id), g.s LIMIT 1;
    INSERT INTO community_shards (community_id, shard) VALUES (c, s) ON CONFLICT (community_id) DO NOTHING;
    SELECT shard INTO s FROM community_shards WHERE community_id = c;
    PERFORM pg_notify('steward_shards', s::text);
    RETURN s;
END $$;

CREATE OR REPLACE FUNCTION devices_assign_shard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM assign_community_shard(NEW.community_id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS devices_assign_shard ON devices;
CREATE TRIGGER devices_assign_shard AFTER INSERT OR UPDATE OF community_id ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_assign_shard();
