"""Contacts (enough to associate calls by phone) and associations, v3 and v4."""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import TS, Api

CONTACT_SEARCH = "/crm/v3/objects/contacts/search"


def contact_ids(api: Api, body: dict[str, Any]) -> list[str]:
    """Ids a contact search returns."""
    r = api.post(CONTACT_SEARCH, body)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["results"]]


def eq(prop: str, value: str) -> dict[str, Any]:
    """A one-filter EQ search body."""
    return {
        "filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}]
    }


def test_contact_create_get_and_batch_read(api: Api) -> None:
    """Contacts: create 201, get by id, batch read with missing ids in a 207."""
    c = api.create_contact(email="Ada@Example.com", firstname="Ada", phone="+14155550142")
    assert c["properties"]["email"] == "Ada@Example.com"
    got = api.get(f"/crm/v3/objects/contacts/{c['id']}?properties=phone").json()
    assert got["properties"]["phone"] == "+14155550142"
    assert {"email", "firstname", "hs_object_id", "createdate", "lastmodifieddate"} <= set(
        got["properties"]
    )
    r = api.post(
        "/crm/v3/objects/contacts/batch/read",
        {"inputs": [{"id": c["id"]}, {"id": "1"}], "properties": ["phone"]},
    )
    assert r.status_code == 207
    assert r.json()["results"][0]["properties"]["phone"] == "+14155550142"
    assert r.json()["errors"][0]["context"]["ids"] == ["1"]


def test_contact_email_is_unique_case_insensitively(api: Api) -> None:
    """A second contact with the same email (any case) is 409 CONFLICT."""
    c = api.create_contact(email="bob@example.com")
    r = api.post("/crm/v3/objects/contacts", {"properties": {"email": "BOB@example.com"}})
    assert r.status_code == 409
    assert r.json()["message"] == f"Contact already exists. Existing ID: {c['id']}"


def test_contact_search_by_phone_mobile_and_email(api: Api) -> None:
    """Contacts are searchable on phone, mobilephone and email."""
    a = api.create_contact(email="a@example.com", phone="+14155550142")
    b = api.create_contact(email="b@example.com", mobilephone="+14155550199")
    assert contact_ids(api, eq("phone", "+14155550142")) == [a["id"]]
    assert contact_ids(api, eq("mobilephone", "+14155550199")) == [b["id"]]
    assert contact_ids(api, eq("email", "B@EXAMPLE.COM")) == [b["id"]]
    either = {
        "filterGroups": [
            {"filters": [{"propertyName": "phone", "operator": "IN", "values": ["+14155550199"]}]},
            {
                "filters": [
                    {"propertyName": "mobilephone", "operator": "IN", "values": ["+14155550199"]}
                ]
            },
        ]
    }
    assert contact_ids(api, either) == [b["id"]]
    wildcard = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "phone", "operator": "CONTAINS_TOKEN", "value": "*5550142"}
                ]
            }
        ]
    }
    assert contact_ids(api, wildcard) == [a["id"]]


def test_create_call_with_associations(api: Api) -> None:
    """A call created with associations reads back under ?associations=contacts,companies."""
    contact = api.create_contact(email="c@example.com")
    company = api.post("/crm/v3/objects/companies", {"properties": {"name": "ACME"}}).json()
    deal = api.post("/crm/v3/objects/deals", {"properties": {"dealname": "D"}}).json()
    ticket = api.post(
        "/crm/v3/objects/tickets", {"properties": {"subject": "S", "hs_pipeline_stage": "1"}}
    ).json()
    spec = [
        (contact["id"], 194),
        (company["id"], 182),
        (deal["id"], 206),
        (ticket["id"], 220),
    ]
    body = {
        "properties": {"hs_timestamp": TS},
        "associations": [
            {
                "to": {"id": i},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t}],
            }
            for i, t in spec
        ],
    }
    r = api.post("/crm/v3/objects/calls", body)
    assert r.status_code == 201, r.text
    call_id = r.json()["id"]
    got = api.get(
        f"/crm/v3/objects/calls/{call_id}?associations=contacts,companies&associations=deals,tickets"
    ).json()
    assoc = got["associations"]
    assert assoc["contacts"]["results"] == [{"id": contact["id"], "type": "call_to_contact"}]
    assert assoc["companies"]["results"] == [{"id": company["id"], "type": "call_to_company"}]
    assert assoc["deals"]["results"][0]["id"] == deal["id"]
    assert assoc["tickets"]["results"][0]["id"] == ticket["id"]
    listed = api.get("/crm/v3/objects/calls?associations=contacts").json()["results"][0]
    assert listed["associations"]["contacts"]["results"][0]["id"] == contact["id"]
    back = api.get(f"/crm/v3/objects/contacts/{contact['id']}?associations=calls").json()
    assert back["associations"]["calls"]["results"] == [{"id": call_id, "type": "contact_to_call"}]


