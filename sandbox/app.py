"""The sandbox as an ASGI app: HubSpot's routes, each behind auth, limits and faults.

``create_app(SandboxConfig(...))`` returns a Starlette app. Every HubSpot-API request
passes, in order: added latency (fault), Bearer-token check (401
``INVALID_AUTHENTICATION``), the 429 burst fault, the daily budget, the rolling
10-second window (and, for search, the per-second limit), the server-error fault,
then the handler. Every answer is counted in the stats under its operation id.

Test-control API (not HubSpot's), no auth:

- ``POST /_sandbox/reset`` — empty every store, forget stats and rate windows, clear
  faults, restore start-up limits. Custom property definitions (``POST
  /crm/v3/properties/...``) survive unless the body is ``{"properties": true}``.
- ``POST /_sandbox/faults`` — merge fault settings (see :mod:`sandbox.faults`);
  ``GET`` shows them; ``DELETE`` clears them.
- ``POST /_sandbox/config`` ``{"rate_limit": N, "search_rate": N, "daily_limit": N|null}``
  — change limits for the rest of the test (until reset); ``GET`` shows them.
- ``GET /_sandbox/stats`` — ``{"requests": {op: {status: n}}, "records": {type: n},
  "archived": {type: n}, "batch_inputs": {op: [sizes]}, "timeline": [[t, op, status]],
  "now": t}``; ``t`` is monotonic seconds since the sandbox started, the timeline keeps
  the last 20,000 requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox import associations, batch, objects, properties, upsert
from sandbox.catalog import resolve_type
from sandbox.clock import Clock, SystemClock
from sandbox.config import SandboxConfig
from sandbox.context import Handler, Op
from sandbox.control import DATE_VERSIONS, control_endpoints
from sandbox.errors import ApiError, missing_scopes, new_correlation_id
from sandbox.limits import budget_headers, rate_limited
from sandbox.persist import load_file, save_file
from sandbox.portals import Portals
from sandbox.responses import json_response
from sandbox.state import Sandbox

__all__ = ["SandboxConfig", "create_app"]

log = structlog.get_logger()

_FAULT_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}


_READS = ("get", "list", "batchRead", "search")


def _scope_of(operation: str, request: Request) -> str:
    """The granular scope HubSpot names for ``operation`` (properties: ``crm.schemas.*``)."""
    otype = resolve_type(request.path_params.get("objectType", "")) if request.path_params else None
    name = otype.name if otype is not None else "objects"
    access = "read" if operation.startswith(_READS) else "write"
    kind = "schemas" if "Propert" in operation else "objects"
    return f"crm.{kind}.{name}.{access}"


def _version(request: Request) -> str:
    """The API version a request's path names: a date (``2026-03``), else ``v3``/``v4``."""
    version = request.path_params.get("version")
    if version is not None:
        return str(version)
    return "v4" if request.url.path.startswith("/crm/v4/") else "v3"


def _check_version(version: str) -> None:
    if version not in DATE_VERSIONS and not version.startswith("v"):
        raise ApiError(
            404,
            "OBJECT_NOT_FOUND",
            f"API version {version} does not exist; known date versions: "
            + ", ".join(sorted(DATE_VERSIONS)),
        )


