"""Basic call operations over real HTTP: create, get, list, update, archive, gdpr-delete."""

from __future__ import annotations

import re

from tests.sandbox.conftest import TS, Api

DEFAULTS = {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_create_answers_201_with_string_values_and_numeric_id(api: Api) -> None:
    """createCall: 201, numeric-string id, every value a string, timestamps ISO."""
    r = api.post(
        "/crm/v3/objects/calls",
        {
            "properties": {
                "hs_timestamp": TS,
                "hs_call_duration": 1800000,
                "hs_call_has_voicemail": True,
            }
        },
    )
    assert r.status_code == 201
    body = r.json()
    assert body["id"].isdigit()
    props = body["properties"]
    assert props["hs_call_duration"] == "1800000"
    assert props["hs_call_has_voicemail"] == "true"
    assert props["hs_object_id"] == body["id"]
    assert all(isinstance(v, str) for v in props.values())
    assert ISO.match(body["createdAt"]) and ISO.match(body["updatedAt"])
    assert body["archived"] is False


def test_create_without_hs_timestamp_is_a_validation_error(api: Api) -> None:
    """hs_timestamp is required on create: 400 VALIDATION_ERROR naming it."""
    r = api.post("/crm/v3/objects/calls", {"properties": {"hs_call_title": "x"}})
    assert r.status_code == 400
    body = r.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert "hs_timestamp" in body["message"]
    assert body["context"]["propertyName"] == ["hs_timestamp"]


def test_invalid_values_and_unknown_properties_are_named(api: Api) -> None:
    """400 VALIDATION_ERROR names each offending property (unknown, read-only, bad type)."""
    r = api.post(
        "/crm/v3/objects/calls",
        {
            "properties": {
                "hs_timestamp": TS,
                "no_such_prop": "x",
                "hs_call_duration": "ten",
                "hs_call_direction": "SIDEWAYS",
                "hs_createdate": TS,
            }
        },
    )
    assert r.status_code == 400
    body = r.json()
    assert sorted(body["context"]["propertyName"]) == [
        "hs_call_direction",
        "hs_call_duration",
        "hs_createdate",
        "no_such_prop",
    ]
    codes = {e["in"]: e["code"] for e in body["errors"]}
    assert codes["no_such_prop"] == "PROPERTY_DOESNT_EXIST"
    assert codes["hs_createdate"] == "READ_ONLY_VALUE"
    assert codes["hs_call_duration"] == "INVALID_INTEGER"
    assert codes["hs_call_direction"] == "INVALID_OPTION"


def test_get_returns_default_properties_plus_requested(api: Api) -> None:
    """getCallById: hs_object_id/hs_createdate/hs_lastmodifieddate, plus ``properties``."""
    call = api.create_call(hs_call_title="Hello", hs_call_body="Body")
    r = api.get(f"/crm/v3/objects/calls/{call['id']}")
    assert r.status_code == 200
    assert set(r.json()["properties"]) == DEFAULTS
    r = api.get(f"/crm/v3/objects/calls/{call['id']}", params={"properties": "hs_call_title"})
    assert set(r.json()["properties"]) == DEFAULTS | {"hs_call_title"}


def test_list_parameters_accept_csv_and_repeated_keys(api: Api) -> None:
    """``properties=a,b`` and ``properties=a&properties=b`` mean the same."""
    call = api.create_call(hs_call_title="T", hs_call_body="B")
    csv = api.get(f"/crm/v3/objects/calls/{call['id']}?properties=hs_call_title,hs_call_body")
    rep = api.get(
        f"/crm/v3/objects/calls/{call['id']}?properties=hs_call_title&properties=hs_call_body"
    )
    assert csv.json()["properties"] == rep.json()["properties"]
    assert {"hs_call_title", "hs_call_body"} <= set(csv.json()["properties"])


def test_booleans_are_read_in_any_case(api: Api) -> None:
    """``archived=True`` (as the official client sends it) and ``archived=FALSE`` work."""
    call = api.create_call()
    api.delete(f"/crm/v3/objects/calls/{call['id']}")
    assert len(api.get("/crm/v3/objects/calls?archived=True").json()["results"]) == 1
    assert api.get("/crm/v3/objects/calls?archived=FALSE").json()["results"] == []
    bad = api.get("/crm/v3/objects/calls?archived=maybe")
    assert bad.status_code == 400


def test_get_unknown_id_is_404_object_not_found(api: Api) -> None:
    """A missing record is 404 OBJECT_NOT_FOUND in HubSpot's error shape."""
    r = api.get("/crm/v3/objects/calls/99999999999")
    assert r.status_code == 404
    assert r.json()["category"] == "OBJECT_NOT_FOUND"


def test_update_changes_and_empty_string_clears(api: Api) -> None:
    """updateCall: 200 with new values; an empty string clears a value."""
    call = api.create_call(hs_call_title="Old", hs_call_body="Body")
    r = api.patch(
        f"/crm/v3/objects/calls/{call['id']}",
        {"properties": {"hs_call_title": "New", "hs_call_body": ""}},
    )
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["hs_call_title"] == "New"
    assert "hs_call_body" not in props
    got = api.get(
        f"/crm/v3/objects/calls/{call['id']}?properties=hs_call_title,hs_call_body"
    ).json()
    assert got["properties"]["hs_call_title"] == "New"
    assert "hs_call_body" not in got["properties"]
    assert got["updatedAt"] >= got["createdAt"]


def test_properties_with_history_newest_first(api: Api) -> None:
    """propertiesWithHistory keeps every change as {value, timestamp, sourceType, sourceId}."""
    call = api.create_call(hs_call_title="one")
    for title in ("two", "", "three"):
        api.patch(f"/crm/v3/objects/calls/{call['id']}", {"properties": {"hs_call_title": title}})
    r = api.get(
        f"/crm/v3/objects/calls/{call['id']}", params={"propertiesWithHistory": "hs_call_title"}
    )
    history = r.json()["propertiesWithHistory"]["hs_call_title"]
    assert [h["value"] for h in history] == ["three", "", "two", "one"]
    assert {"value", "timestamp", "sourceType", "sourceId"} <= set(history[0])
    stamps = [h["timestamp"] for h in history]
    assert stamps == sorted(stamps, reverse=True)


def test_update_missing_or_archived_is_404(api: Api) -> None:
    """Updating a record that does not exist (or is archived) is 404."""
    call = api.create_call()
    api.delete(f"/crm/v3/objects/calls/{call['id']}")
    r = api.patch(f"/crm/v3/objects/calls/{call['id']}", {"properties": {"hs_call_title": "x"}})
    assert r.status_code == 404
    assert api.patch("/crm/v3/objects/calls/123", {"properties": {}}).status_code == 404


def test_archive_hides_record_unless_archived_true(api: Api) -> None:
    """archiveCall: 204; gone from get/list unless archived=true, which shows archivedAt."""
    keep, gone = api.create_call(), api.create_call()
    r = api.delete(f"/crm/v3/objects/calls/{gone['id']}")
    assert r.status_code == 204 and r.content == b""
    assert api.get(f"/crm/v3/objects/calls/{gone['id']}").status_code == 404
    assert [x["id"] for x in api.get("/crm/v3/objects/calls").json()["results"]] == [keep["id"]]
    archived = api.get(f"/crm/v3/objects/calls/{gone['id']}?archived=true").json()
    assert archived["archived"] is True and "archivedAt" in archived
    listed = api.get("/crm/v3/objects/calls?archived=true").json()["results"]
    assert [x["id"] for x in listed] == [gone["id"]]


def test_list_paging_default_10_max_100_and_cursor(api: Api) -> None:
    """listCalls: limit defaults to 10, over 100 is 400, paging.next.after/link walk all."""
    for start in range(0, 120, 100):
        r = api.batch_create(
            [{"properties": {"hs_timestamp": TS}} for _ in range(min(100, 120 - start))]
        )
        assert r.status_code == 201
    first = api.get("/crm/v3/objects/calls").json()
    assert len(first["results"]) == 10
    assert api.get("/crm/v3/objects/calls?limit=101").status_code == 400
    seen: list[str] = []
    url: str | None = "/crm/v3/objects/calls?limit=50"
    while url:
        page = api.get(url).json()
        seen += [x["id"] for x in page["results"]]
        nxt = page.get("paging", {}).get("next")
        if nxt:
            assert (
                nxt["link"].startswith(api.sandbox.url) and f"after={nxt['after']}" in nxt["link"]
            )
        url = nxt["link"] if nxt else None
    assert len(seen) == 120 and len(set(seen)) == 120
    assert seen == sorted(seen, key=int)


def test_gdpr_delete_erases_permanently(api: Api) -> None:
    """gdprDeleteCall: 204, and the record is gone even with archived=true."""
    call = api.create_call(hs_call_title="secret")
    r = api.post("/crm/v3/objects/calls/gdpr-delete", {"objectId": call["id"]})
    assert r.status_code == 204
    assert api.get(f"/crm/v3/objects/calls/{call['id']}").status_code == 404
    assert api.get(f"/crm/v3/objects/calls/{call['id']}?archived=true").status_code == 404
    assert api.get("/crm/v3/objects/calls?archived=true").json()["results"] == []
    assert (
        api.post("/crm/v3/objects/calls/gdpr-delete", {"objectId": call["id"]}).status_code == 404
    )


def test_gdpr_delete_by_unique_id_property(api: Api) -> None:
    """gdpr-delete accepts ``idProperty`` naming a unique property."""
    api.define_unique()
    call = api.create_call(hs_call_external_id="twilio:CA1")
    r = api.post(
        "/crm/v3/objects/calls/gdpr-delete",
        {"objectId": "twilio:CA1", "idProperty": "hs_call_external_id"},
    )
    assert r.status_code == 204
    assert api.get(f"/crm/v3/objects/calls/{call['id']}").status_code == 404
    r = api.post(
        "/crm/v3/objects/calls/gdpr-delete", {"objectId": "x", "idProperty": "hs_call_title"}
    )
    assert r.status_code == 400


def test_get_and_update_by_unique_id_property(api: Api) -> None:
    """GET/PATCH with ``idProperty=hs_call_external_id`` find the record by that value."""
    api.define_unique()
    call = api.create_call(hs_call_external_id="aircall:7")
    r = api.get("/crm/v3/objects/calls/aircall:7?idProperty=hs_call_external_id")
    assert r.status_code == 200 and r.json()["id"] == call["id"]
    r = api.patch(
        "/crm/v3/objects/calls/aircall:7?idProperty=hs_call_external_id",
        {"properties": {"hs_call_title": "t"}},
    )
    assert r.status_code == 200 and r.json()["properties"]["hs_call_title"] == "t"
