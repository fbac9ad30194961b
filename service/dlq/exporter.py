"""The DLQ gauges, computed in one place: ``callbridge dlq exporter`` serves
``callbridge_dlq_depth{category}``, ``callbridge_dlq_oldest_age_seconds`` and their per-portal
``callbridge_dlq_portal_depth{portal}`` / ``_portal_oldest_age_seconds{portal}`` on its own
``/metrics``, refreshing them every ``CALLBRIDGE_DLQ_METRICS_INTERVAL_S`` seconds.

One replica of it runs per deployment (``deploy/k8s/base/dlq-exporter.yaml``): the figures
need a scan of the DLQ, which every writer replica used to repeat every minute.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from service.config import Settings
from service.dlq.kafkaio import DlqError
from service.dlq.metrics import refresh_metrics

log = structlog.get_logger()


class Exporter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.refreshed = False

    async def refresh_forever(self) -> None:
        interval = max(1.0, self.settings.dlq_metrics_interval_s)
        while True:
            try:
                figures = await refresh_metrics(self.settings)
                self.refreshed = True
                log.info("dlq_metrics_refreshed", pending=figures.pending, total=figures.total)
            except DlqError as exc:
                log.warning("dlq_metrics_unavailable", error=str(exc))
            await asyncio.sleep(interval)

    def app(self) -> Starlette:
        async def metrics(_: Request) -> Response:
            return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def readyz(_: Request) -> Response:
            ok = self.refreshed
            return JSONResponse(
                {"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503
            )

        return Starlette(
            routes=[
                Route("/metrics", metrics),
                Route("/healthz", healthz),
                Route("/readyz", readyz),
            ]
        )
