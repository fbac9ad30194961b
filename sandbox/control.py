"""The ``/_sandbox/`` test-control API (not HubSpot's): reset, faults, limits, stats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.errors import ApiError, new_correlation_id, validation_error
from sandbox.responses import json_response
from sandbox.state import Sandbox


async def _json(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from None


Endpoint = Callable[[Request], Awaitable[Response]]


def control_endpoints(sb: Sandbox) -> dict[str, Endpoint]:
    """Endpoint functions by name, bound to ``sb``."""

    def guarded(fn: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except ApiError as err:
                return json_response(err.body(new_correlation_id()), err.status)

        return endpoint

    async def reset(request: Request) -> Response:
        body = await _json(request)
        properties = isinstance(body, dict) and bool(body.get("properties"))
        sb.reset(properties=properties)
        return json_response({"status": "reset"})

    async def set_faults(request: Request) -> Response:
        sb.faults.update(await _json(request))
        return json_response(sb.faults.to_json())

    async def get_faults(request: Request) -> Response:
        return json_response(sb.faults.to_json())

    async def clear_faults(request: Request) -> Response:
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
        return json_response(sb.stats_json())

    async def get_config(request: Request) -> Response:
        return json_response(sb.config_json())

    async def set_config(request: Request) -> Response:
        sb.configure(await _json(request))
        return json_response(sb.config_json())

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
        }.items()
    }
