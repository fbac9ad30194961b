"""Fixtures for contact matching: a HubSpot client on the per-test sandbox, settings with
a per-test index directory, bulk contact creation and a fake wall clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.contacts import IndexedMatcher, make_contact_matcher
from service.hubspot import HubSpotClient
from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import Api

CONTACTS = "/crm/v3/objects/contacts"


class Wall:
    """A settable wall clock (epoch seconds), starting now."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> Wall:
    import time

    return Wall(time.time())


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[Api]:
    """An authenticated HubSpot-API client (sync) for the reset sandbox."""
    client = Api(sandbox)
    yield client
    client.http.close()


@pytest.fixture
async def hs(sandbox: SandboxHandle) -> AsyncIterator[HubSpotClient]:
    """A client on the sandbox with budgets high enough never to slow a functional test."""
    async with HubSpotClient(
        sandbox.url, sandbox.token, rate=100_000, search_rate=10_000, deadline_s=20.0
    ) as client:
        yield client


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(contact_index_dir=tmp_path / "index", default_region="US")


@pytest.fixture
async def matchers(
    hs: HubSpotClient, settings: Settings, wall: Wall
) -> AsyncIterator[Callable[..., IndexedMatcher]]:
    """Build matchers (``make(**settings overrides)``); all are closed at the end."""
    made: list[IndexedMatcher] = []

    def make(client: HubSpotClient | None = None, **overrides: Any) -> IndexedMatcher:
        m = make_contact_matcher(client or hs, settings.model_copy(update=overrides), wall)
        made.append(m)
        return m

    yield make
    for m in made:
        await m.aclose()


def create_contacts(sandbox: SandboxHandle, props: list[dict[str, str]]) -> list[str]:
    """Create contacts in batches of 100 straight through the sandbox API; their ids."""
    ids: list[str] = []
    for start in range(0, len(props), 100):
        chunk = props[start : start + 100]
        inputs = [{"properties": p, "objectWriteTraceId": str(i)} for i, p in enumerate(chunk)]
        r = sandbox.client.post(
            f"{CONTACTS}/batch/create", json={"inputs": inputs}, headers=sandbox.headers
        )
        assert r.status_code == 201, r.text
        by_trace = {int(x["objectWriteTraceId"]): x["id"] for x in r.json()["results"]}
        ids.extend(by_trace[i] for i in range(len(chunk)))
    return ids


def searches(sandbox: SandboxHandle) -> int:
    """Contact search requests the sandbox has answered since the last reset."""
    return sum(sandbox.stats()["requests"].get("searchContacts", {}).values())


def requests_of(sandbox: SandboxHandle, operation: str) -> int:
    return sum(sandbox.stats()["requests"].get(operation, {}).values())
