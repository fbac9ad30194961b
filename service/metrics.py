"""Prometheus metrics of the ingress and the writer (names listed in deploy/METRICS.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INGRESS_REQUESTS = Counter(
    "callbridge_ingress_requests_total",
    "Webhook requests by provider, status and portal",
    ["provider", "status", "portal"],
)
INGRESS_EVENTS = Counter(
    "callbridge_ingress_events_total",
    "Normalized events produced to Kafka",
    ["provider", "portal"],
)
PRODUCE_SECONDS = Histogram(
    "callbridge_kafka_produce_seconds",
    "Time from send to broker acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

WRITER_EVENTS = Counter("callbridge_writer_events_total", "Events consumed by the writer")
WRITER_COALESCED = Counter(
    "callbridge_writer_events_coalesced_total", "Events merged into another event of the same call"
)
WRITER_DUPLICATES = Counter(
    "callbridge_writer_duplicates_total", "Events dropped as duplicates (same event_id)"
)
BATCH_SIZE = Histogram(
    "callbridge_writer_batch_size",
    "Inputs per HubSpot batch request",
    ["operation"],
    buckets=(1, 5, 10, 25, 50, 75, 90, 95, 100),
)
DLQ_RECORDS = Counter("callbridge_dlq_records_total", "Records dead-lettered", ["category"])
CONSUMER_LAG = Gauge(
    "callbridge_writer_consumer_lag",
    "Records of calls.events not yet committed by the writer group, per partition: "
    "the log-end offset minus the group's committed offset",
    ["partition"],
)
LAST_POLL_AGE = Gauge(
    "callbridge_writer_last_poll_age_seconds",
    "Seconds since the writer last polled Kafka successfully",
)
WRITER_PAUSED = Gauge(
    "callbridge_writer_paused", "1 while consumption is paused (backpressure/limits)"
)

# --- the writer's core and fencing (issue 11) -----------------------------------------------
IDS_UNDECODABLE = Counter(
    "callbridge_writer_ids_undecodable_total",
    "calls.ids values that are not call records (skipped while loading)",
)
IDS_LOAD_FAILURES = Counter(
    "callbridge_writer_ids_load_failures_total",
    "Failed loads of calls.ids partitions on assignment (retried with back-off)",
)
WRITER_AUTH_FAILED = Gauge(
    "callbridge_writer_hubspot_auth_failed",
    "1 while HubSpot refuses the writer's token or its scopes (401/403): writing is paused",
)
RECONCILE_MODE = Gauge(
    "callbridge_writer_reconcile_mode",
    "How creates of unknown outcome are resolved: 1 for the mode in use "
    "(key: read by the unique callbridge_call_key; search: hs_call_external_id search)",
    ["mode"],
)
WRITER_FENCED = Counter(
    "callbridge_writer_fenced_total",
    "Times the writer found it no longer owned partitions before a write (writes skipped)",
)
WRITER_DECISIONS = Counter(
    "callbridge_writer_decisions_total",
    "Decisions of the writer's core, by kind (create, update, lookup, associate)",
    ["decision"],
)
