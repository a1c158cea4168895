-- On-call: who is reachable how, schedules, escalation policies, the durable
-- escalation timers and every delivery attempt. Maintenance windows are the
-- detectors' `maintenance_windows` (0011): one table silences both.
--
-- People and teams are the closed loop's `staff` and `teams` (0020); a team
-- step pages the active staff whose `team_id` is that team. Incidents (0010)
-- are referred to by id without a foreign key so this file does not depend on
-- the detectors' migration landing first.

-- How to reach a person: one row per channel. An empty `address` falls back
-- to `staff.email` (email) or `staff.phone` (webhook: the SMS/IM gateway's
-- recipient); a full http(s) URL sends the webhook to the person's own IM bot.
-- Push needs no address: the staff app subscribes to staff/{staff_id}/alerts.
CREATE TABLE IF NOT EXISTS oncall_contacts (
    staff_id   text NOT NULL REFERENCES staff (staff_id),
    channel    text NOT NULL CHECK (channel IN ('webhook', 'email', 'push')),
    address    text NOT NULL DEFAULT '',
    locale     text NOT NULL DEFAULT 'zh-CN' CHECK (locale IN ('zh-CN', 'en')),
    enabled    boolean NOT NULL DEFAULT true,
    PRIMARY KEY (staff_id, channel)
);

CREATE TABLE IF NOT EXISTS oncall_schedules (
    schedule_id  text PRIMARY KEY,
    community_id text NOT NULL,
    name         text NOT NULL DEFAULT ''
);

-- A rotation hands off every `shift` starting at `handoff_at` (an instant, so a
-- daily 08:00 Beijing-time hand-off is '2026-01-05 08:00+08'); participants take
-- turns in array order. With several layers the highest `layer` that has
-- somebody on call wins (e.g. a weekend layer above the weekday one).
CREATE TABLE IF NOT EXISTS oncall_rotations (
    schedule_id  text NOT NULL,
    layer        integer NOT NULL,
    handoff_at   timestamptz NOT NULL,
    shift        interval NOT NULL CHECK (shift > interval '0'),
    participants text[] NOT NULL CHECK (cardinality(participants) > 0),
    active_from  timestamptz,
    active_until timestamptz,
    PRIMARY KEY (schedule_id, layer)
);

-- Overrides beat every layer while they last; the latest created wins.
CREATE TABLE IF NOT EXISTS oncall_overrides (
    override_id bigserial PRIMARY KEY,
    schedule_id text NOT NULL,
    staff_id    text NOT NULL REFERENCES staff (staff_id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS oncall_overrides_schedule ON oncall_overrides (schedule_id, ends_at);

-- One policy per (community, tier); community '*' and tier NULL are fallbacks.
CREATE TABLE IF NOT EXISTS oncall_policies (
    policy_id          text PRIMARY KEY,
    community_id       text NOT NULL,
    tier               smallint CHECK (tier BETWEEN 1 AND 3),
    name               text NOT NULL DEFAULT '',
    repeat             integer NOT NULL DEFAULT 0 CHECK (repeat BETWEEN 0 AND 10),
    ack_renotify_after interval NOT NULL DEFAULT interval '30 minutes',
    reminder_every     interval NOT NULL DEFAULT interval '15 minutes'
);
CREATE UNIQUE INDEX IF NOT EXISTS oncall_policies_scope ON oncall_policies (community_id, coalesce(tier, 0));

-- targets: [{"kind": "staff"|"schedule"|"team", "id": "..."}]; `delay` is the
-- wait after this step before the next one.
CREATE TABLE IF NOT EXISTS oncall_policy_steps (
    policy_id text NOT NULL,
    position  integer NOT NULL CHECK (position >= 0),
    targets   jsonb NOT NULL,
    delay     interval NOT NULL CHECK (delay >= interval '0'),
    PRIMARY KEY (policy_id, position)
);

-- One row per incident: the current escalation round (a reopened incident or a
-- raised tier starts a new round) and who acknowledged it through on-call.
CREATE TABLE IF NOT EXISTS oncall_escalations (
    incident_id     bigint PRIMARY KEY,
    round           integer NOT NULL,
    policy_id       text,
    tier            smallint NOT NULL,
    started_at      timestamptz NOT NULL,
    acknowledged_by text,
    acknowledged_at timestamptz,
    note            text NOT NULL DEFAULT ''
);

-- The durable escalation timers. The unique key makes firing idempotent: a
-- step's effects and its status change commit in one transaction, and the
-- next step is inserted ON CONFLICT DO NOTHING, so a restart never fires a
-- step twice and never loses one.
CREATE TABLE IF NOT EXISTS oncall_pending (
    pending_id  bigserial PRIMARY KEY,
    incident_id bigint NOT NULL,
    round       integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('step', 'reminder', 'ack_renotify')),
    step        integer NOT NULL,
    repeat      integer NOT NULL,
    due_at      timestamptz NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fired', 'cancelled')),
    reason      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    fired_at    timestamptz,
    UNIQUE (incident_id, round, kind, step, repeat)
);
CREATE INDEX IF NOT EXISTS oncall_pending_due ON oncall_pending (due_at) WHERE status = 'pending';

-- What must be sent: one row per (fired step, person, channel). The worker of
-- each channel claims its own rows, so a channel that is down delays only itself.
CREATE TABLE IF NOT EXISTS oncall_outbox (
    outbox_id       bigserial PRIMARY KEY,
    pending_id      bigint NOT NULL REFERENCES oncall_pending (pending_id),
    incident_id     bigint NOT NULL,
    staff_id        text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'email', 'push')),
    address         text NOT NULL,
    locale          text NOT NULL,
    message         jsonb NOT NULL,          -- template parameters; rendered at send time
    reason          text NOT NULL,           -- why this person is notified
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    UNIQUE (pending_id, staff_id, channel)
);
CREATE INDEX IF NOT EXISTS oncall_outbox_due ON oncall_outbox (channel, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS oncall_outbox_incident ON oncall_outbox (incident_id);

-- Every delivery attempt with its outcome (error text is scrubbed of secrets).
CREATE TABLE IF NOT EXISTS oncall_deliveries (
    delivery_id bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES oncall_outbox (outbox_id),
    incident_id bigint NOT NULL,
    channel     text NOT NULL,
    recipient   text NOT NULL,
    attempt     integer NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
    error       text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    duration_ms double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS oncall_deliveries_incident ON oncall_deliveries (incident_id, at);

-- Signed action links: issued with a nonce, consumed once.
CREATE TABLE IF NOT EXISTS oncall_links (
    nonce       text PRIMARY KEY,
    incident_id bigint NOT NULL,
    action      text NOT NULL CHECK (action IN ('ack', 'resolve')),
    staff_id    text NOT NULL,
    expires_at  timestamptz NOT NULL,
    issued_at   timestamptz NOT NULL,
    used_at     timestamptz
);
