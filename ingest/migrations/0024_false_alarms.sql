-- Staff may resolve an alert as a false alarm; the false-alarm rate KPI counts them.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS false_alarm boolean NOT NULL DEFAULT false;
