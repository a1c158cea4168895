-- An action link dies with its staff member (issue 17): when the person is
-- deactivated (staff.active), every link sent to them and not used yet is
-- revoked, whichever path made the change (API, roster import, SQL).
-- Reactivating them does not bring the links back.
ALTER TABLE oncall_links ADD COLUMN IF NOT EXISTS revoked_at timestamptz;

CREATE OR REPLACE FUNCTION oncall_links_die_with_staff() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.active AND NOT NEW.active THEN
        UPDATE oncall_links SET revoked_at = now()
         WHERE staff_id = NEW.staff_id AND used_at IS NULL AND revoked_at IS NULL;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS oncall_links_die_with_staff ON staff;
CREATE TRIGGER oncall_links_die_with_staff AFTER UPDATE OF active ON staff
    FOR EACH ROW EXECUTE FUNCTION oncall_links_die_with_staff();
