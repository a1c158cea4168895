"""Alerts: the staff-facing lifecycle of the detectors' incidents (tier, status, ack, assignment, comments)."""
