-- Alert lifecycle on top of the detectors' incidents (0010): an alert IS an
-- incident row. Staff actions add who acknowledged and who owns it; every
-- change is also appended to incident_timeline with its actor.

ALTER TABLE incidents ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS acknowledged_by text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS assignee text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS assigned_at timestamptz;

CREATE TABLE IF NOT EXISTS incident_comments (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000)
);
CREATE INDEX IF NOT EXISTS incident_comments_incident ON incident_comments (incident_id, at, id);

-- The alert list's keyset pagination (newest first within a community).
CREATE INDEX IF NOT EXISTS incidents_community_opened ON incidents (community_id, opened_at DESC, id DESC);
