"""Contacts (search, batch read, create) and v4 call→contact associations via the client."""

from __future__ import annotations

import pytest

from service.hubspot import Filter, FilterGroup, HubSpotClient, SearchRequest
from tests.hubspot.conftest import call_props


async def test_contacts_search_batch_read_and_create(hs: HubSpotClient) -> None:
    """create_contact, search_contacts by phone, batch_read_contacts by id and by email."""
    ann = await hs.create_contact({"email": "ann@example.com", "phone": "+14155550142"})
    bob = await hs.create_contact({"email": "bob@example.com", "phone": "+14155550199"})

    found = await hs.search_contacts(
        SearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[Filter(property_name="phone", operator="EQ", value="+14155550142")]
                )
            ],
            properties=["email", "phone"],
        )
    )
    assert [c.id for c in found.results] == [ann.id]
    assert found.results[0].properties["email"] == "ann@example.com"

    by_id = await hs.batch_read_contacts([ann.id, bob.id], properties=["email"])
    assert by_id.http_status == 200
    assert {c.properties["email"] for c in by_id.results} == {"ann@example.com", "bob@example.com"}
    by_email = await hs.batch_read_contacts(
        ["bob@example.com", "nobody@example.com"], id_property="email"
    )
    assert by_email.http_status == 207
    assert [c.id for c in by_email.results] == [bob.id]
    assert by_email.errors[0].category == "OBJECT_NOT_FOUND"


async def test_batch_create_call_contact_associations(hs: HubSpotClient) -> None:
    """v4 batch create links calls to contacts (type 194); unknown contacts are 207 errors."""
    contact = await hs.create_contact({"email": "assoc@example.com"})
    calls = [await hs.create_call(call_props(f"c{i}")) for i in range(2)]
    answer = await hs.batch_create_call_contact_associations([(c.id, contact.id) for c in calls])
    assert answer.http_status == 201
    assert sorted(str(r.from_object_id) for r in answer.results) == sorted(c.id for c in calls)
    assert {str(r.to_object_id) for r in answer.results} == {contact.id}
    got = await hs.get_call_by_id(calls[0].id, associations=["contacts"])
    assert got.associations is not None
    assert [r.id for r in got.associations["contacts"].results] == [contact.id]

    again = await hs.batch_create_call_contact_associations(
        [(calls[0].id, contact.id), (calls[1].id, "987654321")]
    )
    assert again.http_status == 207
    assert again.errors[0].category == "OBJECT_NOT_FOUND"

    with pytest.raises(ValueError, match="at most 100"):
        await hs.batch_create_call_contact_associations([(calls[0].id, contact.id)] * 101)
