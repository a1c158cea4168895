-- Work orders (接单 → 派单 → 跟进 → 验收 → 回访), their append-only event log,
-- and each community's SLA and KPI settings. States and transitions are
-- enforced in workorders/machine.py; the CHECKs here are the last guard.

CREATE TABLE IF NOT EXISTS service_policies (
    community_id   text PRIMARY KEY,
    sla            jsonb NOT NULL DEFAULT '{}'::jsonb,  -- overrides of workorders.sla.DEFAULT_POLICY
    kpi_thresholds jsonb NOT NULL DEFAULT '{}'::jsonb,  -- overrides of workorders.kpis.DEFAULT_THRESHOLDS
    updated_at     timestamptz NOT NULL,
    updated_by     text NOT NULL
);

CREATE TABLE IF NOT EXISTS work_orders (
    id              bigserial PRIMARY KEY,
    community_id    text NOT NULL,
    building_id     text,
    device_id       text,
    device_family   text,
    condition       text,
    incident_id     bigint REFERENCES incidents (id),
    source          text NOT NULL CHECK (source IN ('detection', 'alert_follow_up', 'resident_call', 'complaint', 'staff')),
    tier            smallint CHECK (tier BETWEEN 1 AND 3),
    complaint_grade text CHECK (complaint_grade IN ('A', 'B', 'C')),
    simple          boolean NOT NULL DEFAULT false,
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    description     text NOT NULL DEFAULT '',
    reporter        jsonb,                      -- the resident who called or complained
    team_kind       text NOT NULL,
    team_id         text REFERENCES teams (team_id),
    assignee        text REFERENCES staff (staff_id),
    state           text NOT NULL CHECK (state IN ('created', 'dispatched', 'accepted', 'on_site', 'completed',
                                                   'verified', 'return_visit_done', 'closed', 'cancelled')),
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    updated_at      timestamptz NOT NULL,
    dispatched_at   timestamptz,
    accepted_at     timestamptz,
    on_site_at      timestamptz,
    completed_at    timestamptz,
    verified_at     timestamptz,
    return_visit_at timestamptz,
    closed_at       timestamptz,
    cancelled_at    timestamptz,
    -- SLA deadlines fixed at creation from the community's policy (and moved
    -- only when the tier is raised), so a restart or a later policy change
    -- never rewrites the clock of an order already running.
    ack_due_at      timestamptz,
    respond_due_at  timestamptz,
    complete_due_at timestamptz,
    rework_count    integer NOT NULL DEFAULT 0,
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    return_visit_note text,
    repeat_of       bigint REFERENCES work_orders (id),
    condition_cleared_at timestamptz,           -- the detector saw the condition clear
    CHECK ((tier IS NULL) <> (complaint_grade IS NULL))
);
CREATE INDEX IF NOT EXISTS work_orders_community_created ON work_orders (community_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS work_orders_incident ON work_orders (incident_id);
CREATE INDEX IF NOT EXISTS work_orders_assignee_open ON work_orders (assignee)
    WHERE state IN ('dispatched', 'accepted', 'on_site');
CREATE INDEX IF NOT EXISTS work_orders_repeat ON work_orders (community_id, condition, device_id, building_id, created_at DESC);
CREATE INDEX IF NOT EXISTS work_orders_open ON work_orders (community_id)
    WHERE state NOT IN ('closed', 'cancelled');

-- Append-only: one row per change (created, every transition, notes, clears,
-- repeat links). elapsed_s (seconds since the order was created) lets the
-- daily roll-up (0023) aggregate response and completion times from this
-- table alone. A hypertable in TimescaleDB mode, so no primary key.
CREATE TABLE IF NOT EXISTS work_order_events (
    at            timestamptz NOT NULL,
    seq           bigserial,
    work_order_id bigint NOT NULL REFERENCES work_orders (id),
    community_id  text NOT NULL,
    kind          text NOT NULL,
    actor         text NOT NULL,
    from_state    text,
    to_state      text,
    elapsed_s     double precision NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS work_order_events_order ON work_order_events (work_order_id, at, seq);
CREATE INDEX IF NOT EXISTS work_order_events_community ON work_order_events (community_id, at DESC);
