"""Prometheus metrics of the HubSpot client. The names are the dashboards' contract.

Registered once, at import, in the default registry: every client of the process feeds
them, labelled with the ``portal`` it was built for (``HubSpotClient(portal=...)``: the
writer has one client per configured portal, so the label is bounded by the portals file;
a client built without one is ``default``).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

REQUESTS: Final = Counter(
    "callbridge_hubspot_requests_total",
    "HubSpot requests by operation and HTTP status (or 'timeout'/'error' without one)",
    ["operation", "status", "portal"],
)
REQUEST_SECONDS: Final = Histogram(
    "callbridge_hubspot_request_seconds",
    "HubSpot request latency, one attempt",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RATE_LIMITED: Final = Counter(
    "callbridge_hubspot_rate_limited_total",
    "HubSpot 429 answers by policy (TEN_SECONDLY_ROLLING, SECONDLY, DAILY, ...)",
    ["policy", "portal"],
)
BUDGET_REMAINING: Final = Gauge(
    "callbridge_hubspot_budget_remaining",
    "Requests this process may still send to the portal in the current rolling window",
    ["portal"],
)
DAILY_REMAINING: Final = Gauge(
    "callbridge_hubspot_daily_remaining",
    "HubSpot's X-HubSpot-RateLimit-Daily-Remaining for the portal, when it sends it",
    ["portal"],
)
OAUTH_REFRESHES: Final = Counter(
    "callbridge_hubspot_oauth_refreshes_total",
    "OAuth access-token refreshes by portal and result (ok, refused, unavailable)",
    ["portal", "result"],
)
