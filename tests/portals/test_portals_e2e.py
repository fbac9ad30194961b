"""Three portals end to end against a real sandbox process (``python -m sandbox --token
tok-a --token tok-b --token tok-c --oauth-app …``), each portal's client built from a
portals file through service.wiring: acme (private-app token, v3), bravo (token,
2026-03, a small rate) and charlie (OAuth, 2026-03, access tokens of 3 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.hubspot import CallCreateInput, HubSpotClient
from service.hubspot.oauth import OAuthTokenProvider
from service.wiring import portal_clients
from tests.fixtures.portals import BRAVO_RATE, PORTALS, TOKENS, portals_server
from tests.fixtures.sandbox import SandboxServer, portal_stats, sandbox_request

TS = "2026-03-03T15:04:05.000Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    with portals_server(TOKENS, tmp_path_factory.mktemp("portals-sandbox")) as s:
        yield s


async def stats(server: SandboxServer, portal: str) -> dict[str, Any]:
    return await portal_stats(server, TOKENS[portal])


@pytest.fixture
async def clients(server: SandboxServer, tmp_path: Path) -> AsyncIterator[dict[str, HubSpotClient]]:
    reset = await sandbox_request(server, "POST", "/_sandbox/reset", json={"all": True})
    assert reset.status_code == 200
    path = tmp_path / "portals.yaml"
    path.write_text(PORTALS)
    built = portal_clients(Settings(hubspot_url=server.url, portals_file=path), deadline_s=30.0)
    try:
        yield built
    finally:
        for c in built.values():
            await c.aclose()


async def _write(hs: HubSpotClient, portal: str, first: int, n: int = 1) -> None:
    inputs = [
        CallCreateInput(
            {"hs_timestamp": TS, "hs_call_title": f"{portal}-{i}"},
            object_write_trace_id=f"{portal}-{i}",
        )
        for i in range(first, first + n)
    ]
    answer = await hs.batch_create_calls(inputs)
    assert answer.http_status == 201


async def test_three_portals_land_each_in_its_own_state(
    server: SandboxServer, clients: dict[str, HubSpotClient]
) -> None:
    counts = {"acme": 5, "bravo": 3, "charlie": 4}
    # interleaved: every portal's writes in flight at once, in small batches
    await asyncio.gather(
        *(
            _write(clients[p], p, i)
            for i in range(max(counts.values()))
            for p in counts
            if i < counts[p]
        )
    )
    for portal, n in counts.items():
        s = await stats(server, portal)
        assert s["records"]["calls"] == n
        page = await clients[portal].list_calls(limit=100, properties=["hs_call_title"])
        titles = sorted(str(c.properties["hs_call_title"]) for c in page.results)
        assert titles == sorted(f"{portal}-{i}" for i in range(n))  # none of another's
    assert set((await stats(server, "acme"))["versions"]) == {"v3"}
    assert set((await stats(server, "bravo"))["versions"]) == {"2026-03"}
    # charlie's API requests and its token refresh both went to the dated paths
    assert (await stats(server, "charlie"))["versions"]["2026-03"]["oauthToken"] == 1


def _max_in_window(times: list[float], window_s: float = 10.0) -> int:
    best = 0
    for i, t in enumerate(times):
        best = max(best, sum(1 for u in times[i:] if u - t < window_s))
    return best


async def test_each_portal_stays_within_its_own_rate(
    server: SandboxServer, clients: dict[str, HubSpotClient]
) -> None:
    """bravo may send 4 requests per 10 s (and the sandbox refuses a fifth); 8 bravo
    requests take over 10 s while acme's 60 are done at once, unslowed by bravo."""
    r = await sandbox_request(
        server, "POST", "/_sandbox/config", TOKENS["bravo"], json={"rate_limit": BRAVO_RATE}
    )
    assert r.json()["rate_limit"] == BRAVO_RATE
    started = time.monotonic()
    acme_done: list[float] = []

    async def acme() -> None:
        await asyncio.gather(*(clients["acme"].list_calls(limit=1) for _ in range(60)))
        acme_done.append(time.monotonic() - started)

    await asyncio.gather(acme(), *(clients["bravo"].list_calls(limit=1) for _ in range(8)))
    bravo_s = time.monotonic() - started
    assert acme_done[0] < 3.0 < 10.0 <= bravo_s + 0.5
    b = await stats(server, "bravo")
    assert b["requests"]["listCalls"] == {"200": 8}  # never a 429
    times = [t for t, op, _ in b["timeline"] if op == "listCalls"]
    assert _max_in_window(times) <= BRAVO_RATE
    a = await stats(server, "acme")
    assert a["requests"]["listCalls"] == {"200": 60}


async def test_an_oauth_portal_keeps_working_across_expiry(
    server: SandboxServer, clients: dict[str, HubSpotClient]
) -> None:
    hs = clients["charlie"]
    provider = hs.session.auth
    assert isinstance(provider, OAuthTokenProvider)
    await asyncio.gather(*(hs.list_calls(limit=1) for _ in range(20)))
    await asyncio.sleep(3.2)  # every access token issued so far has expired
    await asyncio.gather(*(_write(hs, "charlie", i) for i in range(20)))
    s = await stats(server, "charlie")
    assert s["records"]["calls"] == 20
    assert s["requests"]["batchCreateCalls"] == {"201": 20}
    assert provider.refreshes == 2  # one for each access-token lifetime, not one per request
    assert s["requests"]["oauthToken"] == {"200": 2}
    assert "401" not in s["requests"].get("listCalls", {})
