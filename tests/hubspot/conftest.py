"""Fixtures for the HubSpot client tests: a client on the per-test sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from service.hubspot import HubSpotClient
from tests.fixtures.sandbox import InProcessSandbox, SandboxHandle

__all__ = ["InProcessSandbox"]

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
