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
WRITER_PRODUCER_RESETS = Counter(
    "callbridge_writer_producer_resets_total",
    "Times the writer replaced its Kafka producer after a non-retriable produce error",
)
WRITER_DECISIONS = Counter(
    "callbridge_writer_decisions_total",
    "Decisions of the writer's core, by kind (create, update, lookup, associate)",
    ["decision"],
)

# --- many portals: the writer per portal (issue 16); ``portal`` is a configured portal id --
WRITER_PORTAL_PAUSED = Gauge(
    "callbridge_writer_portal_paused",
    "1 while the writer holds back a portal's calls (429, daily limit, refused token, failed "
    "OAuth refresh): its calls stay buffered and uncommitted; other portals keep writing",
    ["portal"],
)
WRITER_PORTAL_PAUSES = Counter(
    "callbridge_writer_portal_pauses_total",
    "Times a portal's writing was paused, by kind (transient, daily, auth)",
    ["portal", "kind"],
)
WRITER_PORTAL_BUFFERED = Gauge(
    "callbridge_writer_portal_buffered",
    "Events of a portal consumed and not settled yet (buffered or in a flush)",
    ["portal"],
)
WRITER_PORTAL_CALLS = Counter(
    "callbridge_writer_portal_calls_total",
    "Calls of a portal whose events were settled, by outcome (written, dead_lettered)",
    ["portal", "outcome"],
)
WRITER_PORTAL_RECONCILE_MODE = Gauge(
    "callbridge_writer_portal_reconcile_mode",
    "A portal's reconcile mode: 1 for the mode in use (key, search)",
    ["portal", "mode"],
)
WRITER_PORTAL_SHED = Counter(
    "callbridge_writer_portal_shed_events_total",
    "Events of a portal shed while the buffer was full and the portal held more than its "
    "share: evicted from the buffer or read and not buffered, left uncommitted and read "
    "again when the portal stops shedding",
    ["portal"],
)
