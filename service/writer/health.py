"""The writer's health port: ``/healthz`` (polling Kafka), ``/readyz`` (able to write:
at least one portal not blocked by HubSpot's daily limit or a refused token; the body
lists each portal's state), ``/portals`` (each portal's state, pacing and backlog, what
``callbridge portals list`` shows), ``/metrics``."""

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
            "portals": {
                p["id"]: {"ready": p["ready"], "paused": p["paused"], "reason": p["reason"]}
                for p in writer.portal_report()
            },
            "buffer_held_by_paused_portals": writer.held_by_paused(),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def portals(_: Request) -> Response:
        return JSONResponse(
            {
                "portals": writer.portal_report(),
                "buffer": {
                    "events": writer.buffer.events,
                    "max_events": writer.buffer.max_events,
                    "bytes": writer.buffer.bytes,
                    "max_bytes": writer.buffer.max_bytes,
                    "held_by_paused_portals": writer.held_by_paused(),
                },
            }
        )

    async def metrics_endpoint(_: Request) -> Response:
        writer.healthy()
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/portals", portals),
            Route("/metrics", metrics_endpoint),
        ]
    )
