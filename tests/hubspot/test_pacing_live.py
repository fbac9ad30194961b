"""The rate budget against the sandbox's own limiter: counted from its request timeline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY

from service.hubspot import (
    Filter,
    FilterGroup,
    HubSpotClient,
    SearchRequest,
    update_input,
)
from tests.fixtures.sandbox import SandboxHandle
from tests.hubspot.conftest import call_props

MakeClient = Callable[..., HubSpotClient]


#: the sandbox's timeline stamps a request when it is answered, not when it arrived (which
#: is what its limiter, like HubSpot's, counts); answer latency varies by a few ms.
JITTER_S = 0.05


def max_per_window(timeline: list[list[Any]], interval: float, ops: set[str] | None = None) -> int:
    """The most requests the sandbox answered in any window (t - interval, t], less jitter."""
    interval -= JITTER_S
    times = sorted(t for t, op, _ in timeline if ops is None or op in ops)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - interval:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def rate_limited(policy: str) -> float:
    value = REGISTRY.get_sample_value(
        "callbridge_hubspot_rate_limited_total", {"policy": policy, "portal": "default"}
    )
    return value or 0.0


async def test_budget_holds_under_429_bursts_and_5xx(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    """With 20/10 s configured, injected 429s and 503s: all work done, never >20 per 10 s."""
    sandbox.config(rate_limit=20)
    before = rate_limited("TEN_SECONDLY_ROLLING")
    async with make_client(rate=20, deadline_s=40.0) as hs:
        created = await hs.create_call(call_props("paced"))
        sandbox.faults(rate_limit_burst=3, error_rate=0.1, error_status=503, seed=5)
        started = time.monotonic()

        async def work(n: int) -> None:
            if n % 2:
                await hs.get_call_by_id(created.id)
            else:
                await hs.batch_update_calls([update_input(created.id, {"hs_call_title": f"{n}"})])

        await asyncio.gather(*(work(n) for n in range(28)))
        elapsed = time.monotonic() - started
        assert hs.session.budget.limit == 20

    stats = sandbox.stats()
    statuses: dict[str, int] = {}
    for per in stats["requests"].values():
        for status, n in per.items():
            statuses[status] = statuses.get(status, 0) + n
    assert statuses.get("429") == 3  # the injected burst only: the sandbox never limited us
    assert statuses.get("503", 0) >= 1
    assert statuses["200"] == 28
    assert max_per_window(stats["timeline"], 10.0) <= 20
    assert elapsed >= 9.0  # 29+ requests through a 20-per-10 s budget take a second window
    assert rate_limited("TEN_SECONDLY_ROLLING") == before + 3


async def test_rate_limit_headers_tighten_the_budget(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    """Configured for 1000, the client follows the sandbox's X-HubSpot-RateLimit-Max of 8."""
    sandbox.config(rate_limit=8)
    async with make_client(rate=1000, deadline_s=30.0) as hs:
        await hs.list_calls()
        assert hs.session.budget.limit == 8
        await asyncio.gather(*(hs.list_calls() for _ in range(11)))
    stats = sandbox.stats()
    assert stats["requests"]["listCalls"] == {"200": 12}  # no 429 at all
    assert max_per_window(stats["timeline"], 10.0) <= 8


async def test_search_budget_holds_five_per_second(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    """Searches are paced to 5 per second: no SECONDLY 429 from the sandbox."""
    sandbox.config(search_rate=5)
    request = SearchRequest(
        filter_groups=[
            FilterGroup(filters=[Filter(property_name="hs_call_title", operator="HAS_PROPERTY")])
        ]
    )
    async with make_client(search_rate=5) as hs:
        await asyncio.gather(*(hs.search_calls(request) for _ in range(12)))
    stats = sandbox.stats()
    assert stats["requests"]["searchCalls"] == {"200": 12}
    assert max_per_window(stats["timeline"], 1.0, {"searchCalls"}) <= 5


async def test_requests_that_reach_hubspot_late_do_not_reopen_the_window_early(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    """A limit of 4 per 10 s and 8 requests at once: the client books four now and four at
    10.2 s. The first four reach HubSpot 0.8 s late (a loaded machine; here the sandbox
    holds them before its limiter counts them), the next four on time: booked times alone
    would send them into a window HubSpot still counts full (429s, as the per-portal rate
    test saw under the full suite). Counted from their answers, they wait: no 429."""
    sandbox.reset()
    sandbox.config(rate_limit=4)
    sandbox.faults(latency_ms=800, operations=["listCalls"])
    hs = make_client(rate=4, deadline_s=60.0)
    try:
        first = [asyncio.create_task(hs.list_calls(limit=1)) for _ in range(4)]
        rest = [asyncio.create_task(hs.list_calls(limit=1)) for _ in range(4)]
        await asyncio.gather(*first)
        sandbox.clear_faults()  # the later four reach it at once
        await asyncio.gather(*rest)
    finally:
        await hs.aclose()
    assert sandbox.stats()["requests"]["listCalls"] == {"200": 8}
