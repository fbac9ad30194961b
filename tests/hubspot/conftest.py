"""Fixtures for the HubSpot client tests: a client on the per-test sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from service.hubspot import HubSpotClient
from tests.fixtures.sandbox import TOKEN, SandboxHandle

TS = "2026-03-03T15:04:05.000Z"


def call_props(title: str, **extra: str) -> dict[str, str]:
    """Valid call properties (``hs_timestamp`` is required)."""
    return {"hs_timestamp": TS, "hs_call_title": title, **extra}


@pytest.fixture
async def hs(sandbox: SandboxHandle) -> AsyncIterator[HubSpotClient]:
    """A client on the sandbox with budgets high enough never to slow a functional test."""
    async with HubSpotClient(
        sandbox.url, sandbox.token, rate=100_000, search_rate=10_000, deadline_s=20.0
    ) as client:
        yield client


@pytest.fixture
def make_client(sandbox: SandboxHandle) -> Callable[..., HubSpotClient]:
    """Build a client on the sandbox with test-specific settings (closed by the test)."""

    def make(**kwargs: Any) -> HubSpotClient:
        settings: dict[str, Any] = {"rate": 100_000, "search_rate": 10_000, "deadline_s": 20.0}
        settings.update(kwargs)
        return HubSpotClient(sandbox.url, sandbox.token, **settings)

    return make


class InProcessSandbox:
    """A sandbox app of the test's own, reached in-process through ``httpx.ASGITransport``
    (real HTTP semantics, no socket): ``.client(**kw)`` a HubSpotClient on it, ``.control``
    an ``httpx.AsyncClient`` for the ``/_sandbox`` API and raw HubSpot requests."""

    URL = "http://sandbox.test"

    def __init__(self) -> None:
        self.app = create_app(SandboxConfig(rate_limit=100_000, search_rate=100_000))
        self.transport = httpx.ASGITransport(app=self.app)
        self.control = httpx.AsyncClient(
            transport=self.transport, base_url=self.URL, headers=self.headers
        )

    headers = {"Authorization": f"Bearer {TOKEN}"}

    def client(self, token: str = TOKEN, **kwargs: Any) -> HubSpotClient:
        settings: dict[str, Any] = {"rate": 100_000, "search_rate": 10_000, "deadline_s": 20.0}
        settings.update(kwargs)
        return HubSpotClient(self.URL, token, transport=self.transport, **settings)

    async def faults(self, **settings: Any) -> None:
        answer = await self.control.post("/_sandbox/faults", json=settings)
        assert answer.status_code == 200, answer.text

    async def stats(self) -> dict[str, Any]:
        return (await self.control.get("/_sandbox/stats")).json()  # type: ignore[no-any-return]


@pytest.fixture
async def inproc() -> AsyncIterator[InProcessSandbox]:
    """A fresh in-process sandbox (its own state: nothing shared with other tests)."""
    sb = InProcessSandbox()
    yield sb
    await sb.control.aclose()
