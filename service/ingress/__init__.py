"""The ingress: provider webhooks in, normalized events durably in Kafka, then 202.

- ``admission``: the pure policy (accept-or-answer), no I/O;
- ``app``: the Starlette shell (body reading, produce, answer), the metrics app;
- ``kafkalink``: the producer that (re)connects in the background;
- ``portals``: one admission policy per portal (``/webhooks/{provider}/{portal}``), the
  start-up checks of every portal;
- ``replay``: accepted replay ids (keyed per portal), remembered after Kafka's ack;
- ``proxy``: the public URL (``CALLBRIDGE_PUBLIC_URL`` or trusted forwarded headers);
- ``openapi``: ``/openapi.json`` from the typed generic event.
"""

from __future__ import annotations

from service.ingress.app import (
    create_app,
    create_metrics_app,
    error,
    normalize_options,
    startup_problem,
)
from service.ingress.kafkalink import KafkaLink
from service.ingress.proxy import ConfigError
from service.ingress.replay import ReplayGuard

__all__ = [
    "ConfigError",
    "KafkaLink",
    "ReplayGuard",
    "create_app",
    "create_metrics_app",
    "error",
    "normalize_options",
    "startup_problem",
]
