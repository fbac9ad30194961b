"""The 300-contact check: numbers typed the way people type them match their calls, from the
warm index (no search at all) and from the cold fallback search, in two countries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from service.contacts import IndexedMatcher, find_contacts
from service.hubspot import HubSpotClient
from tests.contacts.conftest import create_contacts, requests_of, searches
from tests.fixtures.sandbox import SandboxHandle

AREAS = ("415", "212", "646", "312", "617")
US_FORMATS = (
    "({a}) 555-{l}",
    "{a}.555.{l}",
    "+1 {a} 555 {l}",
    "1-{a}-555-{l}",
    "{a} 555{l}",
    "+1{a}555{l}",
)
GB_FORMATS = ("+44 20 7946 {l}", "+44 (0)20 7946 {l}", "+442079461{l3}")


def three_hundred() -> tuple[list[dict[str, str]], list[str]]:
    """300 contacts (phone or mobilephone, six US formats and three GB ones) and the E.164
    number of each, in the same order."""
    props: list[dict[str, str]] = []
    numbers: list[str] = []
    for i in range(270):  # 45 of each US format
        area, line = AREAS[i % len(AREAS)], f"{100 + i // len(AREAS):04d}"
        typed = US_FORMATS[i % len(US_FORMATS)].format(a=area, l=line)
        prop = "mobilephone" if i % 4 == 3 else "phone"
        props.append({prop: typed, "firstname": f"us{i}"})
        numbers.append(f"+1{area}555{line}")
    for i in range(30):
        line = f"{i:04d}"
        fmt = GB_FORMATS[i % len(GB_FORMATS)]
        typed = fmt.format(l=line, l3=line[1:])
        number = "+442079461" + line[1:] if "{l3}" in fmt else "+4420 7946" + line
        props.append({"phone": typed, "firstname": f"gb{i}"})
        numbers.append(number.replace(" ", ""))
    return props, numbers


def test_fixture_numbers_are_what_they_say() -> None:
    """The expected E.164 numbers of the 300 contacts are 300 distinct ones."""
    _, numbers = three_hundred()
    assert len(set(numbers)) == 300
    assert all(n.startswith(("+1", "+44")) for n in numbers)


async def test_300_of_300_from_the_warm_index(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """Built from the list endpoint, the index matches 300/300 and spends no search."""
    props, numbers = three_hundred()
    ids = create_contacts(sandbox, props)
    matcher = matchers()
    await matcher.index.build()
    assert matcher.index.warm
    assert requests_of(sandbox, "listContacts") == 3  # 100 a page
    before = searches(sandbox)
    got = await matcher.match(numbers)
    assert searches(sandbox) == before == 0
    matched = sum(1 for n, cid in zip(numbers, ids, strict=True) if list(got[n]) == [cid])
    assert matched == 300


async def test_300_of_300_from_the_cold_fallback(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """Before the index is built, batched searches on the calculated forms match 300/300."""
    props, numbers = three_hundred()
    ids = create_contacts(sandbox, props)
    matcher = matchers()
    assert not matcher.index.warm
    got = await matcher.match(numbers)
    matched = sum(1 for n, cid in zip(numbers, ids, strict=True) if list(got[n]) == [cid])
    assert matched == 300
    spent = searches(sandbox)
    assert 1 <= spent <= 10  # about 40 numbers per search
    again = await matcher.match(numbers[:50])  # cached
    assert searches(sandbox) == spent
    assert all(again[n] for n in numbers[:50])


async def test_batched_search_without_the_index_matches_any_format(
    sandbox: SandboxHandle, hs: HubSpotClient
) -> None:
    """The batched search on its own (``find_contacts``, no index) also finds 300/300."""
    props, numbers = three_hundred()
    ids = create_contacts(sandbox, props)
    found = await find_contacts(hs, numbers, "US")
    assert sum(1 for n, cid in zip(numbers, ids, strict=True) if found.get(n) == [cid]) == 300


async def test_a_national_number_of_another_country_is_not_a_match(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """``2079460958`` typed in a US portal is Maine's +1 207…, never London's +44 20…,
    although HubSpot's national search form is the same for both; cold and warm agree."""
    (maine,) = create_contacts(sandbox, [{"phone": "2079460958"}])
    cold = matchers()
    got = await cold.match(["+442079460958", "+12079460958"])
    assert searches(sandbox) >= 1  # the London number was a candidate by its digits
    assert got == {"+442079460958": [], "+12079460958": [maine]}
    warm = matchers()
    await warm.index.build()
    assert await warm.match(["+442079460958", "+12079460958"]) == got


