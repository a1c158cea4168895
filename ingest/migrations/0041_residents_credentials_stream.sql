-- Residents' personal data (shown only to roles that need it), device MQTT
-- credentials (hash only) and the change feed behind the control room's live stream.

CREATE TABLE IF NOT EXISTS residents (
    id                      bigserial PRIMARY KEY,
    community_id            text NOT NULL,
    building_id             text,
    unit_id                 text,
    device_id               text REFERENCES devices (device_id),  -- the elderly home_hub, when there is one
    full_name               text NOT NULL,
    phone                   text NOT NULL DEFAULT '',
    emergency_contact_name  text NOT NULL DEFAULT '',
    emergency_contact_phone text NOT NULL DEFAULT '',
    care_notes              text NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS residents_community ON residents (community_id, id);
CREATE INDEX IF NOT EXISTS residents_device ON residents (device_id);

-- Only the Mosquitto-format hash ($7$, PBKDF2-SHA512) is kept: the plaintext is
-- shown once at provisioning, and the broker's password file can be rebuilt
-- from this table after a restart.
CREATE TABLE IF NOT EXISTS device_credentials (
    device_id     text PRIMARY KEY REFERENCES devices (device_id),
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

-- One row per alert or work-order change, in commit order; the live stream
-- reads it with a cursor (resumable with Last-Event-ID) and is woken by NOTIFY.
CREATE TABLE IF NOT EXISTS stream_changes (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    community_id text NOT NULL,
    entity       text NOT NULL CHECK (entity IN ('alert', 'work_order')),
    entity_id    text NOT NULL,
    change       text NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS stream_changes_community ON stream_changes (community_id, id);
