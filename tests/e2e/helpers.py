"""Helpers for end-to-end tests: signed generic events and reading calls from the sandbox."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from handlers.generic import sign
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import SECRETS


def generic_event(call_id: str, event_type: str = "call.ended", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"{call_id}:{event_type}",
        "call_id": call_id,
        "type": event_type,
        "occurred_at": "2026-03-03T15:04:05Z",
        "direction": "inbound",
        "from": "+14155550142",
        "to": "+18005550100",
    }
    event.update(fields)
    return event


def signed(body: bytes, secret: str = SECRETS["generic"], ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "content-type": "application/json",
        "x-callbridge-timestamp": stamp,
        "x-callbridge-signature": sign(secret, stamp, body),
    }


async def post_generic(
    client: httpx.AsyncClient, url: str, payload: object, **kw: Any
) -> httpx.Response:
    body = orjson.dumps(payload)
    return await client.post(url + "/webhooks/generic", content=body, headers=signed(body, **kw))


def all_calls(sandbox: SandboxHandle, properties: list[str]) -> list[dict[str, Any]]:
    """Every (non-archived) call in the sandbox, paging through the list endpoint."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, "properties": ",".join(properties)}
        if after:
            params["after"] = after
        response = sandbox.client.get(
            "/crm/v3/objects/calls", params=params, headers=sandbox.headers
        )
        response.raise_for_status()
        page = response.json()
        out.extend(page["results"])
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return out
