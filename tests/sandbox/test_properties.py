"""The properties API: unique-value properties the writer relies on."""

from __future__ import annotations

import pytest

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import TS, Api

UNIQUE = {
    "name": "hs_call_external_id",
    "label": "External id",
    "type": "string",
    "fieldType": "text",
    "groupName": "callinfo",
    "hasUniqueValue": True,
}


@pytest.fixture(autouse=True)
def _no_custom_properties(sandbox: SandboxHandle) -> None:
    """Start each test here without custom property definitions."""
    sandbox.reset(properties=True)


def test_create_unique_property_then_409(api: Api) -> None:
    """Creating hs_call_external_id with hasUniqueValue is 201; again is 409."""
    r = api.post("/crm/v3/properties/calls", UNIQUE)
    assert r.status_code == 201
    assert r.json()["hasUniqueValue"] is True and r.json()["name"] == "hs_call_external_id"
    assert api.post("/crm/v3/properties/calls", UNIQUE).status_code == 409
    got = api.get("/crm/v3/properties/calls/hs_call_external_id").json()
    assert got["hasUniqueValue"] is True
    names = {p["name"] for p in api.get("/crm/v3/properties/calls").json()["results"]}
    assert {"hs_timestamp", "hs_call_title", "hs_call_external_id"} <= names


def test_hs_call_external_id_is_not_unique_until_defined(api: Api) -> None:
    """Built in, hs_call_external_id takes any value; duplicates only conflict once unique."""
    api.create_call(hs_call_external_id="same")
    api.create_call(hs_call_external_id="same")
    r = api.post("/crm/v3/properties/calls", UNIQUE)
    assert r.status_code == 400  # existing duplicates
    api.sandbox.reset()
    assert api.post("/crm/v3/properties/calls", UNIQUE).status_code == 201


def test_custom_property_is_writable_and_survives_reset(sandbox: SandboxHandle, api: Api) -> None:
    """A custom property can be written; it survives /_sandbox/reset unless properties=true."""
    body = {
        "name": "callbridge_key",
        "label": "Key",
        "type": "string",
        "fieldType": "text",
        "groupName": "x",
    }
    assert api.post("/crm/v3/properties/calls", body).status_code == 201
    api.create_call(callbridge_key="k")
    sandbox.reset()
    assert api.get("/crm/v3/properties/calls/callbridge_key").status_code == 200
    sandbox.reset(properties=True)
    assert api.get("/crm/v3/properties/calls/callbridge_key").status_code == 404
    r = api.post(
        "/crm/v3/objects/calls", {"properties": {"hs_timestamp": TS, "callbridge_key": "k"}}
    )
    assert r.status_code == 400


def test_unique_upgrade_survives_reset(sandbox: SandboxHandle, api: Api) -> None:
    """A unique hs_call_external_id stays unique across reset (writers outlive tests)."""
    assert api.post("/crm/v3/properties/calls", UNIQUE).status_code == 201
    sandbox.reset()
    api.create_call(hs_call_external_id="x")
    r = api.post(
        "/crm/v3/objects/calls", {"properties": {"hs_timestamp": TS, "hs_call_external_id": "x"}}
    )
    assert r.status_code == 400 and r.json()["message"].endswith("already has that value.")


def test_bad_property_definitions_are_400(api: Api) -> None:
    """Bad names and types are 400; read-only built-ins cannot be redefined."""
    assert api.post("/crm/v3/properties/calls", {**UNIQUE, "name": "Bad Name"}).status_code == 400
    assert (
        api.post("/crm/v3/properties/calls", {**UNIQUE, "name": "ok", "type": "blob"}).status_code
        == 400
    )
    assert (
        api.post("/crm/v3/properties/calls", {**UNIQUE, "name": "hs_createdate"}).status_code == 409
    )


def test_unique_values_only_for_string_and_number(api: Api) -> None:
    """hasUniqueValue is for string and number properties, as HubSpot's rules say."""
    for kind in ("string", "number"):
        body = {**UNIQUE, "name": f"key_{kind}", "type": kind}
        assert api.post("/crm/v3/properties/calls", body).status_code == 201
    r = api.post(
        "/crm/v3/properties/calls",
        {**UNIQUE, "name": "key_date", "type": "datetime", "fieldType": "date"},
    )
    assert r.status_code == 400 and "cannot require unique values" in r.json()["message"]


def test_at_most_ten_unique_properties_per_object(api: Api) -> None:
    """The eleventh unique property of an object type is refused; other types are apart."""
    for n in range(10):
        assert api.post("/crm/v3/properties/calls", {**UNIQUE, "name": f"k{n}"}).status_code == 201
    r = api.post("/crm/v3/properties/calls", {**UNIQUE, "name": "k10"})
    assert r.status_code == 400 and "10 properties with unique values" in r.json()["message"]
    plain = {**UNIQUE, "name": "not_unique", "hasUniqueValue": False}
    assert api.post("/crm/v3/properties/calls", plain).status_code == 201
    assert api.post("/crm/v3/properties/deals", {**UNIQUE, "name": "k10"}).status_code == 201


def test_property_groups(sandbox: SandboxHandle, api: Api) -> None:
    """Groups: built-in callinfo; create 201, again 409, get, list; kept across reset."""
    assert api.get("/crm/v3/properties/calls/groups/callinfo").status_code == 200
    assert api.get("/crm/v3/properties/calls/groups/callbridge").status_code == 404
    r = api.post("/crm/v3/properties/calls/groups", {"name": "callbridge", "label": "cb"})
    assert r.status_code == 201
    assert r.json() == {"name": "callbridge", "label": "cb", "displayOrder": -1, "archived": False}
    again = api.post("/crm/v3/properties/calls/groups", {"name": "callbridge", "label": "x"})
    assert again.status_code == 409 and again.json()["category"] == "CONFLICT"
    names = {g["name"] for g in api.get("/crm/v3/properties/calls/groups").json()["results"]}
    assert names == {"callinfo", "callbridge"}
    sandbox.reset()
    assert api.get("/crm/v3/properties/calls/groups/callbridge").status_code == 200
    sandbox.reset(properties=True)
    assert api.get("/crm/v3/properties/calls/groups/callbridge").status_code == 404
    bad = api.post("/crm/v3/properties/calls/groups", {"name": "Bad Name", "label": "x"})
    assert bad.status_code == 400


def test_batch_update_by_a_non_unique_id_property_is_hubspots_400(api: Api) -> None:
    """batch/update by idProperty needs a unique property: HubSpot's message otherwise."""
    api.create_call(hs_call_title="t")
    r = api.post(
        "/crm/v3/objects/calls/batch/update",
        {"inputs": [{"id": "t", "idProperty": "hs_call_title", "properties": {}}]},
    )
    assert r.status_code == 400
    assert r.json()["message"] == (
        "Unable to perform update/upsert by non-unique 0-48 property hs_call_title "
        "in portal ID 100000001"
    )
    assert api.post("/crm/v3/properties/calls", {**UNIQUE, "name": "key"}).status_code == 201
    api.create_call(key="k-1", hs_call_title="before")
    r = api.post(
        "/crm/v3/objects/calls/batch/update",
        {"inputs": [{"id": "k-1", "idProperty": "key", "properties": {"hs_call_title": "after"}}]},
    )
    assert r.status_code == 200 and r.json()["results"][0]["properties"]["hs_call_title"] == "after"
