"""Prometheus metrics of the gateway (exported by the API's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("steward_messages_received_total", "MQTT messages taken off the broker")
STORED = Counter("steward_events_stored_total", "Events committed to the database (new rows)")
DUPLICATES = Counter("steward_events_duplicate_total", "Valid messages whose (device_id, id, ts) was already stored")
REJECTED = Counter("steward_messages_rejected_total", "Messages refused and dead-lettered", ["reason"])
BATCH_SIZE = Histogram(
    "steward_batch_size", "Messages per committed batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
)
COMMIT_SECONDS = Histogram(
    "steward_batch_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DB_ERRORS = Counter("steward_database_errors_total", "Failed batch writes (retried; nothing is acknowledged)")
WRITE_FAILURES = Counter(
    "steward_batch_write_failures_total",
    "Batch writes that failed for another reason than the database being away (retried)",
)
BROKER_CONNECTED = Gauge("steward_broker_connected", "1 while the gateway is connected to the broker and subscribed")
PENDING = Gauge("steward_messages_pending", "Messages received but not yet committed and acknowledged")
INGEST_LAG = Gauge("steward_ingest_lag_seconds", "Receive time to commit time of the last batch's oldest message")
