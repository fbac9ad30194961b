"""searchCalls over real HTTP: operators, typed comparison, groups, limits, paging."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import Api

SEARCH = "/crm/v3/objects/calls/search"


def seed(api: Api) -> dict[str, str]:
    """Five calls with varied titles, durations and timestamps; title -> id."""
    rows = [
        (
            "Discovery call with ACME",
            "1800000",
            "2024-01-15T10:30:00.000Z",
            "OUTBOUND",
            "notes about pricing",
        ),
        ("Follow-up", "900000", "2024-01-16T14:00:00Z", "INBOUND", "customer asked for a demo"),
        ("Voicemail", "30000", "2024-02-01T09:00:00.000Z", "INBOUND", ""),
        ("Demo call", "200", "1706000000000", "OUTBOUND", "demo of product"),
        ("Short", "99", "2023-12-31T23:59:59.000Z", "OUTBOUND", ""),
    ]
    inputs = []
    for title, duration, ts, direction, body in rows:
        props = {
            "hs_call_title": title,
            "hs_call_duration": duration,
            "hs_timestamp": ts,
            "hs_call_direction": direction,
        }
        if body:
            props["hs_call_body"] = body
        inputs.append({"properties": props})
    r = api.batch_create(inputs)
    assert r.status_code == 201
    return {x["properties"]["hs_call_title"]: x["id"] for x in r.json()["results"]}


def titles(api: Api, body: dict[str, Any]) -> list[str]:
    """Titles of the records a search returns (all of them, up to 200)."""
    body = {"limit": 200, "properties": ["hs_call_title"], **body}
    r = api.post(SEARCH, body)
    assert r.status_code == 200, r.text
    return [x["properties"]["hs_call_title"] for x in r.json()["results"]]


def one(prop: str, op: str, **kw: Any) -> dict[str, Any]:
    """A search body with one filter."""
    return {"filterGroups": [{"filters": [{"propertyName": prop, "operator": op, **kw}]}]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (one("hs_call_direction", "EQ", value="inbound"), {"Follow-up", "Voicemail"}),
        (one("hs_call_direction", "NEQ", value="OUTBOUND"), {"Follow-up", "Voicemail"}),
        (one("hs_call_duration", "LT", value="200"), {"Short"}),
        (one("hs_call_duration", "LTE", value="200"), {"Short", "Demo call"}),
        (one("hs_call_duration", "GT", value="900000"), {"Discovery call with ACME"}),
        (one("hs_call_duration", "GTE", value="900000"), {"Discovery call with ACME", "Follow-up"}),
        (
            one("hs_call_duration", "BETWEEN", value="99", highValue="30000"),
            {"Short", "Demo call", "Voicemail"},
        ),
        (one("hs_call_title", "IN", values=["short", "VOICEMAIL"]), {"Short", "Voicemail"}),
        (
            one("hs_call_title", "NOT_IN", values=["short", "voicemail"]),
            {"Discovery call with ACME", "Follow-up", "Demo call"},
        ),
        (
            one("hs_call_body", "HAS_PROPERTY"),
            {"Discovery call with ACME", "Follow-up", "Demo call"},
        ),
        (one("hs_call_body", "NOT_HAS_PROPERTY"), {"Voicemail", "Short"}),
        (
            one("hs_call_title", "CONTAINS_TOKEN", value="CALL"),
            {"Discovery call with ACME", "Demo call"},
        ),
        (one("hs_call_title", "CONTAINS_TOKEN", value="disc*"), {"Discovery call with ACME"}),
        (one("hs_call_title", "CONTAINS_TOKEN", value="*mail"), {"Voicemail"}),
        (
            one("hs_call_title", "NOT_CONTAINS_TOKEN", value="call"),
            {"Follow-up", "Voicemail", "Short"},
        ),
    ],
)
def test_operators(api: Api, body: dict[str, Any], expected: set[str]) -> None:
    """Each filter operator, case-insensitive, numeric where the property is a number."""
    seed(api)
    assert set(titles(api, body)) == expected


def test_numbers_compare_as_numbers_not_text(api: Api) -> None:
    """hs_call_duration 99 < 200 < 30000 numerically (text order would differ)."""
    seed(api)
    got = titles(
        api,
        {
            **one("hs_call_duration", "LT", value="1000"),
            "sorts": [{"propertyName": "hs_call_duration", "direction": "ASCENDING"}],
        },
    )
    assert got == ["Short", "Demo call"]


def test_dates_compare_by_instant_in_any_format(api: Api) -> None:
    """hs_timestamp filters accept ISO or epoch ms and compare instants."""
    seed(api)
    iso = titles(api, one("hs_timestamp", "GTE", value="2024-01-16T00:00:00Z"))
    ms = titles(api, one("hs_timestamp", "GTE", value="1705363200000"))
    assert set(iso) == set(ms) == {"Follow-up", "Voicemail", "Demo call"}
    eq = titles(api, one("hs_timestamp", "EQ", value="2024-01-16T14:00:00.000Z"))
    assert eq == ["Follow-up"]


def test_groups_or_filters_and(api: Api) -> None:
    """Filters in a group are AND'd; groups are OR'd."""
    seed(api)
    body = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_call_direction", "operator": "EQ", "value": "OUTBOUND"},
                    {"propertyName": "hs_call_duration", "operator": "LT", "value": "1000"},
                ]
            },
            {
                "filters": [
                    {"propertyName": "hs_call_title", "operator": "EQ", "value": "voicemail"}
                ]
            },
        ]
    }
    assert set(titles(api, body)) == {"Short", "Demo call", "Voicemail"}


def test_query_matches_title_and_body(api: Api) -> None:
    """``query`` matches words (and prefixes) of the title and the body."""
    seed(api)
    assert set(titles(api, {"query": "demo"})) == {"Follow-up", "Demo call"}
    assert titles(api, {"query": "pric"}) == ["Discovery call with ACME"]
    assert titles(api, {"query": "acme discovery"}) == ["Discovery call with ACME"]


def test_one_sort_ascending_and_descending(api: Api) -> None:
    """One sort, either direction; two sorts are a 400."""
    seed(api)
    asc = titles(api, {"sorts": [{"propertyName": "hs_timestamp", "direction": "ASCENDING"}]})
    assert asc == ["Short", "Discovery call with ACME", "Follow-up", "Demo call", "Voicemail"]
    desc = titles(api, {"sorts": [{"propertyName": "hs_timestamp", "direction": "DESCENDING"}]})
    assert desc == list(reversed(asc))
    two = [{"propertyName": "hs_timestamp"}, {"propertyName": "hs_call_title"}]
    assert api.post(SEARCH, {"sorts": two}).status_code == 400


def test_limits_on_groups_filters_and_body_size(api: Api) -> None:
    """5 groups, 6 filters per group, 18 filters, 3,000 characters: over is 400."""
    f = {"propertyName": "hs_call_title", "operator": "HAS_PROPERTY"}
    ok = {"filterGroups": [{"filters": [f] * 6}, {"filters": [f] * 6}, {"filters": [f] * 6}]}
    assert api.post(SEARCH, ok).status_code == 200
    cases = [
        {"filterGroups": [{"filters": [f]}] * 6},
        {"filterGroups": [{"filters": [f] * 7}]},
        {"filterGroups": [{"filters": [f] * 6}] * 3 + [{"filters": [f]}]},
        {"query": "x" * 3001},
    ]
    for body in cases:
        r = api.post(SEARCH, body)
        assert r.status_code == 400, body
        assert r.json()["category"] == "VALIDATION_ERROR"


def test_limit_default_10_max_200_and_after_paging(api: Api) -> None:
    """limit defaults to 10, may be 200, not 201; ``after`` pages; ``total`` counts all."""
    for _ in range(3):
        api.batch_create([{"properties": {"hs_timestamp": "2024-01-01T00:00:00Z"}}] * 100)
    r = api.post(SEARCH, {})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 300 and len(body["results"]) == 10
    assert body["paging"]["next"]["after"] == "10"
    assert api.post(SEARCH, {"limit": 201}).status_code == 400
    seen: list[str] = []
    after: str | None = None
    while True:
        page = api.post(SEARCH, {"limit": 200, **({"after": after} if after else {})}).json()
        seen += [x["id"] for x in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert len(seen) == 300 == len(set(seen))


def test_results_are_capped_at_10000(api: Api) -> None:
    """Paging stops at 10,000 results (``total`` still counts all); after=10000 is 400."""
    for _ in range(101):
        api.batch_create([{"properties": {"hs_timestamp": "2024-01-01T00:00:00Z"}}] * 100)
    r = api.post(SEARCH, {"limit": 200, "after": "9800"}).json()
    assert r["total"] == 10100
    assert len(r["results"]) == 200
    assert "paging" not in r
    assert api.post(SEARCH, {"after": "10000"}).status_code == 400


def test_archived_records_are_not_searchable(api: Api) -> None:
    """Archived records vanish from search."""
    ids = seed(api)
    api.delete(f"/crm/v3/objects/calls/{ids['Short']}")
    assert "Short" not in titles(api, {})


def test_index_delay_fault(sandbox: SandboxHandle, api: Api) -> None:
    """With index_delay_ms, writes become searchable only after the delay."""
    sandbox.faults(index_delay_ms=1000)
    call = api.create_call(hs_call_title="late")
    assert api.get(f"/crm/v3/objects/calls/{call['id']}").status_code == 200
    assert titles(api, {}) == []
    time.sleep(0.6)
    api.patch(f"/crm/v3/objects/calls/{call['id']}", {"properties": {"hs_call_title": "later"}})
    time.sleep(0.6)  # the create is indexed, the update not yet
    assert titles(api, {}) == ["late"]
    time.sleep(0.6)
    assert titles(api, {}) == ["later"]


def test_bad_filters_are_400(api: Api) -> None:
    """Unknown operators, missing values and bad sort directions are 400s."""
    for body in (
        one("hs_call_title", "LIKE", value="x"),
        one("hs_call_title", "EQ"),
        one("hs_call_duration", "BETWEEN", value="1"),
        one("hs_call_title", "IN"),
        one("hs_call_duration", "GT", value="abc"),
        {"sorts": [{"propertyName": "hs_timestamp", "direction": "UP"}]},
        {"after": "abc"},
    ):
        r = api.post(SEARCH, body)
        assert r.status_code == 400, body


def test_search_by_unique_keys(sandbox: SandboxHandle, api: Api) -> None:
    """EQ/IN on a unique property finds every holder in any case, with other filters."""
    api.define_unique()
    inputs = [
        {
            "properties": {
                "hs_timestamp": "2024-01-01T00:00:00Z",
                "hs_call_external_id": f"Twilio:CA{n}",
                "hs_call_title": f"t{n}",
            }
        }
        for n in range(50)
    ]
    ids = [x["id"] for x in api.batch_create(inputs).json()["results"]]
    wanted = ["twilio:ca3", "Twilio:CA7", "twilio:CA49", "nope"]
    body = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_call_external_id", "operator": "IN", "values": wanted}
                ]
            }
        ],
        "properties": ["hs_call_external_id"],
        "limit": 100,
    }
    r = api.post(SEARCH, body).json()
    assert sorted(x["properties"]["hs_call_external_id"] for x in r["results"]) == [
        "Twilio:CA3",
        "Twilio:CA49",
        "Twilio:CA7",
    ]
    assert r["total"] == 3
    body["filterGroups"][0]["filters"].append(
        {"propertyName": "hs_call_title", "operator": "NEQ", "value": "t7"}
    )
    body["filterGroups"].append(
        {"filters": [{"propertyName": "hs_call_title", "operator": "EQ", "value": "t10"}]}
    )
    got = sorted(
        x["properties"]["hs_call_external_id"] for x in api.post(SEARCH, body).json()["results"]
    )
    assert got == ["Twilio:CA10", "Twilio:CA3", "Twilio:CA49"]
    api.delete(f"/crm/v3/objects/calls/{ids[3]}")
    one_key = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_call_external_id", "operator": "EQ", "value": "TWILIO:CA3"}
                ]
            }
        ]
    }
    assert api.post(SEARCH, one_key).json()["total"] == 0
    sandbox.faults(index_delay_ms=60_000)
    api.patch(f"/crm/v3/objects/calls/{ids[5]}", {"properties": {"hs_call_external_id": "moved"}})
    old_key = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_call_external_id", "operator": "EQ", "value": "twilio:ca5"}
                ]
            }
        ]
    }
    assert api.post(SEARCH, old_key).json()["total"] == 1  # the index has not caught up yet


def test_unique_values_differing_in_case(api: Api) -> None:
    """Unique values are exact ("K1" and "k1" may both exist); search matches both, any case."""
    api.define_unique()
    a = api.create_call(hs_call_external_id="K1")
    b = api.create_call(hs_call_external_id="k1")
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_call_external_id", "operator": "EQ", "value": "k1"}]}
        ]
    }
    assert sorted(x["id"] for x in api.post(SEARCH, body).json()["results"]) == sorted(
        [a["id"], b["id"]]
    )
    api.delete(f"/crm/v3/objects/calls/{a['id']}")
    assert [x["id"] for x in api.post(SEARCH, body).json()["results"]] == [b["id"]]
    api.patch(f"/crm/v3/objects/calls/{b['id']}", {"properties": {"hs_call_external_id": "k2"}})
    assert api.post(SEARCH, body).json()["total"] == 0
