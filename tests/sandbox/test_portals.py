"""Many portals in one sandbox: one state per token, the control API per bearer token,
the date-based path family, 2026-09 validation rules and HubSpot's OAuth token endpoint.
In-process (``httpx.ASGITransport``), with a fake clock where expiry matters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.__main__ import parse_args
from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.oauth import AppSpec

TS = "2026-03-03T15:04:05.000Z"
TOKENS = ["tok-a", "tok-b", "tok-c"]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def wall_ms(self) -> int:
        return 1_767_225_600_000 + int(self.t * 1000)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(title: str, **extra: str) -> dict[str, Any]:
    return {"properties": {"hs_timestamp": TS, "hs_call_title": title, **extra}}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    config = SandboxConfig(
        tokens=list(TOKENS),
        rate_limit=1000,
        search_rate=1000,
        oauth_apps=[AppSpec("app-1", "secret-1", "rt-b", "tok-b")],
        oauth_token_lifetime_s=30.0,
    )
    app = create_app(config, clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
    ) as client:
        yield client


async def test_each_token_is_its_own_portal(http: httpx.AsyncClient) -> None:
    """Records written with one token are invisible to the others; stats are per portal."""
    for n, token in enumerate(TOKENS):
        for i in range(n + 1):
            r = await http.post(
                "/crm/v3/objects/calls", json=call(f"{token}-{i}"), headers=bearer(token)
            )
            assert r.status_code == 201, r.text
    for n, token in enumerate(TOKENS):
        page = await http.get(
            "/crm/v3/objects/calls", params={"properties": "hs_call_title"}, headers=bearer(token)
        )
        titles = sorted(x["properties"]["hs_call_title"] for x in page.json()["results"])
        assert titles == [f"{token}-{i}" for i in range(n + 1)]
        stats = (await http.get("/_sandbox/stats", headers=bearer(token))).json()
        assert stats["records"]["calls"] == n + 1
        assert stats["requests"]["createCall"] == {"201": n + 1}
    # without a bearer token, the control API is the default (first) portal's
    assert (await http.get("/_sandbox/stats")).json()["records"]["calls"] == 1
    listed = (await http.get("/_sandbox/portals")).json()["portals"]
    assert [(p["portal_id"], p["default"], p["records"]["calls"]) for p in listed] == [
        (100000001, True, 1),
        (100000002, False, 2),
        (100000003, False, 3),
    ]


async def test_control_api_acts_on_the_bearers_portal(http: httpx.AsyncClient) -> None:
    """Limits, faults and resets of one portal leave the others alone; an unknown bearer
    token is refused."""
    r = await http.post("/_sandbox/config", json={"rate_limit": 1}, headers=bearer("tok-b"))
    assert r.json()["rate_limit"] == 1
    await http.post("/_sandbox/faults", json={"error_rate": 1.0}, headers=bearer("tok-c"))
    assert (await http.get("/crm/v3/objects/calls", headers=bearer("tok-b"))).status_code == 200
    assert (await http.get("/crm/v3/objects/calls", headers=bearer("tok-b"))).status_code == 429
    assert (await http.get("/crm/v3/objects/calls", headers=bearer("tok-c"))).status_code == 500
    for _ in range(3):
        assert (await http.get("/crm/v3/objects/calls", headers=bearer("tok-a"))).status_code == 200
    await http.post("/crm/v3/objects/calls", json=call("a"), headers=bearer("tok-a"))
    await http.post("/_sandbox/reset", headers=bearer("tok-b"))
    assert (await http.get("/_sandbox/stats", headers=bearer("tok-a"))).json()["records"][
        "calls"
    ] == 1
    assert (await http.get("/_sandbox/config", headers=bearer("tok-b"))).json()[
        "rate_limit"
    ] == 1000
    r = await http.get("/_sandbox/stats", headers=bearer("nobody"))
    assert r.status_code == 401 and r.json()["category"] == "INVALID_AUTHENTICATION"
    await http.post("/_sandbox/reset", json={"all": True})
    for token in TOKENS:
        stats = (await http.get("/_sandbox/stats", headers=bearer(token))).json()
        assert stats["records"]["calls"] == 0 and stats["requests"] == {}


async def test_date_based_paths_share_the_state(http: httpx.AsyncClient) -> None:
    """``/crm/objects/2026-03/calls`` and ``/crm/v3/objects/calls`` are the same calls;
    stats count requests per API version."""
    h = bearer("tok-a")
    created = await http.post("/crm/objects/2026-03/calls", json=call("dated"), headers=h)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    got = await http.get(f"/crm/v3/objects/calls/{cid}?properties=hs_call_title", headers=h)
    assert got.json()["properties"]["hs_call_title"] == "dated"
    r = await http.post(
        "/crm/objects/2026-03/calls/batch/read",
        json={"inputs": [{"id": cid}], "properties": ["hs_call_title"]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["results"][0]["id"] == cid
    contact = await http.post(
        "/crm/objects/2026-03/contacts", json={"properties": {"phone": "+14155550142"}}, headers=h
    )
    assert contact.status_code == 201, contact.text
    link = await http.post(
        "/crm/associations/2026-03/calls/contacts/batch/create",
        json={
            "inputs": [
                {
                    "from": {"id": cid},
                    "to": {"id": contact.json()["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
                }
            ]
        },
        headers=h,
    )
    assert link.status_code in (200, 201), link.text
    listed = await http.get(f"/crm/v4/objects/calls/{cid}/associations/contacts", headers=h)
    assert [x["toObjectId"] for x in listed.json()["results"]] in (
        [int(contact.json()["id"])],
        [contact.json()["id"]],
    )
    prop = await http.get("/crm/properties/2026-03/calls/hs_call_title", headers=h)
    assert prop.status_code == 200 and prop.json()["name"] == "hs_call_title"
    unknown = await http.get("/crm/objects/2024-01/calls", headers=h)
    assert unknown.status_code == 404
    versions = (await http.get("/_sandbox/stats", headers=h)).json()["versions"]
    assert versions["2026-03"] == {
        "createCall": 1,
        "batchReadCalls": 1,
        "createContact": 1,
        "batchCreateAssociations": 1,
        "getProperty": 1,
    }
    assert versions["v3"] == {"getCallById": 1}
    assert versions["v4"] == {"getAssociations": 1}


async def test_validation_rules_apply_from_2026_09(http: httpx.AsyncClient) -> None:
    """A portal's "property required" rule fails writes on 2026-09 paths with HubSpot's
    400 VALIDATION_ERROR naming the property; v3 and 2026-03 writes ignore it."""
    h = bearer("tok-a")
    rules = {
        "rules": [
            {"object_type": "calls", "property": "hs_call_body"},
            {
                "object_type": "calls",
                "property": "hs_call_disposition",
                "when": {"property": "hs_call_status", "value": "COMPLETED"},
            },
        ]
    }
    r = await http.post("/_sandbox/validation-rules", json=rules, headers=h)
    assert r.status_code == 200 and len(r.json()["rules"]) == 2
    # another portal has no rules
    assert (await http.get("/_sandbox/validation-rules", headers=bearer("tok-b"))).json() == {
        "rules": []
    }
    for path in ("/crm/v3/objects/calls", "/crm/objects/2026-03/calls"):
        assert (await http.post(path, json=call("old"), headers=h)).status_code == 201
    refused = await http.post("/crm/objects/2026-09/calls", json=call("new"), headers=h)
    assert refused.status_code == 400
    body = refused.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    assert [e["in"] for e in body["errors"]] == ["hs_call_body"]
    ok = await http.post(
        "/crm/objects/2026-09/calls", json=call("new", hs_call_body="b"), headers=h
    )
    assert ok.status_code == 201, ok.text
    # the conditional rule: only when hs_call_status is COMPLETED, checked on the result
    rid = ok.json()["id"]
    upd = await http.patch(
        f"/crm/objects/2026-09/calls/{rid}",
        json={"properties": {"hs_call_status": "COMPLETED"}},
        headers=h,
    )
    assert upd.status_code == 400 and [e["in"] for e in upd.json()["errors"]] == [
        "hs_call_disposition"
    ]
    # traced batches answer per input (207)
    batch = await http.post(
        "/crm/objects/2026-09/calls/batch/create",
        json={
            "inputs": [
                {**call("x", hs_call_body="b"), "objectWriteTraceId": "t1"},
                {**call("y"), "objectWriteTraceId": "t2"},
            ]
        },
        headers=h,
    )
    assert batch.status_code == 207, batch.text
    assert [e["context"]["objectWriteTraceId"] for e in batch.json()["errors"]] == [["t2"]]
    await http.delete("/_sandbox/validation-rules", headers=h)
    assert (
        await http.post("/crm/objects/2026-09/calls", json=call("z"), headers=h)
    ).status_code == 201


def _form(**kw: str) -> dict[str, str]:
    return {"client_id": "app-1", "client_secret": "secret-1", **kw}


@pytest.mark.parametrize("path", ["/oauth/v1/token", "/oauth/2026-03/token"])
async def test_oauth_refresh_issues_a_short_lived_token_of_the_portal(
    http: httpx.AsyncClient, clock: FakeClock, path: str
) -> None:
    """A refresh answers HubSpot's token body; the access token reaches its portal's state
    until it expires, then 401 EXPIRED_AUTHENTICATION."""
    r = await http.post(path, data=_form(grant_type="refresh_token", refresh_token="rt-b"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 30
    assert body["refresh_token"] == "rt-b"  # not rotating by default
    access = body["access_token"]
    await http.post("/crm/v3/objects/calls", json=call("b-only"), headers=bearer("tok-b"))
    page = await http.get("/crm/v3/objects/calls", headers=bearer(access))
    assert page.status_code == 200 and len(page.json()["results"]) == 1
    assert (await http.get("/_sandbox/stats", headers=bearer(access))).json()["records"][
        "calls"
    ] == 1
    clock.t += 30.0
    expired = await http.get("/crm/v3/objects/calls", headers=bearer(access))
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    stats = (await http.get("/_sandbox/stats", headers=bearer("tok-b"))).json()
    assert stats["requests"]["oauthToken"] == {"200": 1}
    assert stats["requests"]["listCalls"] == {"200": 1, "401": 1}


async def test_oauth_refusals_rotation_and_authorization_codes(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Wrong secret / unknown refresh token are 400s; with rotation the old refresh token
    is retired; an authorization code is single-use; the lifetime knob works."""
    bad = await http.post(
        "/oauth/v1/token",
        data={**_form(grant_type="refresh_token", refresh_token="rt-b"), "client_secret": "no"},
    )
    assert bad.status_code == 400 and bad.json()["status"] == "BAD_CLIENT_SECRET"
    unknown = await http.post(
        "/oauth/v1/token", data=_form(grant_type="refresh_token", refresh_token="x")
    )
    assert unknown.status_code == 400 and unknown.json()["status"] == "BAD_REFRESH_TOKEN"
    knob = await http.post(
        "/_sandbox/oauth", json={"access_token_lifetime_s": 2, "rotate_refresh_tokens": True}
    )
    assert knob.json()["access_token_lifetime_s"] == 2.0
    first = (
        await http.post(
            "/oauth/v1/token", data=_form(grant_type="refresh_token", refresh_token="rt-b")
        )
    ).json()
    assert first["expires_in"] == 2 and first["refresh_token"] != "rt-b"
    again = await http.post(
        "/oauth/v1/token", data=_form(grant_type="refresh_token", refresh_token="rt-b")
    )
    assert again.status_code == 400 and again.json()["status"] == "BAD_REFRESH_TOKEN"
    second = await http.post(
        "/oauth/v1/token",
        data=_form(grant_type="refresh_token", refresh_token=first["refresh_token"]),
    )
    assert second.status_code == 200
    code = (
        await http.post(
            "/_sandbox/oauth", json={"authorize": {"client_id": "app-1", "portal_token": "tok-c"}}
        )
    ).json()["code"]
    grant = _form(grant_type="authorization_code", code=code, redirect_uri="https://x.test/cb")
    issued = await http.post("/oauth/2026-03/token", data=grant)
    assert issued.status_code == 200, issued.text
    await http.post(
        "/crm/v3/objects/calls", json=call("c"), headers=bearer(issued.json()["access_token"])
    )
    assert (await http.get("/_sandbox/stats", headers=bearer("tok-c"))).json()["records"][
        "calls"
    ] == 1
    reused = await http.post("/oauth/2026-03/token", data=grant)
    assert reused.status_code == 400 and reused.json()["status"] == "BAD_AUTH_CODE"
    # expire every access token now (the server side of an expiry the client did not foresee)
    token = second.json()["access_token"]
    assert (await http.get("/crm/v3/objects/calls", headers=bearer(token))).status_code == 200
    await http.post("/_sandbox/oauth", json={"expire_access_tokens": True})
    r = await http.get("/crm/v3/objects/calls", headers=bearer(token))
    assert r.status_code == 401 and r.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_command_line_portals_and_oauth_apps() -> None:
    """``--token`` repeated and ``--oauth-app`` reach the config; an app must name a
    portal token."""
    config, _, _ = parse_args(
        [
            "--token",
            "a",
            "--token",
            "b",
            "--oauth-app",
            "cid:sec:rt:b",
            "--oauth-token-lifetime",
            "5",
            "--oauth-rotate",
        ]
    )
    assert config.tokens == ["a", "b"]
    assert config.oauth_apps == [AppSpec("cid", "sec", "rt", "b")]
    assert config.oauth_token_lifetime_s == 5.0 and config.oauth_rotate_refresh_tokens
    with pytest.raises(SystemExit):
        parse_args(["--token", "a", "--oauth-app", "cid:sec:rt:zzz"])
    with pytest.raises(SystemExit):
        parse_args(["--oauth-app", "only:three:parts"])
