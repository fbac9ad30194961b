"""HubSpot's error shape, auth, and bad input: clear 4xx, never a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import TS, Api


def assert_error_shape(r: httpx.Response, status: int, category: str) -> dict[str, object]:
    """The body is {status: "error", message, correlationId (uuid), category}."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error"
    assert body["category"] == category
    assert isinstance(body["message"], str) and body["message"]
    uuid.UUID(body["correlationId"])
    return body  # type: ignore[no-any-return]


def test_missing_bearer_token_is_401(sandbox: SandboxHandle) -> None:
    """No Authorization header: 401 INVALID_AUTHENTICATION."""
    r = httpx.get(sandbox.url + "/crm/v3/objects/calls")
    assert_error_shape(r, 401, "INVALID_AUTHENTICATION")


def test_unknown_bearer_token_is_401(sandbox: SandboxHandle) -> None:
    """A token the sandbox does not know, or a non-Bearer scheme: 401."""
    for header in ("Bearer wrong", "Basic c2FuZGJveC10b2tlbg==", "sandbox-token"):
        r = httpx.get(sandbox.url + "/crm/v3/objects/calls", headers={"Authorization": header})
        assert_error_shape(r, 401, "INVALID_AUTHENTICATION")


def test_401s_are_counted(sandbox: SandboxHandle) -> None:
    """Rejected requests show in the stats under their operation id."""
    httpx.get(sandbox.url + "/crm/v3/objects/calls")
    assert sandbox.stats()["requests"]["listCalls"] == {"401": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'{"properties": "x"}',
        b'{"properties": {"hs_timestamp": {"a": 1}}}',
        b"\xff\xfe",
    ],
)
def test_malformed_or_mistyped_json_is_400(api: Api, body: bytes) -> None:
    """Malformed JSON and wrong types are 400 VALIDATION_ERROR, not 500."""
    r = api.http.post("/crm/v3/objects/calls", content=body)
    assert_error_shape(r, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/crm/v3/objects/calls/batch/create", {"inputs": [{"properties": [1]}]}),
        ("/crm/v3/objects/calls/batch/read", {"inputs": [{"nope": 1}]}),
        ("/crm/v3/objects/calls/batch/update", {"inputs": [{"id": "1"}]}),
        ("/crm/v3/objects/calls/batch/archive", {"inputs": "x"}),
        ("/crm/v3/objects/calls/search", {"filterGroups": [{"filters": [{"operator": "EQ"}]}]}),
        ("/crm/v3/objects/calls/search", {"limit": "ten"}),
        ("/crm/v3/objects/calls/gdpr-delete", {}),
    ],
)
def test_wrong_shapes_on_every_post_are_400(api: Api, path: str, body: object) -> None:
    """Each POST endpoint answers a wrongly shaped body with 400."""
    assert_error_shape(api.post(path, body), 400, "VALIDATION_ERROR")


def test_bad_query_parameters_are_400(api: Api) -> None:
    """Non-integer limits and bad cursors are 400s."""
    for q in ("limit=ten", "limit=0", "after=zz"):
        assert_error_shape(api.get(f"/crm/v3/objects/calls?{q}"), 400, "VALIDATION_ERROR")


def test_unknown_object_type_is_400(api: Api) -> None:
    """An object type HubSpot cannot infer is 400."""
    assert_error_shape(api.get("/crm/v3/objects/widgets"), 400, "VALIDATION_ERROR")


def test_conflict_shape(api: Api) -> None:
    """A duplicate unique value is HubSpot's 400 VALIDATION_ERROR in the same shape."""
    api.define_unique()
    api.create_call(hs_call_external_id="dup")
    r = api.post(
        "/crm/v3/objects/calls", {"properties": {"hs_timestamp": TS, "hs_call_external_id": "dup"}}
    )
    assert_error_shape(r, 400, "VALIDATION_ERROR")
    assert r.json()["message"].endswith("already has that value.")


def test_correlation_id_header_matches_body(api: Api) -> None:
    """Each answer carries X-HubSpot-Correlation-Id; an error body repeats it."""
    r = api.get("/crm/v3/objects/calls/1")
    assert r.headers["X-HubSpot-Correlation-Id"] == r.json()["correlationId"]


def test_missing_scopes_fault_is_hubspots_403(sandbox: SandboxHandle, api: Api) -> None:
    """missing_scopes: those operations answer HubSpot's 403 naming the scope; others work."""
    sandbox.faults(missing_scopes=["createProperty", "searchCalls"])
    r = api.post(
        "/crm/v3/properties/calls", {"name": "k", "type": "string", "groupName": "callinfo"}
    )
    body = assert_error_shape(r, 403, "MISSING_SCOPES")
    assert body["errors"] == [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.schemas.calls.write"]},
        }
    ]
    assert body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}
    search = api.post("/crm/v3/objects/calls/search", {})
    assert assert_error_shape(search, 403, "MISSING_SCOPES")["errors"] == [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.objects.calls.read"]},
        }
    ]
    assert api.get("/crm/v3/objects/calls").status_code == 200
    assert sandbox.stats()["requests"]["createProperty"] == {"403": 1}
    sandbox.clear_faults()
    assert api.post("/crm/v3/objects/calls/search", {}).status_code == 200
