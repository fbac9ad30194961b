"""HubSpot's official Python client (hubspot-api-client 12) against the sandbox.

If the sandbox's answers drift from what HubSpot's generated models accept (required
fields, status codes, query-string encoding like ``archived=True``), these fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects.calls import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from tests.fixtures.sandbox import SandboxHandle

TS = "2026-03-03T15:04:05.000Z"


@pytest.fixture
def calls(sandbox: SandboxHandle) -> Any:
    """The official client's ``crm.objects.calls`` pointed at the sandbox."""
    client = HubSpot(access_token=sandbox.token, host=sandbox.url)
    return client.crm.objects.calls


def test_basic_api_create_get_list_update_archive(calls: Any) -> None:
    """basic_api: create, get_by_id (with history), get_page (archived flag), update, archive."""
    created = calls.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"hs_timestamp": TS, "hs_call_title": "first"})
    )
    assert created.id.isdigit()
    assert created.properties["hs_call_title"] == "first"
    updated = calls.basic_api.update(
        created.id, SimplePublicObjectInput(properties={"hs_call_title": "second"})
    )
    assert updated.properties["hs_call_title"] == "second"
    got = calls.basic_api.get_by_id(
        created.id,
        properties=["hs_call_title"],
        properties_with_history=["hs_call_title"],
        archived=False,
    )
    assert got.properties["hs_call_title"] == "second"
    assert [h.value for h in got.properties_with_history["hs_call_title"]] == ["second", "first"]
    page = calls.basic_api.get_page(limit=10, properties=["hs_call_title"], archived=False)
    assert [c.id for c in page.results] == [created.id]
    calls.basic_api.archive(created.id)
    assert calls.basic_api.get_page(archived=False).results == []
    archived = calls.basic_api.get_page(archived=True)
    assert [c.id for c in archived.results] == [created.id]
    assert archived.results[0].archived is True
    with pytest.raises(ApiException) as caught:
        calls.basic_api.get_by_id(created.id)
    assert caught.value.status == 404


def test_paging_with_the_client(calls: Any) -> None:
    """get_page's paging.next.after walks every record."""
    inputs = [
        SimplePublicObjectBatchInputForCreate(properties={"hs_timestamp": TS}) for _ in range(25)
    ]
    calls.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    seen: list[str] = []
    after = None
    while True:
        page = calls.basic_api.get_page(limit=10, after=after)
        seen += [c.id for c in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert len(seen) == 25 == len(set(seen))


def test_batch_api_create_read_update_archive(calls: Any) -> None:
    """batch_api: create (201 and 207 with trace ids), read, update, archive."""
    inputs = [
        SimplePublicObjectBatchInputForCreate(
            properties={"hs_timestamp": TS, "hs_call_title": f"c{n}"}, object_write_trace_id=f"t{n}"
        )
        for n in range(3)
    ]
    created = calls.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert created.status == "COMPLETE" and len(created.results) == 3
    ids = [c.id for c in created.results]
    bad = [
        SimplePublicObjectBatchInputForCreate(
            properties={"hs_timestamp": TS}, object_write_trace_id="ok"
        ),
        SimplePublicObjectBatchInputForCreate(
            properties={"hs_call_title": "no ts"}, object_write_trace_id="bad"
        ),
    ]
    partial = calls.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=bad))
    assert partial.num_errors == 1
    assert partial.errors[0].context["objectWriteTraceId"] == ["bad"]
    read = calls.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids],
            properties=["hs_call_title"],
            properties_with_history=[],
        ),
        archived=False,
    )
    assert sorted(c.properties["hs_call_title"] for c in read.results) == ["c0", "c1", "c2"]
    upd = calls.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=i, properties={"hs_call_title": "u"}) for i in ids
            ]
        )
    )
    assert {c.properties["hs_call_title"] for c in upd.results} == {"u"}
    calls.batch_api.archive(
        BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=i) for i in ids])
    )
    left = calls.basic_api.get_page()
    assert len(left.results) == 1