async def dispatch(
    sb: Sandbox,
    request: Request,
    op: Op,
    handler: Handler,
    *,
    search: bool,
    auth_error: ApiError | None = None,
) -> Response:
    """Run one HubSpot-API request of portal ``sb`` through auth (``auth_error``: the
    401 the portal lookup found), limits and faults, and count it."""
    clock = sb.clock
    faults = sb.faults
    headers: dict[str, str] = {}
    correlation_id = new_correlation_id()
    applies = faults.applies(op.name)
    op.version = _version(request)
    try:
        if applies and faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        _check_version(op.version)
        if auth_error is not None:
            raise auth_error
        token = _bearer(request)
        if op.name in faults.missing_scopes:
            raise missing_scopes(_scope_of(op.name, request))
        config = sb.config
        if applies and faults.rate_limit_burst > 0:
            faults.rate_limit_burst -= 1
            raise rate_limited(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
                {
                    "X-HubSpot-RateLimit-Max": str(config.rate_limit),
                    "X-HubSpot-RateLimit-Remaining": "0",
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                },
            )
        budget = sb.limits.admit(
            token,
            clock.monotonic(),
            clock.wall_ms(),
            config.rate_limit,
            config.daily_limit,
            config.search_rate if search else None,
        )
        if not search:  # HubSpot sends no rate-limit headers on search answers
            headers = budget_headers(budget)
        if applies and faults.error_rate > 0 and faults.rng.random() < faults.error_rate:
            status = faults.error_status
            raise ApiError(
                status,
                _FAULT_CATEGORIES.get(status, "INTERNAL_ERROR"),
                f"internal error (sandbox fault: HTTP {status})",
            )
        response = await handler(request, op)
        response.headers.update(headers)
        if applies and faults.latency_after_ms > 0:  # done, but the answer comes late
            await asyncio.sleep(faults.latency_after_ms / 1000.0)
    except ApiError as err:
        response = json_response(
            err.body(correlation_id), err.status, {**headers, **(err.headers or {})}
        )
    except ClientDisconnect:
        response = Response(status_code=499)  # nobody is listening; counted, not logged
    except Exception:
        log.exception("sandbox_handler_failed", operation=op.name)
        response = json_response(
            ApiError(500, "INTERNAL_ERROR", "internal error").body(correlation_id), 500
        )
    response.headers["X-HubSpot-Correlation-Id"] = correlation_id
    sb.stats.record(
        op.name, response.status_code, clock.monotonic() - sb.started, op.batch_size, op.version
    )
    return response


def _bearer(request: Request) -> str:
    return request.headers["authorization"].partition(" ")[2].strip()


async def _unknown_type(request: Request, op: Op) -> Response:
    name = request.path_params.get("objectType", "")
    raise ApiError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")


def _typed(portals: Portals, kind: str, handler: Handler, *, search: bool = False) -> Any:
    """An endpoint for ``/crm/v3/objects/{objectType}/...`` (and
    ``/crm/objects/{version}/{objectType}/...``) operations of ``kind``."""

    async def endpoint(request: Request) -> Response:
        sb, auth_error = portals.authenticate(request)
        otype = resolve_type(request.path_params["objectType"])
        if otype is None:
            return await dispatch(
                sb,
                request,
                Op(sb, "unknownObjectType"),
                _unknown_type,
                search=search,
                auth_error=auth_error,
            )
        op = Op(sb, otype.op(kind), sb.store[otype.name])
        return await dispatch(sb, request, op, handler, search=search, auth_error=auth_error)

    return endpoint


def _plain(portals: Portals, name: str, handler: Handler) -> Any:
    """An endpoint for a HubSpot operation that is not routed by object type."""

    async def endpoint(request: Request) -> Response:
        sb, auth_error = portals.authenticate(request)
        return await dispatch(
            sb, request, Op(sb, name), handler, search=False, auth_error=auth_error
        )

    return endpoint


