-- The installation-wide administrator: a user who sees and administers every
-- community of the installation, including one that does not exist yet, so
-- that the first start of a production stack has someone who can register the
-- first community's devices and users. `steward run` creates the first admin
-- this way; an admin of some communities can never see, change or impersonate
-- such a user (their communities are not all within the admin's own).
ALTER TABLE api_users ADD COLUMN IF NOT EXISTS all_communities boolean NOT NULL DEFAULT false;
