-- This installation's id: random, made once, shared by every process of the
-- installation (steward/identity.py). The gateway's MQTT session is
-- steward-gateway-<id>, so it is not a public default any device could name.
CREATE TABLE IF NOT EXISTS installation (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    installation_id text NOT NULL CHECK (installation_id ~ '^[a-z0-9]{8,32}$'),
    created_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation (installation_id)
SELECT substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)
WHERE NOT EXISTS (SELECT 1 FROM installation);