def _object_routes(portals: Portals, base: str) -> list[Route]:
    """The objects API under ``base`` (``/crm/v3/objects/{objectType}`` or its dated twin)."""
    return [
        Route(
            base + "/batch/create",
            _typed(portals, "batchCreate", batch.batch_create),
            methods=["POST"],
        ),
        Route(
            base + "/batch/read", _typed(portals, "batchRead", batch.batch_read), methods=["POST"]
        ),
        Route(
            base + "/batch/update",
            _typed(portals, "batchUpdate", batch.batch_update),
            methods=["POST"],
        ),
        Route(
            base + "/batch/upsert",
            _typed(portals, "batchUpsert", upsert.batch_upsert),
            methods=["POST"],
        ),
        Route(
            base + "/batch/archive",
            _typed(portals, "batchArchive", batch.batch_archive),
            methods=["POST"],
        ),
        Route(
            base + "/search",
            _typed(portals, "search", objects.search_objects, search=True),
            methods=["POST"],
        ),
        Route(
            base + "/gdpr-delete",
            _typed(portals, "gdprDelete", objects.gdpr_delete),
            methods=["POST"],
        ),
        Route(base, _typed(portals, "list", objects.list_objects), methods=["GET"]),
        Route(base, _typed(portals, "create", objects.create_object), methods=["POST"]),
        Route(base + "/{objectId}", _typed(portals, "get", objects.get_object), methods=["GET"]),
        Route(
            base + "/{objectId}",
            _typed(portals, "update", objects.update_object),
            methods=["PATCH"],
        ),
        Route(
            base + "/{objectId}",
            _typed(portals, "archive", objects.archive_object),
            methods=["DELETE"],
        ),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    category = "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR"
    message = "resource not found" if status == 404 else "method not allowed"
    return json_response(ApiError(status, category, message).body(new_correlation_id()), status)


def create_app(config: SandboxConfig, clock: Clock | None = None) -> Starlette:
    """The sandbox app; state is loaded from ``config.data_file`` if it exists and saved
    back to it at shutdown."""
    portals = Portals(config, clock or SystemClock())
    sb = portals.default
    if config.data_file is not None:
        load_file(sb.store, config.data_file)
    ctl = control_endpoints(portals)
    routes = [
        *_object_routes(portals, "/crm/v3/objects/{objectType}"),
        *_object_routes(portals, "/crm/objects/{version}/{objectType}"),
        *properties.routes(portals, _plain, "/crm/v3/properties/{objectType}"),
        *properties.routes(portals, _plain, "/crm/properties/{version}/{objectType}"),
        *associations.routes(
            portals,
            _plain,
            "/crm/v4/associations/{fromObjectType}/{toObjectType}",
            "/crm/v4/objects/{objectType}/{objectId}/associations",
        ),
        *associations.routes(
            portals,
            _plain,
            "/crm/associations/{version}/{fromObjectType}/{toObjectType}",
            "/crm/objects/{version}/{objectType}/{objectId}/associations",
        ),
        Route("/oauth/v1/token", ctl["oauth_token"], methods=["POST"]),
        Route("/oauth/{version}/token", ctl["oauth_token"], methods=["POST"]),
        Route("/_sandbox/reset", ctl["reset"], methods=["POST"]),
        Route("/_sandbox/faults", ctl["set_faults"], methods=["POST"]),
        Route("/_sandbox/faults", ctl["get_faults"], methods=["GET"]),
        Route("/_sandbox/faults", ctl["clear_faults"], methods=["DELETE"]),
        Route("/_sandbox/stats", ctl["stats"], methods=["GET"]),
        Route("/_sandbox/config", ctl["get_config"], methods=["GET"]),
        Route("/_sandbox/config", ctl["set_config"], methods=["POST"]),
        Route("/_sandbox/portals", ctl["portals"], methods=["GET"]),
        Route("/_sandbox/oauth", ctl["get_oauth"], methods=["GET"]),
        Route("/_sandbox/oauth", ctl["set_oauth"], methods=["POST"]),
        Route("/_sandbox/validation-rules", ctl["get_rules"], methods=["GET"]),
        Route("/_sandbox/validation-rules", ctl["set_rules"], methods=["POST"]),
        Route("/_sandbox/validation-rules", ctl["clear_rules"], methods=["DELETE"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if config.data_file is not None:
            save_file(sb.store, config.data_file)
            log.info("sandbox_state_saved", path=str(config.data_file))

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.sandbox = sb  # the default portal
    app.state.portals = portals
    return app
