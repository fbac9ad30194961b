"""The sandbox's calculated contact phone properties, list paging and modified-date search."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox.phones import calculated
from tests.sandbox.conftest import Api

CONTACTS = "/crm/v3/objects/contacts"
US_FORMS = (
    "(415) 555-0142",
    "415.555.0142",
    "+1 415 555 0142",
    "1-415-555-0142",
    "415 5550142",
    "+14155550142",
)


@pytest.mark.parametrize("typed", US_FORMS)
def test_us_forms_calculate_the_same_numbers(typed: str) -> None:
    """Every way of typing a US number gives HubSpot's national, international and E.164 forms."""
    assert calculated({"phone": typed}) == {
        "hs_searchable_calculated_phone_number": "4155550142",
        "hs_searchable_calculated_international_phone_number": "14155550142",
        "hs_calculated_phone_number": "+14155550142",
        "hs_calculated_phone_number_country_code": "US",
        "hs_calculated_phone_number_area_code": "415",
    }


def test_foreign_and_invalid_values() -> None:
    """A GB number in international form is GB; typed nationally it is read in the portal's
    country (US) and, being invalid there, keeps only its national digits (as HubSpot)."""
    gb = calculated({"mobilephone": "+44 20 7946 0958"})
    assert gb == {
        "hs_searchable_calculated_mobile_number": "2079460958",
        "hs_searchable_calculated_international_mobile_number": "442079460958",
        "hs_calculated_mobile_number": "+442079460958",
    }
    assert calculated({"phone": "020 7946 0958"}) == {
        "hs_searchable_calculated_phone_number": "2079460958"
    }
    assert calculated({"phone": "00004"}) == {"hs_searchable_calculated_phone_number": "4"}
    assert calculated({"phone": "call me"}) == {}
    assert calculated({"phone": "020 7946 0958"}, region="GB")["hs_calculated_phone_number"] == (
        "+442079460958"
    )


def _search(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = api.post(f"{CONTACTS}/search", body)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


def test_contact_writes_calculate_read_and_search_the_forms(api: Api) -> None:
    """Create and update keep the calculated forms current; they are readable, searchable,
    read-only, and API contacts are not marketing contacts."""
    c = api.create_contact(phone="(415) 555-0142", email="a@example.com")
    assert c["properties"]["hs_calculated_phone_number"] == "+14155550142"
    assert c["properties"]["hs_marketable_status"] == "false"
    got = api.get(
        f"{CONTACTS}/{c['id']}",
        params={"properties": "hs_searchable_calculated_phone_number,phone"},
    ).json()["properties"]
    assert got["hs_searchable_calculated_phone_number"] == "4155550142"
    assert got["phone"] == "(415) 555-0142"

    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_searchable_calculated_phone_number",
                        "operator": "IN",
                        "values": ["4155550142"],
                    }
                ]
            }
        ],
        "properties": ["phone"],
    }
    assert [x["id"] for x in _search(api, body)] == [c["id"]]

    r = api.patch(f"{CONTACTS}/{c['id']}", {"properties": {"phone": "+44 20 7946 0958"}})
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["hs_calculated_phone_number"] == "+442079460958"
    assert props["hs_calculated_phone_number_country_code"] == "GB"
    assert _search(api, body) == []
    cleared = api.patch(f"{CONTACTS}/{c['id']}", {"properties": {"phone": ""}}).json()
    assert not {k for k in cleared["properties"] if "calculated_phone" in k}

    for prop in ("hs_calculated_phone_number", "hs_marketable_status"):
        refused = api.patch(f"{CONTACTS}/{c['id']}", {"properties": {prop: "true"}})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["code"] == "READ_ONLY_VALUE"


def test_contacts_list_pages_100_with_properties(api: Api) -> None:
    """GET /contacts?limit=100&properties=... pages every contact once with just those."""
    r = api.post(
        f"{CONTACTS}/batch/create",
        {"inputs": [{"properties": {"phone": f"415555{i:04d}"}} for i in range(100)]},
    )
    assert r.status_code == 201, r.text
    for i in range(50):
        api.create_contact(mobilephone=f"+1 212 555 {i:04d}")
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {
            "limit": 100,
            "properties": "phone,mobilephone,hs_calculated_phone_number,lastmodifieddate",
        }
        if after:
            params["after"] = after
        page = api.get(CONTACTS, params=params).json()
        pages += 1
        for x in page["results"]:
            seen.append(x["id"])
            assert "lastmodifieddate" in x["properties"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert pages == 2
    assert len(seen) == len(set(seen)) == 150


def test_search_by_lastmodifieddate_gt(api: Api) -> None:
    """lastmodifieddate GT a timestamp finds exactly the contacts written after it."""
    old = api.create_contact(phone="+14155550100")
    time.sleep(0.01)
    mark = api.get(f"{CONTACTS}/{old['id']}").json()["properties"]["lastmodifieddate"]
    time.sleep(0.01)
    new = api.create_contact(phone="+14155550101")
    api.patch(f"{CONTACTS}/{old['id']}", {"properties": {"firstname": "Changed"}})
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": mark}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["phone", "lastmodifieddate"],
        "limit": 200,
    }
    assert [x["id"] for x in _search(api, body)] == [new["id"], old["id"]]
