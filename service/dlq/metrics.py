"""The DLQ's figures as Prometheus gauges, for alerting on dead letters nobody replayed.

The writer refreshes them periodically (every minute or so is plenty; each refresh reads the
whole DLQ, which is small)::

    from service.dlq.metrics import refresh_metrics
    await refresh_metrics(settings)          # sets the gauges, returns the Stats

and serves them on its ``/metrics`` with everything else in the default registry. Both
gauges count *pending* dead letters: the ones no replay has moved yet.

- ``callbridge_dlq_depth{category}``: pending dead letters by ``dlq.error.category``
  (a category whose dead letters were all replayed reads 0, it does not vanish).
- ``callbridge_dlq_oldest_age_seconds``: how long the oldest pending dead letter has
  waited since ``dlq.failed_at`` (0 when none).
- ``callbridge_dlq_portal_depth{portal}`` and ``callbridge_dlq_portal_oldest_age_seconds
  {portal}``: the same per ``dlq.portal`` (``default`` in single-portal deployments), so an
  alert names the customer. The label is bounded: at most :data:`MAX_PORTAL_LABELS`
  distinct portals (ids as the portals file allows them); dead letters of any further or
  malformed portal id count under ``other``.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Gauge

from service.config import Settings
from service.dlq.checkpoint import DEFAULT_GROUP
from service.dlq.kafkaio import DEFAULT_TIMEOUT_S
from service.dlq.ops import Count, Stats, stats
from service.portals import PORTAL_ID

DLQ_DEPTH = Gauge(
    "callbridge_dlq_depth",
    "Dead letters not yet replayed or parked, by error category",
    ["category"],
)
DLQ_OLDEST_AGE = Gauge(
    "callbridge_dlq_oldest_age_seconds",
    "Seconds since the oldest dead letter not yet replayed or parked failed (0 when none)",
)

DLQ_PORTAL_DEPTH = Gauge(
    "callbridge_dlq_portal_depth",
    "Dead letters not yet replayed or parked, by portal (dlq.portal)",
    ["portal"],
)
DLQ_PORTAL_OLDEST_AGE = Gauge(
    "callbridge_dlq_portal_oldest_age_seconds",
    "Seconds since the portal's oldest dead letter not yet replayed or parked failed",
    ["portal"],
)

#: distinct ``portal`` label values the gauges take at most (beyond: ``other``)
MAX_PORTAL_LABELS = 200
OTHER_PORTAL = "other"

_seen: set[str] = set()
_seen_portals: set[str] = set()  # the portal ids given a label of their own
_published_portals: set[str] = set()  # every label value set so far (with ``other``)


def portal_label(portal: str, known: set[str], limit: int = MAX_PORTAL_LABELS) -> str:
    """The label value for ``portal``: itself if it is a valid id already labelled or
    while fewer than ``limit`` are; else ``other``. Adds new labels to ``known``."""
    if portal in known:
        return portal
    if portal != OTHER_PORTAL and PORTAL_ID.match(portal) and len(known) < limit:
        known.add(portal)
        return portal
    return OTHER_PORTAL


def publish(figures: Stats) -> None:
    """Set the gauges from ``figures``; categories and portals seen before and now empty
    read 0."""
    current = {category: count.pending for category, count in figures.categories.items()}
    for category in _seen - current.keys():
        DLQ_DEPTH.labels(category).set(0)
    for category, pending in current.items():
        DLQ_DEPTH.labels(category).set(pending)
    _seen.update(current)
    DLQ_OLDEST_AGE.set(figures.oldest_pending_age_s)

    depth: dict[str, Count] = {}
    age: dict[str, float] = {}
    for portal, count in figures.portals.items():
        label = portal_label(portal, _seen_portals)
        depth.setdefault(label, Count()).pending += count.pending
        age[label] = max(age.get(label, 0.0), figures.oldest_pending_age_of(portal))
    for label in _published_portals - depth.keys():
        DLQ_PORTAL_DEPTH.labels(label).set(0)
        DLQ_PORTAL_OLDEST_AGE.labels(label).set(0)
    for label, count in depth.items():
        DLQ_PORTAL_DEPTH.labels(label).set(count.pending)
        DLQ_PORTAL_OLDEST_AGE.labels(label).set(age[label])
    _published_portals.update(depth)


async def refresh_metrics(
    settings: Settings,
    *,
    now: datetime | None = None,
    group: str = DEFAULT_GROUP,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Stats:
    """Read the DLQ (``ops.stats``), publish the gauges, return the figures.
    Raises ``DlqError`` like ``stats``; the gauges keep their last values then."""
    figures = await stats(settings, now=now, group=group, timeout_s=timeout_s)
    publish(figures)
    return figures