def test_search_api(calls: Any) -> None:
    """search_api.do_search: filters, string sorts, total and paging."""
    inputs = [
        SimplePublicObjectBatchInputForCreate(
            properties={
                "hs_timestamp": TS,
                "hs_call_direction": d,
                "hs_call_duration": str(n * 1000),
            }
        )
        for n, d in enumerate(["INBOUND", "OUTBOUND", "INBOUND", "INBOUND"])
    ]
    calls.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    req = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[Filter(property_name="hs_call_direction", operator="EQ", value="INBOUND")]
            )
        ],
        sorts=["-hs_call_duration"],
        properties=["hs_call_duration"],
        limit=2,
    )
    res = calls.search_api.do_search(req)
    assert res.total == 3
    assert [c.properties["hs_call_duration"] for c in res.results] == ["3000", "2000"]
    assert res.paging.next.after == "2"
    req.after = res.paging.next.after
    rest = calls.search_api.do_search(req)
    assert [c.properties["hs_call_duration"] for c in rest.results] == ["0"]


def test_client_sees_hubspot_errors(calls: Any, sandbox: SandboxHandle) -> None:
    """The client raises ApiException carrying HubSpot's status and body."""
    bad = HubSpot(access_token="wrong", host=sandbox.url).crm.objects.calls
    with pytest.raises(ApiException) as caught:
        bad.basic_api.get_page()
    assert caught.value.status == 401
    assert "INVALID_AUTHENTICATION" in caught.value.body
    with pytest.raises(ApiException) as caught:
        calls.basic_api.create(SimplePublicObjectInputForCreate(properties={"hs_call_title": "x"}))
    assert caught.value.status == 400
    assert "hs_timestamp" in caught.value.body


def test_batch_upsert_and_trace_id_echo(calls: Any, sandbox: SandboxHandle) -> None:
    """batch_api.upsert by a unique property; created objects echo objectWriteTraceId."""
    r = sandbox.client.post(
        "/crm/v3/properties/calls",
        json={"name": "hs_call_external_id", "type": "string", "hasUniqueValue": True},
        headers=sandbox.headers,
    )
    assert r.status_code in (201, 409)
    created = calls.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                SimplePublicObjectBatchInputForCreate(
                    properties={"hs_timestamp": TS, "hs_call_external_id": "k1"},
                    object_write_trace_id="k1",
                )
            ]
        )
    )
    assert created.results[0].object_write_trace_id == "k1"
    upserted = calls.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id_property="hs_call_external_id", id="k1", properties={"hs_call_title": "t"}
                ),
                SimplePublicObjectBatchInputUpsert(
                    id_property="hs_call_external_id", id="k2", properties={"hs_timestamp": TS}
                ),
            ]
        )
    )
    assert sorted((c.properties["hs_call_external_id"], c.new) for c in upserted.results) == [
        ("k1", False),
        ("k2", True),
    ]


def test_unique_call_property_group_and_conflict(sandbox: SandboxHandle) -> None:
    """crm.properties creates a group and a unique call property the official models
    accept; a create that duplicates the value is the 400 HubSpot answers."""
    from hubspot.crm.properties import ApiException as PropertiesApiException
    from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

    sandbox.reset(properties=True)
    client = HubSpot(access_token=sandbox.token, host=sandbox.url)
    group = client.crm.properties.groups_api.create(
        "calls", PropertyGroupCreate(name="callbridge", label="callbridge", display_order=-1)
    )
    assert group.name == "callbridge" and group.archived is False
    with pytest.raises(PropertiesApiException) as taken:
        client.crm.properties.groups_api.create(
            "calls", PropertyGroupCreate(name="callbridge", label="again")
        )
    assert taken.value.status == 409
    made = client.crm.properties.core_api.create(
        "calls",
        PropertyCreate(
            name="callbridge_call_key",
            label="callbridge call key",
            type="string",
            field_type="text",
            group_name="callbridge",
            has_unique_value=True,
        ),
    )
    assert made.has_unique_value is True
    got = client.crm.properties.core_api.get_by_name("calls", "callbridge_call_key")
    assert got.has_unique_value is True and got.group_name == "callbridge"
    calls = client.crm.objects.calls
    first = calls.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": TS, "callbridge_call_key": "twilio:CA1"}
        )
    )
    with pytest.raises(ApiException) as dup:
        calls.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"hs_timestamp": TS, "callbridge_call_key": "twilio:CA1"}
            )
        )
    assert dup.value.status == 400
    assert f"{first.id} already has that value." in dup.value.body
    read = calls.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            id_property="callbridge_call_key",
            inputs=[SimplePublicObjectId(id="twilio:CA1")],
            properties=["callbridge_call_key"],
        )
    )
    assert [c.id for c in read.results] == [first.id]
