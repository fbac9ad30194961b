"""The writer's health port: ``/healthz`` (polling Kafka), ``/readyz`` (able to write:
not blocked by HubSpot's daily limit or a refused token), ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from service.writer.shell import Writer


def health_app(writer: Writer) -> Starlette:
    async def healthz(_: Request) -> Response:
        ok = writer.healthy()
        age = writer.clock.monotonic() - writer.last_poll
        return JSONResponse(
            {"status": "ok" if ok else "stuck", "last_poll_age_s": round(age, 3)},
            status_code=200 if ok else 503,
        )

    async def readyz(_: Request) -> Response:
        ok = writer.ready()
        body = {
            "status": "ready" if ok else "not ready",
            "daily_limited": writer.daily_limited,
            "paused": writer.pause_kind,
            "reconcile_mode": writer.mode,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_endpoint(_: Request) -> Response:
        writer.healthy()
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ]
    )
