"""Prometheus metrics of contact matching (``callbridge_contact_*``), each labelled with the
portal (a configured portal id: bounded by the portals file)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MATCHES = Counter(
    "callbridge_contact_matches_total",
    "Numbers looked up, by outcome: matched, shared_unassociated (policy none), unknown, "
    "created (unknown caller, policy create)",
    ["outcome", "portal"],
)
SEARCHES = Counter(
    "callbridge_contact_searches_total",
    "Contact search requests, by reason: fallback (index not warm), refresh, reconcile",
    ["reason", "portal"],
)
LATE_MATCHES = Counter(
    "callbridge_contact_late_associations_total",
    "Call→contact associations made after the call was written",
    ["portal"],
)
INDEX_WARM = Gauge(
    "callbridge_contact_index_warm", "1 once the portal's phone index is built", ["portal"]
)
INDEX_ROWS = Gauge(
    "callbridge_contact_index_numbers", "(number, contact) rows in the portal's index", ["portal"]
)
WARM_WAITS = Counter(
    "callbridge_contact_warm_waits_total",
    "Lookups that waited for the first index build (CALLBRIDGE_CONTACT_INDEX_WARM_WAIT_S) "
    "instead of searching",
    ["portal"],
)
