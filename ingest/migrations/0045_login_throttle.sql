-- Login throttling (api/throttle.py): failures per account+address pair, per
-- address and per account, each reset after a quiet window. The rows of one
-- attempt are locked together while it is judged, so concurrent attempts are
-- counted one after the other. Replaces api_login_failures.
CREATE TABLE IF NOT EXISTS api_login_throttle (
    scope           text NOT NULL CHECK (scope IN ('account', 'address', 'pair')),
    key             text NOT NULL,
    failures        integer NOT NULL DEFAULT 0,
    last_failure_at timestamptz,
    locked_until    timestamptz,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS api_login_throttle_last_failure ON api_login_throttle (last_failure_at);
DROP TABLE IF EXISTS api_login_failures;
