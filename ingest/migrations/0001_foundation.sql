-- Devices, events and dead letters: the foundation every other table refers to.

CREATE TABLE IF NOT EXISTS devices (
    device_id    text PRIMARY KEY,
    community_id text NOT NULL,
    device_type  text NOT NULL CHECK (device_type IN ('elevator', 'water', 'access', 'elderly')),
    kind         text NOT NULL,
    building_id  text,
    unit_id      text,
    name         text NOT NULL DEFAULT '',
    attributes   jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    battery      real
);
CREATE INDEX IF NOT EXISTS devices_community_building ON devices (community_id, building_id);

-- One row per accepted message. The unique key makes a redelivery a no-op; it
-- holds the time column because a hypertable's unique indexes must.
-- The ids compare bytewise (COLLATE "C"): both indexes compare them on every
-- insert, and a locale's rules made those comparisons a tenth of the server's
-- time a row; it also orders them (and pages through them) alike on every
-- server, whatever its locale.
CREATE TABLE IF NOT EXISTS events (
    time         timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    community_id text COLLATE "C" NOT NULL,
    device_id    text COLLATE "C" NOT NULL,
    device_type  text NOT NULL,
    stream       text NOT NULL,
    type         text NOT NULL,
    msg_id       text COLLATE "C" NOT NULL,
    value        double precision,
    -- json, not jsonb: see 0004.
    fields       json NOT NULL
);
-- (device_id, time, msg_id) serves both the duplicate check and per-device time ranges.
CREATE UNIQUE INDEX IF NOT EXISTS events_device_time_msg ON events (device_id, time, msg_id);
CREATE INDEX IF NOT EXISTS events_community_time ON events (community_id, time DESC);

CREATE TABLE IF NOT EXISTS dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    reason       text NOT NULL,
    detail       text NOT NULL,
    community_id text,
    device_id    text,
    payload      bytea NOT NULL,      -- truncated to the first 4 KiB
    payload_size integer NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at DESC);
CREATE INDEX IF NOT EXISTS dead_letters_community ON dead_letters (community_id, received_at DESC);
