-- People and places in the product (issue 18): what teams cover, which user
-- account is which staff member, how an alert was resolved, the names of
-- communities, buildings and units, and the demo's notification sink.

-- A team's skills and buildings: dispatch and the staff picker read them; a
-- member's own lists narrow them (empty = the team's).
ALTER TABLE teams ADD COLUMN IF NOT EXISTS skills text[] NOT NULL DEFAULT '{}';
ALTER TABLE teams ADD COLUMN IF NOT EXISTS buildings text[] NOT NULL DEFAULT '{}';

-- A login may be a staff member, so "acknowledged by" and "accepted by" are people.
ALTER TABLE api_users ADD COLUMN IF NOT EXISTS staff_id text REFERENCES staff (staff_id);
CREATE UNIQUE INDEX IF NOT EXISTS api_users_staff ON api_users (staff_id) WHERE staff_id IS NOT NULL;

-- What staff found when they resolved an alert; `false_alarm` (0024) stays the
-- KPI's input and is kept equal to resolution = 'false_alarm'.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS resolution text
    CHECK (resolution IN ('false_alarm', 'confirmed', 'duplicate'));
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS resolution_reason text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS duplicate_of bigint;

-- Names of places: a community, its buildings and units, so the console shows
-- "星河湾 · 2号楼 · 0703" rather than ids. Devices keep their ids as the key.
CREATE TABLE IF NOT EXISTS places (
    place_id     text PRIMARY KEY,
    community_id text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('community', 'building', 'unit')),
    parent_id    text,
    name         text NOT NULL
);
CREATE INDEX IF NOT EXISTS places_community ON places (community_id, kind);

-- The demo's "phone": messages the on-call webhook channel delivered to the
-- demo's own receiver (POST /demo/phone/inbox), shown by GET /demo/phone.
CREATE TABLE IF NOT EXISTS demo_phone_messages (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    community_id text,
    staff_id     text NOT NULL,
    incident_id  bigint,
    subject      text NOT NULL,
    body         text NOT NULL,
    links        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS demo_phone_recent ON demo_phone_messages (received_at DESC);
