"""Prometheus metrics of on-call (exported by the API's /metrics with the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DECISIONS = Counter(
    "steward_oncall_decisions_total",
    "Escalation steps decided, by kind (step, reminder, ack_renotify) and outcome (fired, cancelled, deferred)",
    ["kind", "outcome"],
)
DELIVERIES = Counter(
    "steward_oncall_delivery_attempts_total",
    "Delivery attempts by channel and outcome (delivered, retry, failed)",
    ["channel", "outcome"],
)
SEND_SECONDS = Histogram(
    "steward_oncall_send_seconds",
    "Time of one delivery attempt",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
