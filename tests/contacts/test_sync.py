"""Keeping the index in sync: incremental refresh, restart without rebuild, rebuild sweep,
the background loop, and late matches through v4 associations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from service.contacts import IndexedMatcher
from service.hubspot import HubSpotClient
from tests.contacts.conftest import CONTACTS, Wall, create_contacts, requests_of, searches
from tests.fixtures.sandbox import SandboxHandle

TS = "2026-03-03T15:04:05.000Z"


def patch(sandbox: SandboxHandle, cid: str, **props: str) -> None:
    r = sandbox.client.patch(
        f"{CONTACTS}/{cid}", json={"properties": props}, headers=sandbox.headers
    )
    assert r.status_code == 200, r.text


async def test_refresh_picks_up_new_and_changed_contacts_with_one_search(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """After the build, one search (lastmodifieddate > last seen) brings in a new contact
    and a changed number; the old number no longer matches."""
    a, b = create_contacts(sandbox, [{"phone": "+14155550001"}, {"phone": "+14155550002"}])
    m = matchers()
    await m.index.build()
    c = create_contacts(sandbox, [{"phone": "(415) 555-0003"}])[0]
    patch(sandbox, b, phone="415.555.0022")
    assert (await m.match(["+14155550003"]))["+14155550003"] == []  # not yet known
    spent = searches(sandbox)
    await m.index.refresh()
    assert searches(sandbox) == spent + 1
    got = await m.match(["+14155550001", "+14155550002", "+14155550003", "+14155550022"])
    assert got == {
        "+14155550001": [a],
        "+14155550002": [],
        "+14155550003": [c],
        "+14155550022": [b],
    }


async def test_a_restart_resumes_instead_of_rebuilding(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """A fresh matcher over the same directory is warm at once and lists nothing again; a
    build interrupted half-way resumes from its stored cursor."""
    create_contacts(sandbox, [{"phone": f"+1415555{i:04d}"} for i in range(250)])
    m = matchers()
    await m.index.build()
    assert requests_of(sandbox, "listContacts") == 3
    await m.aclose()
    again = matchers()
    assert again.index.warm
    assert len((await again.match(["+14155550249"]))["+14155550249"]) == 1
    assert requests_of(sandbox, "listContacts") == 3

    # interrupted build: one page, then a "crash"
    half = matchers(contact_index_dir=m.store.path.parent / "half")
    page = await half.client.list_contacts(limit=100, properties=["phone"])
    half.store.set_meta(gen=1, building=1, cursor=page.after, watermark_ms=1)
    half.store.apply(half.index._rows(page.results), 1)
    await half.aclose()
    resumed = matchers(contact_index_dir=m.store.path.parent / "half")
    lists = requests_of(sandbox, "listContacts")
    await resumed.index.build()
    assert requests_of(sandbox, "listContacts") == lists + 2  # pages 2 and 3 only
    assert resumed.store.size() == (250, 250)


async def test_rebuild_drops_deleted_contacts(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher], wall: Wall
) -> None:
    """Search cannot report deletions: the periodic rebuild drops contacts gone since."""
    a, b = create_contacts(sandbox, [{"phone": "+14155550001"}, {"phone": "+14155550002"}])
    m = matchers(contact_index_rebuild_s=60)
    await m.index.build()
    assert sandbox.client.delete(f"{CONTACTS}/{a}", headers=sandbox.headers).status_code == 204
    await m.index.refresh()
    assert (await m.match(["+14155550001"]))["+14155550001"] == [a]  # still there
    assert not m.index._rebuild_due()
    wall.now += 61
    assert m.index._rebuild_due()
    await m.index.build()
    assert await m.match(["+14155550001", "+14155550002"]) == {
        "+14155550001": [],
        "+14155550002": [b],
    }


async def test_the_background_loop_builds_then_refreshes(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """run(): the index warms up, then a contact added later appears within an interval;
    aclose() stops it."""
    create_contacts(sandbox, [{"phone": "+14155550001"}])
    m = matchers(contact_index_refresh_s=0.2)
    assert not await m.wait_warm(0.1)  # nothing builds it yet
    task = asyncio.create_task(m.run())
    assert await m.wait_warm(5.0)
    (late,) = create_contacts(sandbox, [{"mobilephone": "1-415-555-0009"}])
    for _ in range(100):
        if (await m.match(["+14155550009"]))["+14155550009"]:
            break
        await asyncio.sleep(0.05)
    assert (await m.match(["+14155550009"]))["+14155550009"] == [late]
    await m.aclose()
    assert task.done()


async def test_late_match_associates_an_earlier_call(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher], hs: HubSpotClient, wall: Wall
) -> None:
    """A call written before its caller was a contact gets the association when the index
    learns the number; a call older than CALLBRIDGE_CONTACT_LATE_MATCH_DAYS does not, and a
    call whose number already had a contact is not remembered."""
    m = matchers(contact_late_match_days=2)
    (known,) = create_contacts(sandbox, [{"phone": "+14155550042"}])
    await m.index.build()
    number = "+14155550199"
    recent = await hs.create_call({"hs_timestamp": TS, "hs_call_title": "recent"})
    old = await hs.create_call({"hs_timestamp": TS, "hs_call_title": "old"})
    other = await hs.create_call({"hs_timestamp": TS, "hs_call_title": "known"})
    assert await m.match([number]) == {number: []}
    m.calls_written(
        [
            (number, old.id, wall.now - 3 * 86_400),
            (number, recent.id, wall.now - 60),
            ("+14155550042", other.id, wall.now),
        ]
    )
    assert m.store.call_count() == 2
    (contact,) = create_contacts(sandbox, [{"phone": "(415) 555-0199"}])
    await m.index.refresh()

    def associated(call_id: str) -> list[str]:
        got = sandbox.client.get(
            f"/crm/v3/objects/calls/{call_id}",
            params={"associations": "contacts"},
            headers=sandbox.headers,
        ).json()
        return [r["id"] for r in got.get("associations", {}).get("contacts", {}).get("results", [])]

    assert associated(recent.id) == [contact]
    assert associated(old.id) == []
    assert associated(other.id) == []
    assert m.store.call_count() == 0  # associated, or too old and pruned
    assert known


async def test_a_bulk_import_is_not_read_again_by_every_refresh(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher], wall: Wall
) -> None:
    """450 contacts imported just before the build: the refresh right after may read them
    again (they changed within HubSpot's search lag), but once the lag has passed a
    refresh is one search again. (Looking back from the newest contact seen, as before,
    every refresh of a quiet portal re-read the whole import: 3 searches each, forever.)"""
    create_contacts(sandbox, [{"phone": f"+1415556{i:04d}"} for i in range(450)])
    m = matchers()
    await m.index.build()
    spent = searches(sandbox)
    await m.index.refresh()  # within the clock-skew margin of the build: may re-read
    first = searches(sandbox) - spent
    assert 1 <= first <= 3
    costs = []
    for _ in range(3):
        wall.now += 120  # past LAG_MS: every import is visible to search by now
        before = searches(sandbox)
        await m.index.refresh()
        costs.append(searches(sandbox) - before)
    assert costs[1:] == [1, 1]  # the second refresh after may still re-read once
    assert costs[0] <= 3
    assert m.store.size() == (450, 450)
