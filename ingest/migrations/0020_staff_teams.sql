-- Teams and staff of each community: who work orders are dispatched to, and
-- what the on-call schedules (0030+) are built on. Kept minimal on purpose.

-- A team is one of the service lines of a community. A community may have
-- more than one team of a kind (e.g. two engineering crews); dispatch chooses
-- among the staff of every active team of the kind it needs.
CREATE TABLE IF NOT EXISTS teams (
    team_id       text PRIMARY KEY,
    community_id  text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('engineering', 'security', 'cleaning', 'elderly_care',
                                                 'customer_service', 'management')),
    name          text NOT NULL,
    lead_staff_id text,          -- the team lead (overdue Level 3 work escalates here); FK added below
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS teams_community_kind ON teams (community_id, kind) WHERE active;

CREATE TABLE IF NOT EXISTS staff (
    staff_id        text PRIMARY KEY,
    community_id    text NOT NULL,
    team_id         text REFERENCES teams (team_id),
    name            text NOT NULL,
    role            text NOT NULL DEFAULT 'technician'
                    CHECK (role IN ('operator', 'technician', 'guard', 'steward', 'cleaner',
                                    'team_lead', 'supervisor', 'manager')),
    -- Free-form skill tags matched against the work: a device family
    -- ('elevator', 'water', 'access', 'elderly') or a condition name.
    skills          text[] NOT NULL DEFAULT '{}',
    -- Buildings this person covers; empty means the whole community.
    buildings       text[] NOT NULL DEFAULT '{}',
    phone           text,
    email           text,
    -- Above this many open orders, dispatch passes them over while anyone else can take it.
    max_open_orders integer NOT NULL DEFAULT 5 CHECK (max_open_orders > 0),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS staff_community_team ON staff (community_id, team_id) WHERE active;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'teams_lead_staff_fk') THEN
        ALTER TABLE teams ADD CONSTRAINT teams_lead_staff_fk
            FOREIGN KEY (lead_staff_id) REFERENCES staff (staff_id) DEFERRABLE INITIALLY DEFERRED;
    END IF;
END $$;
