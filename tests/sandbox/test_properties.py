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
