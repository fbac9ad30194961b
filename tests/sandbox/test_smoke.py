"""The fixtures and the first operations, over real HTTP."""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import Api, call_input


def test_fixture_resets_between_tests(sandbox: SandboxHandle, api: Api) -> None:
    """The ``sandbox`` fixture starts each test with no records and no counted requests."""
    assert sandbox.stats()["records"]["calls"] == 0
    assert api.batch_create([call_input(1)]).status_code == 201
    stats = sandbox.stats()
    assert stats["records"]["calls"] == 1
    assert stats["requests"]["batchCreateCalls"] == {"201": 1}


def test_batch_create_then_get_and_list(api: Api) -> None:
    """Records made by batch/create are readable by id and listed."""
    r = api.batch_create([call_input(1), call_input(2)])
    assert r.status_code == 201
    ids = [x["id"] for x in r.json()["results"]]
    got = api.get(f"/crm/v3/objects/calls/{ids[0]}", params={"properties": "hs_call_title"})
    assert got.status_code == 200
    assert got.json()["properties"]["hs_call_title"] == "call 1"
    listed = api.get("/crm/v3/objects/calls").json()["results"]
    assert [x["id"] for x in listed] == ids
