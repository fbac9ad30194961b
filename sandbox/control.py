"""The ``/_sandbox/`` test-control API (not HubSpot's): reset, faults, limits, stats,
portals, OAuth and validation rules; plus HubSpot's OAuth token endpoint.

Each ``/_sandbox/*`` call acts on one portal: the one its ``Authorization: Bearer`` token
belongs to (a portal token, or an OAuth access token issued for it, live or expired), or
the default portal (the first ``--token``) without that header; an unknown token is a
401. ``GET /_sandbox/portals`` lists them all, ``POST /_sandbox/reset {"all": true}``
resets every portal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.errors import ApiError, new_correlation_id, validation_error
from sandbox.oauth import OAuthError
from sandbox.portals import Portals
from sandbox.responses import json_response
from sandbox.rules import parse_rules


async def _json(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from None


Endpoint = Callable[[Request], Awaitable[Response]]

#: the date-based API versions the sandbox serves (``/crm/objects/{version}/...``)
DATE_VERSIONS = frozenset({"2025-09", "2026-03", "2026-09"})


def control_endpoints(portals: Portals) -> dict[str, Endpoint]:
    """Endpoint functions by name, bound to ``portals``."""

    def guarded(fn: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except ApiError as err:
                return json_response(err.body(new_correlation_id()), err.status)

        return endpoint

    async def reset(request: Request) -> Response:
        sb = portals.for_control(request)
        body = await _json(request)
        properties = isinstance(body, dict) and bool(body.get("properties"))
        every = isinstance(body, dict) and body.get("all") is True
        for portal in portals.all if every else [sb]:
            portal.reset(properties=properties)
        return json_response({"status": "reset"})

    async def set_faults(request: Request) -> Response:
        sb = portals.for_control(request)
        sb.faults.update(await _json(request))
        return json_response(sb.faults.to_json())

    async def get_faults(request: Request) -> Response:
        return json_response(portals.for_control(request).faults.to_json())

    async def clear_faults(request: Request) -> Response:
        sb = portals.for_control(request)
        sb.faults.update(
            {
                "error_rate": 0.0,
                "error_status": 500,
                "rate_limit_burst": 0,
                "latency_ms": 0.0,
                "latency_after_ms": 0.0,
                "index_delay_ms": 0.0,
                "reject": None,
                "reject_whole_batch": False,
                "operations": None,
                "missing_scopes": [],
            }
        )
        return json_response(sb.faults.to_json())

    async def stats(request: Request) -> Response:
        return json_response(portals.for_control(request).stats_json())

    async def get_config(request: Request) -> Response:
        return json_response(portals.for_control(request).config_json())

    async def set_config(request: Request) -> Response:
        sb = portals.for_control(request)
        sb.configure(await _json(request))
        return json_response(sb.config_json())

    async def list_portals(request: Request) -> Response:
        return json_response(
            {
                "portals": [
                    {
                        "portal_id": sb.portal_id,
                        "default": sb is portals.default,
                        "tokens": len(sb.config.tokens),
                        "records": sb.stats_json()["records"],
                        "rate_limit": sb.config.rate_limit,
                    }
                    for sb in portals.all
                ]
            }
        )

    async def get_oauth(request: Request) -> Response:
        return json_response(portals.oauth.to_json())

    async def set_oauth(request: Request) -> Response:
        return json_response(portals.oauth.configure(await _json(request)))

    async def get_rules(request: Request) -> Response:
        sb = portals.for_control(request)
        return json_response({"rules": [r.to_json() for r in sb.rules]})

    async def set_rules(request: Request) -> Response:
        sb = portals.for_control(request)
        sb.rules = parse_rules(await _json(request))
        return json_response({"rules": [r.to_json() for r in sb.rules]})

    async def clear_rules(request: Request) -> Response:
        sb = portals.for_control(request)
        sb.rules = []
        return json_response({"rules": []})

    async def oauth_token(request: Request) -> Response:
        """HubSpot's token endpoint, counted as ``oauthToken`` in the portal's stats."""
        version = str(request.path_params.get("version", "v1"))
        correlation_id = new_correlation_id()
        sb = portals.default
        if version != "v1" and version not in DATE_VERSIONS:
            response = json_response(
                ApiError(404, "OBJECT_NOT_FOUND", "resource not found").body(correlation_id), 404
            )
        else:
            if portals.oauth.latency_ms > 0:
                await asyncio.sleep(portals.oauth.latency_ms / 1000.0)
            try:
                portal, body = portals.oauth.grant(await request.body())
                sb = portal or sb
                response = json_response(body)
            except OAuthError as err:
                response = json_response(err.body(correlation_id), err.status)
        response.headers["X-HubSpot-Correlation-Id"] = correlation_id
        sb.stats.record(
            "oauthToken",
            response.status_code,
            sb.clock.monotonic() - sb.started,
            None,
            version,
        )
        return response

    return {
        name: guarded(fn)
        for name, fn in {
            "reset": reset,
            "set_faults": set_faults,
            "get_faults": get_faults,
            "clear_faults": clear_faults,
            "stats": stats,
            "get_config": get_config,
            "set_config": set_config,
            "portals": list_portals,
            "get_oauth": get_oauth,
            "set_oauth": set_oauth,
            "get_rules": get_rules,
            "set_rules": set_rules,
            "clear_rules": clear_rules,
            "oauth_token": oauth_token,
        }.items()
    }
