"""Retries, unknown outcomes and hard errors, with faults injected through the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import REGISTRY

from service.hubspot import (
    HubSpotAuthError,
    HubSpotClient,
    HubSpotDailyLimitExceeded,
    HubSpotFenced,
    HubSpotUnavailable,
    HubSpotUnknownOutcome,
    create_input,
    update_input,
)
from tests.fixtures.sandbox import SandboxHandle, free_port
from tests.hubspot.conftest import call_props

MakeClient = Callable[..., HubSpotClient]


async def test_5xx_faults_are_retried_until_the_work_completes(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """Idempotent operations ride out injected 503s with backoff and all complete."""
    created = await hs.batch_create_calls(
        [create_input(call_props(f"c{i}"), trace_id=f"t{i}") for i in range(10)]
    )
    ids = [c.id for c in created.results]
    idempotent = ["batchReadCalls", "batchUpdateCalls", "getCallById", "searchCalls", "listCalls"]
    sandbox.faults(error_rate=0.25, error_status=503, seed=7, operations=idempotent)

    for n, call_id in enumerate(ids):
        got = await hs.get_call_by_id(call_id)
        assert got.id == call_id
        await hs.batch_update_calls([update_input(call_id, {"hs_call_title": f"u{n}"})])
    read = await hs.batch_read_calls(ids, properties=["hs_call_title"])
    assert sorted(c.properties["hs_call_title"] or "" for c in read.results) == sorted(
        f"u{n}" for n in range(10)
    )
    requests = sandbox.stats()["requests"]
    assert requests["getCallById"].get("503", 0) + requests["batchUpdateCalls"].get("503", 0) > 0
    assert requests["getCallById"]["200"] == 10


async def test_create_answered_5xx_is_unknown_outcome_and_sent_once(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """A batch create answered 500 raises HubSpotUnknownOutcome without repeating it."""
    sandbox.faults(error_rate=1.0, error_status=500, operations=["batchCreateCalls"])
    with pytest.raises(HubSpotUnknownOutcome) as caught:
        await hs.batch_create_calls([create_input(call_props("x"), trace_id="t")])
    assert caught.value.status == 500 and caught.value.correlation_id
    assert sandbox.stats()["requests"]["batchCreateCalls"] == {"500": 1}


async def test_create_with_retry_unknown_is_repeated(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    """retry_unknown=True repeats a create after 5xx; if it never succeeds, still unknown."""
    sandbox.faults(error_rate=0.5, error_status=502, seed=1, operations=["batchCreateCalls"])
    async with make_client() as hs:
        answers = [
            await hs.batch_create_calls(
                [create_input(call_props(f"c{i}"), trace_id=f"t{i}")], retry_unknown=True
            )
            for i in range(4)
        ]
        assert [a.http_status for a in answers] == [201] * 4
        assert sandbox.stats()["requests"]["batchCreateCalls"]["502"] >= 1

    sandbox.faults(error_rate=1.0, operations=["createCall"])
    async with make_client(deadline_s=0.8) as hs:
        with pytest.raises(HubSpotUnknownOutcome):
            await hs.create_call(call_props("never"), retry_unknown=True)


async def test_create_timeout_is_unknown_outcome(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    """A create that times out after sending raises HubSpotUnknownOutcome and is sent once."""
    sandbox.faults(latency_ms=800, operations=["createCall"])
    async with make_client(timeout_s=0.2) as hs:
        with pytest.raises(HubSpotUnknownOutcome) as caught:
            await hs.create_call(call_props("slow"))
    assert caught.value.category == "UNKNOWN_OUTCOME" and caught.value.status == 0
    await asyncio.sleep(1.0)  # the sandbox answers (to nobody) the request the client gave up on
    assert sum(sandbox.stats()["requests"]["createCall"].values()) == 1


async def test_read_timeouts_are_retried_then_unavailable(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    """Idempotent reads that keep timing out are retried until the deadline, then raise."""
    sandbox.faults(latency_ms=700, operations=["listCalls"])
    async with make_client(timeout_s=0.2, deadline_s=0.9) as hs:
        with pytest.raises(HubSpotUnavailable) as caught:
            await hs.list_calls()
    assert (caught.value.status, caught.value.category) == (0, "TIMEOUT")
    await asyncio.sleep(0.8)
    assert sum(sandbox.stats()["requests"]["listCalls"].values()) >= 2


async def test_connection_refused_is_retried_even_for_creates() -> None:
    """A create that never left (connection refused) is safe to repeat: Unavailable, not unknown."""
    port = free_port()
    async with HubSpotClient(f"http://127.0.0.1:{port}", "t", deadline_s=0.6) as hs:
        with pytest.raises(HubSpotUnavailable) as caught:
            await hs.create_call(call_props("x"))
    assert not isinstance(caught.value, HubSpotUnknownOutcome)
    assert isinstance(caught.value.__cause__, Exception)


async def test_bad_token_is_an_auth_error_not_retried(sandbox: SandboxHandle) -> None:
    """A 401 raises HubSpotAuthError at once (one request, no retries)."""
    async with HubSpotClient(sandbox.url, "wrong-token", deadline_s=5) as hs:
        with pytest.raises(HubSpotAuthError) as caught:
            await hs.list_calls()
    assert caught.value.category == "INVALID_AUTHENTICATION" and caught.value.correlation_id
    assert sandbox.stats()["requests"]["listCalls"] == {"401": 1}


async def test_daily_limit_raises_a_distinct_error_without_retry(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """A DAILY 429 raises HubSpotDailyLimitExceeded at once; the daily gauge shows 0 left."""
    sandbox.config(daily_limit=3)
    before = (
        REGISTRY.get_sample_value(
            "callbridge_hubspot_rate_limited_total", {"policy": "DAILY", "portal": "default"}
        )
        or 0.0
    )
    for _ in range(3):
        await hs.list_calls()
    assert (
        REGISTRY.get_sample_value("callbridge_hubspot_daily_remaining", {"portal": "default"}) == 0
    )
    with pytest.raises(HubSpotDailyLimitExceeded) as caught:
        await hs.list_calls()
    assert caught.value.status == 429 and caught.value.policy == "DAILY"
    assert sandbox.stats()["requests"]["listCalls"] == {"200": 3, "429": 1}
    after = REGISTRY.get_sample_value(
        "callbridge_hubspot_rate_limited_total", {"policy": "DAILY", "portal": "default"}
    )
    assert after == before + 1


def fence_after(n: int) -> tuple[Callable[[], Awaitable[bool]], list[int]]:
    """A fence that lets ``n`` attempts through, then refuses; and how often it was asked."""
    asked: list[int] = []

    async def fence() -> bool:
        asked.append(1)
        return len(asked) <= n

    return fence, asked


async def test_a_retry_the_fence_refuses_is_not_sent(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """An update answered 503 would be sent again; its fence says no (the writer lost the
    calls' partitions meanwhile): HubSpotFenced, and HubSpot saw the first attempt only."""
    created = await hs.batch_create_calls([create_input(call_props("a"), trace_id="t")])
    call_id = created.results[0].id
    sandbox.faults(error_rate=1.0, error_status=503, operations=["batchUpdateCalls"])
    fence, asked = fence_after(1)
    with pytest.raises(HubSpotFenced):
        await hs.batch_update_calls([update_input(call_id, {"hs_call_title": "b"})], fence=fence)
    assert len(asked) == 2
    assert sandbox.stats()["requests"]["batchUpdateCalls"] == {"503": 1}


async def test_a_fenced_retry_of_a_create_sent_before_is_an_unknown_outcome(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """A create whose first attempt went unanswered (500) may have happened: when the fence
    stops its retry, the caller hears "unknown", not "not sent"."""
    sandbox.faults(error_rate=1.0, error_status=500, operations=["batchCreateCalls"])
    fence, _ = fence_after(1)
    with pytest.raises(HubSpotUnknownOutcome):
        await hs.batch_create_calls(
            [create_input(call_props("x"), trace_id="t")], retry_unknown=True, fence=fence
        )
    assert sandbox.stats()["requests"]["batchCreateCalls"] == {"500": 1}


async def test_a_fence_that_refuses_at_once_sends_nothing(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    fence, _ = fence_after(0)
    with pytest.raises(HubSpotFenced) as caught:
        await hs.batch_create_calls([create_input(call_props("x"), trace_id="t")], fence=fence)
    assert caught.value.category == "FENCED"
    assert "batchCreateCalls" not in sandbox.stats()["requests"]
