-- Control-room access: users, their communities, login tokens, API keys,
-- failed logins (rate limiting) and the audit log of every state change.

CREATE TABLE IF NOT EXISTS api_users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL DEFAULT '',
    role          text NOT NULL CHECK (role IN ('operator', 'technician', 'supervisor', 'manager', 'admin')),
    password_hash text NOT NULL,           -- argon2id
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Every user sees only the communities listed here; anything else answers 404.
CREATE TABLE IF NOT EXISTS api_user_communities (
    user_id      bigint NOT NULL REFERENCES api_users (id) ON DELETE CASCADE,
    community_id text NOT NULL,
    PRIMARY KEY (user_id, community_id)
);

-- Login tokens are opaque and stored as a SHA-256 digest: a leaked table
-- cannot be replayed, and logging out or disabling a user revokes at once.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_sha256 bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES api_users (id) ON DELETE CASCADE,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS api_tokens_expiry ON api_tokens (expires_at);

-- API keys for integrations act as their owning user (same role, same communities).
CREATE TABLE IF NOT EXISTS api_keys (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES api_users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL UNIQUE,      -- shown in listings, identifies the key
    key_sha256   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE IF NOT EXISTS api_login_failures (
    id        bigserial PRIMARY KEY,
    username  text NOT NULL,
    client    text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS api_login_failures_user ON api_login_failures (username, at DESC);
CREATE INDEX IF NOT EXISTS api_login_failures_client ON api_login_failures (client, at DESC);

CREATE TABLE IF NOT EXISTS audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    user_id      bigint REFERENCES api_users (id) ON DELETE SET NULL,
    username     text NOT NULL,
    via          text NOT NULL,             -- 'token', 'api_key', 'system'
    action       text NOT NULL,             -- e.g. 'alert.acknowledge', 'device.retire'
    community_id text,
    target_type  text NOT NULL,
    target_id    text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_community_at ON audit_log (community_id, id DESC);
