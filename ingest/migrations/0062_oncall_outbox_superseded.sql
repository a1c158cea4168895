-- A reminder that could not be delivered yet (its channel down) is superseded by the next reminder of the same
-- incident to the same person on the same channel: when the channel is back, one reminder goes out, the latest,
-- not the backlog one after another.
ALTER TABLE oncall_outbox DROP CONSTRAINT IF EXISTS oncall_outbox_status_check;
ALTER TABLE oncall_outbox ADD CONSTRAINT oncall_outbox_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'superseded'));
