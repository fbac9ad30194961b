"""CALLBRIDGE_UNKNOWN_CALLER=create: one contact per unknown number, even across crashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.contacts import IndexedMatcher
from service.hubspot import HubSpotClient
from tests.contacts.conftest import CONTACTS, Wall, create_contacts, requests_of, searches
from tests.fixtures.sandbox import SandboxHandle

CALLER = "+14155550123"


def contacts(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    r = sandbox.client.get(
        CONTACTS,
        params={"limit": 100, "properties": "phone,firstname,lastname,hs_marketable_status"},
        headers=sandbox.headers,
    )
    return r.json()["results"]  # type: ignore[no-any-return]


async def test_ignore_is_the_default(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """By default an unknown caller stays unknown: no contact is created."""
    m = matchers()
    await m.index.build()
    assert await m.match([CALLER], names={CALLER: "Ada Lovelace"}) == {CALLER: []}
    assert contacts(sandbox) == []


async def test_create_makes_one_non_marketing_contact_per_number(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """create: phone in E.164, the caller's name, not a marketing contact; asked again (the
    same matcher, or a fresh one over the same store) it is the same contact."""
    m = matchers(unknown_caller="create")
    await m.index.build()
    got = await m.match([CALLER, "+14155550124"], names={CALLER: "Ada King Lovelace"})
    made = {c["id"]: c["properties"] for c in contacts(sandbox)}
    assert len(made) == 2
    ada = made[got[CALLER][0]]
    assert ada["phone"] == CALLER
    assert (ada["firstname"], ada["lastname"]) == ("Ada", "King Lovelace")
    assert ada["hs_marketable_status"] == "false"
    assert await m.match([CALLER]) == {CALLER: got[CALLER]}
    await m.aclose()
    again = matchers(unknown_caller="create")
    assert await again.match([CALLER]) == {CALLER: got[CALLER]}
    assert len(contacts(sandbox)) == 2
    assert requests_of(sandbox, "batchCreateContacts") == 1


async def test_create_of_unknown_outcome_is_adopted_after_a_crash(
    sandbox: SandboxHandle,
    matchers: Callable[..., IndexedMatcher],
    wall: Wall,
) -> None:
    """The create happened but its answer never came (timeout), then the writer crashed: a
    fresh matcher over the same store does not create again before the reconcile delay,
    and after it finds the contact by search and adopts it. One contact in all."""
    sandbox.faults(latency_after_ms=3000, operations=["batchCreateContacts"])
    slow = HubSpotClient(sandbox.url, sandbox.token, timeout_s=0.5, deadline_s=5.0)
    try:
        first = matchers(client=slow, unknown_caller="create")
        await first.index.build()
        assert await first.match([CALLER]) == {CALLER: []}  # outcome unknown
        await first.aclose()  # "crash": the intent is on disk, the id is not
    finally:
        await slow.aclose()
    sandbox.clear_faults()
    assert [c["properties"]["phone"] for c in contacts(sandbox)] == [CALLER]

    wall.now += 1  # restarted at once: within the reconcile delay
    second = matchers(unknown_caller="create")
    assert second.index.warm  # the index survived the restart
    assert await second.match([CALLER]) == {CALLER: []}
    assert len(contacts(sandbox)) == 1

    wall.now += 30  # past CALLBRIDGE_CONTACT_CREATE_RECONCILE_S
    spent = searches(sandbox)
    got = await second.match([CALLER])
    assert searches(sandbox) == spent + 1  # the re-check
    assert got == {CALLER: [contacts(sandbox)[0]["id"]]}
    assert len(contacts(sandbox)) == 1
    assert await second.match([CALLER]) == got  # adopted for good: no more searches
    assert searches(sandbox) == spent + 1


async def test_intent_without_a_create_is_created_after_the_delay(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher], wall: Wall
) -> None:
    """A crash between recording the intent and sending the create: after the delay the
    search finds nothing, so the contact is created, once."""
    m = matchers(unknown_caller="create")
    await m.index.build()
    m.store.begin_creates([CALLER], int(wall() * 1000))
    await m.aclose()
    wall.now += 30
    fresh = matchers(unknown_caller="create")
    got = await fresh.match([CALLER])
    assert len(got[CALLER]) == 1
    assert [c["id"] for c in contacts(sandbox)] == got[CALLER]


async def test_a_created_contact_that_was_deleted_is_not_created_again(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher], wall: Wall
) -> None:
    """Once per number: a user deleting the created contact is respected."""
    m = matchers(unknown_caller="create", contact_index_rebuild_s=1)
    await m.index.build()
    (cid,) = (await m.match([CALLER]))[CALLER]
    assert sandbox.client.delete(f"{CONTACTS}/{cid}", headers=sandbox.headers).status_code == 204
    wall.now += 5
    await m.index.build()  # a rebuild drops the deleted contact
    assert await m.match([CALLER]) == {CALLER: []}
    assert contacts(sandbox) == []


async def test_known_callers_are_never_created(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher]
) -> None:
    """A number some contact has, in any format, creates nothing."""
    (cid,) = create_contacts(sandbox, [{"phone": "(415) 555-0123"}])
    before = requests_of(sandbox, "batchCreateContacts")
    m = matchers(unknown_caller="create")
    await m.index.build()
    assert await m.match([CALLER]) == {CALLER: [cid]}
    cold = matchers(unknown_caller="create", contact_index_dir=m.store.path.parent / "cold")
    assert await cold.match([CALLER]) == {CALLER: [cid]}
    assert requests_of(sandbox, "batchCreateContacts") == before
