"""At HubSpot's real limits (190 requests per rolling 10 s, 5 searches/s): the index for
10,000 contacts is built from 100 list requests and no search, and then matching 10,000
distinct numbers spends no search at all (the issue's bound: ≤ 1 per 50 calls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from service.contacts import IndexedMatcher
from service.hubspot import HubSpotClient
from tests.contacts.conftest import Wall, create_contacts, requests_of, searches
from tests.fixtures.sandbox import SandboxHandle

N = 10_000
FORMATS = (
    "({a}) {x}-{l}",
    "{a}.{x}.{l}",
    "+1 {a} {x} {l}",
    "1-{a}-{x}-{l}",
    "{a} {x}{l}",
    "+1{a}{x}{l}",
)


def number(i: int) -> tuple[str, str]:
    """(typed, E.164) of the i-th distinct US number."""
    a = (212, 312, 415, 617, 646, 702, 713, 805, 917, 206)[i % 10]
    x, line = 201 + (i // 10) % 98, f"{i:04d}"
    return FORMATS[i % 6].format(a=a, x=x, l=line), f"+1{a}{x}{line}"


@pytest.mark.slow
async def test_10k_contacts_build_and_match_within_hubspot_limits(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher], wall: Wall
) -> None:
    """100 list requests build the index; 10,000 matches then cost 0 searches; every
    number matches its contact; one refresh is one search; HubSpot never answered 429."""
    typed = [number(i) for i in range(N)]
    assert len({e for _, e in typed}) == N
    ids = create_contacts(sandbox, [{"phone": t} for t, _ in typed])
    wall.now += 180  # the contacts existed before: the first refresh finds none of them
    await asyncio.sleep(10.5)  # and loading them is out of the rolling window we measure
    sandbox.config(rate_limit=190, search_rate=5)
    before_lists = requests_of(sandbox, "listContacts")
    async with HubSpotClient(sandbox.url, sandbox.token, rate=190, search_rate=5) as client:
        m = matchers(client=client)
        started = time.monotonic()
        await m.index.build()
        build_s = time.monotonic() - started
        lists = requests_of(sandbox, "listContacts") - before_lists
        build_searches = searches(sandbox)
        started = time.monotonic()
        matched = 0
        for start in range(0, N, 100):  # as a writer would: one flush of 100 calls
            chunk = typed[start : start + 100]
            got = await m.match([e for _, e in chunk])
            matched += sum(1 for j, (_, e) in enumerate(chunk) if list(got[e]) == [ids[start + j]])
        match_s = time.monotonic() - started
        match_searches = searches(sandbox) - build_searches
        await m.index.refresh()
        refresh_searches = searches(sandbox) - build_searches - match_searches
    stats = sandbox.stats()["requests"]
    throttled = sum(v.get("429", 0) for v in stats.values())
    print(
        f"\nindex build: {N} contacts, {lists} list requests, {build_searches} searches, "
        f"{build_s:.1f} s; match {N} numbers: {match_searches} searches, {match_s:.2f} s; "
        f"refresh: {refresh_searches} search; 429s: {throttled}"
    )
    assert lists == N // 100
    assert build_searches == 0
    assert matched == N
    assert match_searches <= N // 50
    assert match_searches == 0
    assert refresh_searches == 1
    assert throttled == 0
