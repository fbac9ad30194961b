"""Helpers shared by the sandbox tests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle

TS = "2026-03-03T15:04:05.000Z"


class Api:
    """A thin authenticated client for the sandbox's HubSpot API."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=sandbox.url, headers=sandbox.headers, timeout=30.0)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.patch(path, json=body, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    def create_call(self, **props: Any) -> dict[str, Any]:
        props.setdefault("hs_timestamp", TS)
        r = self.post("/crm/v3/objects/calls", {"properties": props})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def create_contact(self, **props: Any) -> dict[str, Any]:
        r = self.post("/crm/v3/objects/contacts", {"properties": props})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def batch_create(self, inputs: list[dict[str, Any]]) -> httpx.Response:
        return self.post("/crm/v3/objects/calls/batch/create", {"inputs": inputs})

    def define_unique(self, name: str = "hs_call_external_id") -> None:
        r = self.post(
            "/crm/v3/properties/calls",
            {
                "name": name,
                "label": name,
                "type": "string",
                "fieldType": "text",
                "groupName": "callinfo",
                "hasUniqueValue": True,
            },
        )
        assert r.status_code in (201, 409), r.text


@pytest.fixture
def api(sandbox: SandboxHandle) -> Any:
    """An authenticated HubSpot-API client for a freshly reset sandbox."""
    client = Api(sandbox)
    yield client
    client.http.close()


def call_input(n: int, **extra: Any) -> dict[str, Any]:
    """A batch-create input with a title numbered ``n``."""
    props = {"hs_timestamp": TS, "hs_call_title": f"call {n}", **extra}
    return {"properties": props}