async def test_region_setting_reads_national_numbers_in_that_country(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """With CALLBRIDGE_DEFAULT_REGION=GB, ``020 7946 0958`` is the London number."""
    (london,) = create_contacts(sandbox, [{"phone": "020 7946 0958"}])
    us = matchers()
    await us.index.build()
    assert await us.match(["+442079460958"]) == {"+442079460958": []}
    gb = matchers(default_region="GB", contact_index_dir=us.store.path.parent / "gb")
    await gb.index.build()
    assert await gb.match(["+442079460958"]) == {"+442079460958": [london]}


async def test_custom_phone_properties_are_indexed_and_searched(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """CALLBRIDGE_CONTACT_PHONE_PROPERTIES: a custom property's E.164 value matches, warm and
    cold."""
    r = sandbox.client.post(
        "/crm/v3/properties/contacts",
        json={
            "name": "work_phone",
            "label": "Work phone",
            "type": "string",
            "fieldType": "phonenumber",
            "groupName": "contactinformation",
        },
        headers=sandbox.headers,
    )
    assert r.status_code in (201, 409), r.text
    (cid,) = create_contacts(sandbox, [{"work_phone": "+14155550177"}])
    plain = matchers()
    await plain.index.build()
    assert await plain.match(["+14155550177"]) == {"+14155550177": []}
    cold = matchers(
        contact_phone_properties="work_phone", contact_index_dir=plain.store.path.parent / "c"
    )
    assert await cold.match(["+14155550177"]) == {"+14155550177": [cid]}
    warm = matchers(
        contact_phone_properties="work_phone", contact_index_dir=plain.store.path.parent / "w"
    )
    await warm.index.build()
    assert await warm.match(["+14155550177"]) == {"+14155550177": [cid]}


async def test_a_cold_lookup_waits_for_the_build_instead_of_searching(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """A writer's first flush comes while the index builds: it waits for the build
    (``CALLBRIDGE_CONTACT_INDEX_WARM_WAIT_S``) and matches 300/300 without one search."""
    props, numbers = three_hundred()
    ids = create_contacts(sandbox, props)
    matcher = matchers(contact_index_warm_wait_s=30.0)
    task = asyncio.create_task(matcher.run())
    await asyncio.sleep(0)  # run() has started; the build has not finished
    assert not matcher.warm
    got = await matcher.match(numbers)
    assert matcher.warm
    assert searches(sandbox) == 0
    assert sum(1 for n, cid in zip(numbers, ids, strict=True) if list(got[n]) == [cid]) == 300
    await matcher.aclose()
    assert task.done()


async def test_past_the_wait_a_cold_lookup_searches(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """The wait is bounded: when the build is slower than the deadline (here every
    HubSpot answer takes 1.5 s), the lookup falls back to the batched search."""
    props, numbers = three_hundred()
    ids = create_contacts(sandbox, props[:40])
    sandbox.faults(latency_ms=1500)
    matcher = matchers(contact_index_warm_wait_s=0.3)
    task = asyncio.create_task(matcher.run())
    await asyncio.sleep(0)
    started = time.monotonic()
    got = await matcher.match(numbers[:40])
    waited = time.monotonic() - started
    assert searches(sandbox) >= 1
    assert waited < 15  # one wait, not one per build page
    assert sum(1 for n, cid in zip(numbers[:40], ids, strict=True) if list(got[n]) == [cid]) == 40
    sandbox.clear_faults()
    await matcher.aclose()
    assert task.done()
