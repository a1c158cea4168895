"""On-call alerting: schedules, escalation policies and delivery to staff (see README.md)."""
