-- Usernames are unique regardless of case: `Admin-South` next to `admin-south`
-- would let one pass for the other in lists, the audit and on-call. Usernames
-- are ASCII (api/routes/users.py USERNAME), so lower() is the whole folding.
-- A database that already holds two usernames differing only in case is
-- refused with their names: rename or deactivate-and-rename one of each pair
-- (UPDATE api_users SET username = '<new name>' WHERE id = <id>), then migrate again.
DO $$
DECLARE
    clashes text;
BEGIN
    SELECT string_agg(names, '; ') INTO clashes FROM (
        SELECT string_agg(format('%s (id %s)', username, id), ', ' ORDER BY id) AS names
        FROM api_users GROUP BY lower(username) HAVING count(*) > 1
    ) d;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'usernames differing only in case: %', clashes
            USING HINT = 'rename one user of each pair (UPDATE api_users SET username = ''<new name>'' WHERE id = <id>), then run steward migrate again';
    END IF;
END $$;

CREATE UNIQUE INDEX IF NOT EXISTS api_users_username_lower ON api_users (lower(username));
