-- The tenancy rule (api/tenancy.py): a caller sees a thing when every
-- community it belongs to is one of the caller's.

-- An installation-wide administrator (0043) is an admin and stays one.
ALTER TABLE api_users DROP CONSTRAINT IF EXISTS api_users_all_communities_is_admin;
ALTER TABLE api_users ADD CONSTRAINT api_users_all_communities_is_admin CHECK (NOT all_communities OR role = 'admin');

-- The communities an audit entry belongs to: its community's, or for an entry
-- about a user (logins, password and key changes, administration) all of that
-- user's communities; empty = installation-wide administrators only.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS communities text[] NOT NULL DEFAULT '{}';
UPDATE audit_log SET communities = ARRAY[community_id] WHERE community_id IS NOT NULL AND communities = '{}';
UPDATE audit_log a SET communities = (SELECT coalesce(array_agg(c.community_id ORDER BY c.community_id), '{}')
                                        FROM api_user_communities c WHERE c.user_id = a.target_id::bigint)
 WHERE a.community_id IS NULL AND a.target_type = 'user' AND a.target_id ~ '^[0-9]{1,18}$';
CREATE INDEX IF NOT EXISTS audit_log_communities ON audit_log USING gin (communities);
