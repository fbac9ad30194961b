"""The pure parts: E.164 confirmation, search planning within HubSpot's limits, policies."""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from service.contacts.phones import contact_numbers, e164, masked, search_forms, split_name
from service.contacts.policy import choose
from service.contacts.search import plan
from service.contacts.store import IndexStore
from service.hubspot.models import encode

numbers = st.lists(
    st.builds(
        lambda cc, n: f"+{cc}{n}",
        st.sampled_from(["1415", "1212", "4420", "33", "4930", "6128"]),
        st.integers(1_000_000, 9_999_999),
    ),
    max_size=400,
)
customs = st.lists(st.sampled_from(["work_phone", "home_phone", "fax", "other"]), unique=True)


def test_e164_confirmation_is_strict() -> None:
    """Every typed form of one number is one E.164; national numbers read in the region only."""
    forms = ["(415) 555-0142", "415.555.0142", "+1 415 555 0142", "1-415-555-0142"]
    assert {e164(f, "US") for f in forms} == {"+14155550142"}
    assert e164("020 7946 0958", "US") is None
    assert e164("020 7946 0958", "GB") == "+442079460958"
    assert e164("2079460958", "US") == "+12079460958"
    assert e164("not a phone", "US") is None
    assert e164("", "US") is None
    assert contact_numbers(
        {"phone": "(415) 555-0142", "mobilephone": None, "fax": "+44 20 7946 0958"},
        ["phone", "mobilephone", "fax"],
        "US",
    ) == {"+14155550142", "+442079460958"}
    assert search_forms("+442079460958") == ("2079460958", "442079460958")


@given(numbers, customs)
def test_search_plan_stays_within_hubspot_limits_and_covers_everything(
    wanted: list[str], custom: list[str]
) -> None:
    """Each planned search is under 3,000 characters, 5 groups and 18 filters, and every
    number is asked for on every property."""
    requests = plan(wanted, custom)
    asked: dict[str, set[str]] = {}
    for r in requests:
        body = encode(r)
        assert len(body.decode()) <= 3000
        assert len(r.filter_groups) <= 5
        assert sum(len(g.filters) for g in r.filter_groups) <= 18
        for g in r.filter_groups:
            for f in g.filters:
                asked.setdefault(f.property_name, set()).update(f.values or [])
        assert orjson.loads(body)["limit"] == 200
    for n in set(wanted):
        national = search_forms(n)
        assert national is not None
        for prop in [
            "hs_searchable_calculated_phone_number",
            "hs_searchable_calculated_mobile_number",
        ]:
            assert national[0] in asked[prop]
        for prop in custom:
            assert n in asked[prop]


def test_a_flush_of_100_numbers_is_one_search() -> None:
    """About 100 US numbers fit one search body (the cold path's cost per flush)."""
    assert len(plan([f"+1415555{i:04d}" for i in range(100)])) == 1


def test_policies() -> None:
    """all: every id; latest: newest lastmodifieddate, ties to the newest id; none: nobody
    when shared; a single contact is associated under every policy."""
    shared = [("30", 5), ("100", 9), ("7", 9)]
    assert choose("all", shared) == (["7", "30", "100"], True)
    assert choose("latest", shared) == (["100"], True)
    assert choose("none", shared) == ([], True)
    for policy in ("all", "latest", "none"):
        assert choose(policy, [("5", 1)]) == (["5"], False)  # type: ignore[arg-type]
    assert choose("latest", []) == ([], False)


def test_names_and_masking() -> None:
    """A caller name splits into first and last name; logged numbers keep 5 characters."""
    assert split_name("Ada King Lovelace") == {"firstname": "Ada", "lastname": "King Lovelace"}
    assert split_name("  Ada ") == {"firstname": "Ada"}
    assert split_name(None) == {}
    assert masked("+14155550142") == "+14…42"


def test_store_keeps_the_newer_version_of_a_contact(tmp_path: Path) -> None:
    """An older answer (search trails writes) never overwrites a newer one; numbers a
    contact no longer has are dropped; the first contact of a number is 'learned'."""
    store = IndexStore(tmp_path / "x.sqlite3")
    assert store.apply([("1", 100, {"+14155550001"})], 1) == {"+14155550001"}
    assert store.apply([("2", 100, {"+14155550001"})], 1) == set()  # not new to the index
    store.apply([("1", 200, {"+14155550002"})], 1)
    store.apply([("1", 150, {"+14155550009"})], 2)  # stale
    assert store.lookup(["+14155550001", "+14155550002", "+14155550009"]) == {
        "+14155550001": [("2", 100)],
        "+14155550002": [("1", 200)],
    }
    assert store.sweep(2) == 1  # contact 2 was not seen by generation 2
    assert store.size() == (1, 1)
    store.close()


async def test_in_memory_fake_follows_the_port() -> None:
    """The fake answers every number asked, by policy, and records written calls."""
    from service.contacts.fake import InMemoryMatcher

    fake = InMemoryMatcher({"+14155550100": [("1", 5), ("2", 9)]}, policy="latest")
    assert await fake.match(["+14155550100", "+14155550111"]) == {
        "+14155550100": ["2"],
        "+14155550111": [],
    }
    fake.calls_written([("+14155550111", "901", 1.0)])
    assert fake.written == [("+14155550111", "901", 1.0)]
    await fake.aclose()
    await fake.run()  # returns at once once closed