def test_association_to_missing_target_is_an_error(api: Api) -> None:
    """A missing association target fails the create (and batch items, with trace ids)."""
    assoc = [
        {
            "to": {"id": "123456"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
        }
    ]
    r = api.post(
        "/crm/v3/objects/calls", {"properties": {"hs_timestamp": TS}, "associations": assoc}
    )
    assert r.status_code == 400
    assert r.json()["context"]["ids"] == ["123456"]
    r = api.batch_create(
        [
            {"properties": {"hs_timestamp": TS}, "associations": assoc, "objectWriteTraceId": "a"},
            {"properties": {"hs_timestamp": TS}, "objectWriteTraceId": "b"},
        ]
    )
    assert r.status_code == 207
    assert r.json()["errors"][0]["context"]["objectWriteTraceId"] == ["a"]
    bad_type = [
        {
            "to": {"id": "1"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 9999}],
        }
    ]
    r = api.post(
        "/crm/v3/objects/calls", {"properties": {"hs_timestamp": TS}, "associations": bad_type}
    )
    assert r.status_code == 400


def test_v4_batch_create_and_read_associations(api: Api) -> None:
    """v4 batch create links calls to contacts; v4 GET and batch read show the links."""
    contact = api.create_contact(email="v4@example.com")
    call = api.create_call()
    r = api.post(
        "/crm/v4/associations/calls/contacts/batch/create",
        {
            "inputs": [
                {
                    "from": {"id": call["id"]},
                    "to": {"id": contact["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
                }
            ]
        },
    )
    assert r.status_code == 201, r.text
    result = r.json()["results"][0]
    assert result["fromObjectId"] == int(call["id"]) and result["toObjectId"] == int(contact["id"])
    got = api.get(f"/crm/v4/objects/calls/{call['id']}/associations/contacts").json()
    assert got["results"] == [
        {
            "toObjectId": int(contact["id"]),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 194, "label": None}],
        }
    ]
    v3 = api.get(f"/crm/v3/objects/calls/{call['id']}?associations=contacts").json()
    assert v3["associations"]["contacts"]["results"][0]["id"] == contact["id"]
    r = api.post(
        "/crm/v4/associations/calls/contacts/batch/read",
        {"inputs": [{"id": call["id"]}, {"id": "5"}]},
    )
    assert r.status_code == 207
    assert r.json()["results"][0]["to"][0]["toObjectId"] == int(contact["id"])


def test_v4_batch_create_missing_objects_are_item_errors(api: Api) -> None:
    """v4 batch create: inputs naming missing records fail per input in a 207."""
    call = api.create_call()
    r = api.post(
        "/crm/v4/associations/calls/contacts/batch/create",
        {"inputs": [{"from": {"id": call["id"]}, "to": {"id": "999"}}]},
    )
    assert r.status_code == 207
    assert r.json()["errors"][0]["context"]["ids"] == ["999"]
    assert (
        api.get(f"/crm/v4/objects/calls/{call['id']}/associations/contacts").json()["results"] == []
    )


def test_v4_put_default_association(api: Api) -> None:
    """PUT .../associations/default/contacts/{id} links with the default type."""
    contact = api.create_contact(email="d@example.com")
    call = api.create_call()
    r = api.http.put(
        f"/crm/v4/objects/calls/{call['id']}/associations/default/contacts/{contact['id']}"
    )
    assert r.status_code == 200
    got = api.get(f"/crm/v4/objects/calls/{call['id']}/associations/contacts").json()
    assert got["results"][0]["associationTypes"][0]["typeId"] == 194


def test_gdpr_delete_removes_associations(api: Api) -> None:
    """gdpr-delete of a call removes it from its contacts' associations."""
    contact = api.create_contact(email="g@example.com")
    assoc = [
        {
            "to": {"id": contact["id"]},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
        }
    ]
    call = api.post(
        "/crm/v3/objects/calls", {"properties": {"hs_timestamp": TS}, "associations": assoc}
    ).json()
    api.post("/crm/v3/objects/calls/gdpr-delete", {"objectId": call["id"]})
    back = api.get(f"/crm/v3/objects/contacts/{contact['id']}?associations=calls").json()
    assert "associations" not in back
