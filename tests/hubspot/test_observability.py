"""Request logs, metrics and configuration of the client, against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from pydantic import SecretStr
from structlog.testing import capture_logs

from service.config import Settings
from service.hubspot import HubSpotAuthError, HubSpotClient, HubSpotNotFound, session
from service.wiring import hubspot_client
from tests.fixtures.sandbox import SandboxHandle
from tests.hubspot.conftest import call_props

SECRET = "pat-na1-7d1c0ffee-secret-token-value"


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every log entry of the client, whatever structlog caching an earlier test set up."""
    with capture_logs() as entries:
        monkeypatch.setattr(session, "log", structlog.get_logger())
        yield entries


async def test_token_never_appears_in_logs_errors_or_reprs(
    sandbox: SandboxHandle, logs: list[dict[str, Any]]
) -> None:
    """Successes, retries, 404s and 401s log operation/status/latency/correlation id, never the token."""
    sandbox.config(tokens=[sandbox.token, SECRET])
    sandbox.faults(error_rate=0.5, error_status=503, seed=3, operations=["listCalls"])
    raised: list[BaseException] = []
    async with HubSpotClient(sandbox.url, SECRET, rate=10_000, deadline_s=20) as hs:
        created = await hs.create_call(call_props("logged"))
        for _ in range(4):
            await hs.list_calls()
        with pytest.raises(HubSpotNotFound) as missing:
            await hs.get_call_by_id("404404")
        raised.append(missing.value)
        reprs = [repr(hs), repr(hs.session._http.headers)]
    sandbox.config(tokens=[sandbox.token])  # the secret is no longer accepted
    async with HubSpotClient(sandbox.url, SECRET) as hs:
        with pytest.raises(HubSpotAuthError) as denied:
            await hs.get_call_by_id(created.id)
        raised.append(denied.value)

    requests = [e for e in logs if e["event"] == "hubspot_request"]
    assert {e["status"] for e in requests} >= {201, 200, 503, 404, 401}
    for entry in requests:
        assert entry["operation"] and entry["latency_ms"] >= 0 and entry["correlation_id"]
    assert any(e["event"] == "hubspot_retry" for e in logs)
    everything = [*map(repr, logs), *map(str, raised), *map(repr, raised), *reprs]
    for text in everything:
        assert SECRET not in text


async def test_metrics_count_requests_latency_and_budget(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """Requests by operation/status, the latency histogram and the budget gauge are fed."""

    def sample(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    ok = {"operation": "listCalls", "status": "200", "portal": "default"}
    before = sample("callbridge_hubspot_requests_total", ok)
    seconds_before = sample("callbridge_hubspot_request_seconds_count", {"operation": "listCalls"})
    for _ in range(3):
        await hs.list_calls()
    with pytest.raises(HubSpotNotFound):
        await hs.get_call_by_id("1")
    assert sample("callbridge_hubspot_requests_total", ok) == before + 3
    assert (
        sample(
            "callbridge_hubspot_requests_total",
            {"operation": "getCallById", "status": "404", "portal": "default"},
        )
        >= 1
    )
    assert (
        sample("callbridge_hubspot_request_seconds_count", {"operation": "listCalls"})
        == seconds_before + 3
    )
    assert (
        REGISTRY.get_sample_value("callbridge_hubspot_budget_remaining", {"portal": "default"})
        is not None
    )


async def test_wiring_builds_the_client_from_settings(sandbox: SandboxHandle) -> None:
    """service.wiring.hubspot_client uses the CALLBRIDGE_HUBSPOT_* settings."""
    settings = Settings(
        hubspot_url=sandbox.url,
        hubspot_token=SecretStr(sandbox.token),
        hubspot_rate=42,
        hubspot_search_rate=3,
    )
    async with hubspot_client(settings) as hs:
        assert hs.session.budget.configured_limit == 42
        assert hs.session.search_budget.configured_limit == 3
        page = await hs.list_calls()
        assert page.results == []


async def test_each_portal_s_client_feeds_its_own_series(sandbox: SandboxHandle) -> None:
    """Clients built for two portals (as ``service.wiring.portal_clients`` builds them) count
    their requests and budgets under their own ``portal`` label, not each other's."""

    def requests(portal: str) -> float:
        labels = {"operation": "listCalls", "status": "200", "portal": portal}
        return REGISTRY.get_sample_value("callbridge_hubspot_requests_total", labels) or 0.0

    before = {p: requests(p) for p in ("acme", "bravo")}
    async with (
        HubSpotClient(sandbox.url, sandbox.token, rate=50, portal="acme") as acme,
        HubSpotClient(sandbox.url, sandbox.token, rate=7, portal="bravo") as bravo,
    ):
        for _ in range(3):
            await acme.list_calls()
        await bravo.list_calls()
    assert requests("acme") == before["acme"] + 3
    assert requests("bravo") == before["bravo"] + 1
    budget = "callbridge_hubspot_budget_remaining"
    # each gauge is its own client's budget (bravo's also books acme's requests, which the
    # sandbox's rate headers show on the shared token): acme's of 50, bravo's of 7
    acme_left = REGISTRY.get_sample_value(budget, {"portal": "acme"})
    bravo_left = REGISTRY.get_sample_value(budget, {"portal": "bravo"})
    assert acme_left is not None and 7 < acme_left <= 47
    assert bravo_left is not None and bravo_left <= 6
