-- Detector state that must survive a restart: one compact msgpack snapshot per
-- device (or building), the watermark of the events already folded into them,
-- and the silences (maintenance windows, residents' away notices).

CREATE TABLE IF NOT EXISTS detector_snapshots (
    key         text PRIMARY KEY,            -- device_id, or 'building:<id>'
    state       bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS detector_checkpoints (
    name            text PRIMARY KEY,        -- one row per runtime ('default')
    events_through  timestamptz NOT NULL,    -- received_at of the last event in the snapshots
    clock           timestamptz NOT NULL,    -- the engine's clock at the checkpoint
    taken_at        timestamptz NOT NULL DEFAULT now(),
    devices         integer NOT NULL,
    bytes           bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS maintenance_windows (
    id            bigserial PRIMARY KEY,
    community_id  text NOT NULL,
    scope         text NOT NULL CHECK (scope IN ('device', 'building', 'community')),
    scope_id      text NOT NULL,
    device_type   text,                      -- NULL: every family in the scope
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason        text NOT NULL DEFAULT 'maintenance',   -- maintenance, away, ...
    created_by    text NOT NULL DEFAULT 'system',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS maintenance_windows_active ON maintenance_windows (ends_at, starts_at);
