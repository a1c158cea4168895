-- Incidents raised by the detectors and their append-only timeline.
-- One NON-resolved incident per dedup_key ("{scope_id}:{condition}") at any time:
-- the partial unique index makes a second concurrent "opened" impossible.

CREATE TABLE IF NOT EXISTS incidents (
    id            bigserial PRIMARY KEY,
    dedup_key     text NOT NULL,
    community_id  text NOT NULL,
    scope         text NOT NULL CHECK (scope IN ('device', 'building', 'community')),
    scope_id      text NOT NULL,
    building_id   text,
    condition     text NOT NULL,
    tier          smallint NOT NULL CHECK (tier BETWEEN 1 AND 3),
    severity      integer NOT NULL DEFAULT 1,
    title         text NOT NULL,
    device_ids    text[] NOT NULL DEFAULT '{}',
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    work_order    boolean NOT NULL DEFAULT false,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    resolved_at   timestamptz,
    resolved_by   text,
    reopen_count  integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open_per_key ON incidents (dedup_key) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS incidents_key_resolved ON incidents (dedup_key, resolved_at DESC);
CREATE INDEX IF NOT EXISTS incidents_community_status ON incidents (community_id, status, tier, opened_at DESC);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at DESC);

CREATE TABLE IF NOT EXISTS incident_timeline (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents (id),
    at           timestamptz NOT NULL,
    kind         text NOT NULL,     -- opened, updated, escalated, cleared, reopened (+ closed-loop kinds)
    actor        text NOT NULL,     -- 'detector' or a person / process
    tier         smallint,
    severity     integer,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS incident_timeline_incident ON incident_timeline (incident_id, id);

-- Append-only: the timeline is history, never rewritten.
CREATE OR REPLACE FUNCTION incident_timeline_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'incident_timeline is append-only'; END $$;
DROP TRIGGER IF EXISTS incident_timeline_no_update ON incident_timeline;
CREATE TRIGGER incident_timeline_no_update BEFORE UPDATE OR DELETE ON incident_timeline
    FOR EACH ROW EXECUTE FUNCTION incident_timeline_append_only();
