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
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Gauge

from service.config import Settings
from service.dlq.checkpoint import DEFAULT_GROUP
from service.dlq.kafkaio import DEFAULT_TIMEOUT_S
from service.dlq.ops import Stats, stats

DLQ_DEPTH = Gauge(
    "callbridge_dlq_depth",
    "Dead letters not yet replayed or parked, by error category",
    ["category"],
)
DLQ_OLDEST_AGE = Gauge(
    "callbridge_dlq_oldest_age_seconds",
    "Seconds since the oldest dead letter not yet replayed or parked failed (0 when none)",
)

_seen: set[str] = set()


def publish(figures: Stats) -> None:
    """Set the gauges from ``figures``; categories seen before and now empty read 0."""
    current = {category: count.pending for category, count in figures.categories.items()}
    for category in _seen - current.keys():
        DLQ_DEPTH.labels(category).set(0)
    for category, pending in current.items():
        DLQ_DEPTH.labels(category).set(pending)
    _seen.update(current)
    DLQ_OLDEST_AGE.set(figures.oldest_pending_age_s)


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
