"""Every Calls operation through HubSpotClient against the sandbox over real HTTP."""

from __future__ import annotations

import uuid

import pytest

from service.hubspot import (
    Dead,
    Filter,
    FilterGroup,
    HubSpotClient,
    HubSpotNotFound,
    HubSpotValidationError,
    Ok,
    SearchRequest,
    Sort,
    chunks,
    create_input,
    outcomes,
    update_input,
)
from service.hubspot.models import OPERATORS, CallCreateInput
from tests.fixtures.sandbox import SandboxHandle
from tests.hubspot.conftest import call_props


async def _create_many(hs: HubSpotClient, n: int, prefix: str = "call") -> list[str]:
    ids: list[str] = []
    inputs = [create_input(call_props(f"{prefix} {i}"), trace_id=f"{prefix}-{i}") for i in range(n)]
    for batch in chunks(inputs):
        answer = await hs.batch_create_calls(batch)
        assert answer.http_status == 201
        ids += [c.id for c in answer.results]
    return ids


async def test_create_get_update_archive_one_call(hs: HubSpotClient) -> None:
    """createCall, getCallById, updateCall and archiveCall round-trip one call."""
    created = await hs.create_call(call_props("Discovery", hs_call_direction="OUTBOUND"))
    assert created.properties["hs_call_title"] == "Discovery"

    got = await hs.get_call_by_id(created.id, properties=["hs_call_title", "hs_call_direction"])
    assert (got.id, got.properties["hs_call_direction"]) == (created.id, "OUTBOUND")

    updated = await hs.update_call(created.id, {"hs_call_title": "Discovery (2)"})
    assert updated.properties["hs_call_title"] == "Discovery (2)"
    history = await hs.get_call_by_id(created.id, properties_with_history=["hs_call_title"])
    assert history.properties_with_history is not None
    assert [h.value for h in history.properties_with_history["hs_call_title"]] == [
        "Discovery (2)",
        "Discovery",
    ]

    await hs.archive_call(created.id)
    with pytest.raises(HubSpotNotFound) as caught:
        await hs.get_call_by_id(created.id)
    assert caught.value.status == 404 and caught.value.correlation_id
    archived = await hs.get_call_by_id(created.id, archived=True)
    assert archived.archived and archived.archived_at


async def test_create_call_with_contact_association(hs: HubSpotClient) -> None:
    """A create input's associations link the call to a contact (type 194)."""
    contact = await hs.create_contact({"email": f"{uuid.uuid4().hex}@example.com"})
    body = create_input(call_props("With contact"), associations={"contacts": [contact.id]})
    created = await hs.create_call(body)
    got = await hs.get_call_by_id(created.id, associations=["contacts"])
    assert got.associations is not None
    assert [r.id for r in got.associations["contacts"].results] == [contact.id]


async def test_list_and_iterate_more_than_250_calls(hs: HubSpotClient) -> None:
    """listCalls pages with a cursor; iter_calls walks every page (> 250 records)."""
    ids = await _create_many(hs, 260)
    first = await hs.list_calls(limit=100, properties=["hs_call_title"])
    assert len(first.results) == 100 and first.after
    second = await hs.list_calls(limit=100, after=first.after)
    assert not {c.id for c in first.results} & {c.id for c in second.results}

    seen = [c.id async for c in hs.iter_calls(page_size=100, properties=["hs_call_title"])]
    assert sorted(seen) == sorted(ids)
    assert len(set(seen)) == 260


async def test_batch_read_reports_missing_ids_in_a_207(hs: HubSpotClient) -> None:
    """batchReadCalls answers 207 for missing ids; outcomes() maps them back by id."""
    ids = await _create_many(hs, 3)
    answer = await hs.batch_read_calls([*ids, "999999999"], properties=["hs_call_title"])
    assert answer.http_status == 207
    assert sorted(c.id for c in answer.results) == sorted(ids)
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    traces = ["a", "b", "c", "d"]
    got = outcomes(answer.http_status, answer, traces, ids=[*ids, "999999999"])
    assert [got[t] for t in traces[:3]] == [Ok(i) for i in ids]
    assert isinstance(got["d"], Dead) and got["d"].status == 404


async def test_batch_read_by_unique_id_property(hs: HubSpotClient, sandbox: SandboxHandle) -> None:
    """batchReadCalls with idProperty reads calls by a unique property's value."""
    answer = sandbox.client.post(
        "/crm/v3/properties/calls",
        headers=sandbox.headers,
        json={
            "name": "hubspot_client_test_key",
            "label": "test key",
            "type": "string",
            "fieldType": "text",
            "groupName": "callinformation",
            "hasUniqueValue": True,
        },
    )
    assert answer.status_code in (201, 409)  # defined once per sandbox session
    created = await hs.create_call(call_props("keyed", hubspot_client_test_key="k-1"))
    read = await hs.batch_read_calls(["k-1"], id_property="hubspot_client_test_key")
    assert [c.id for c in read.results] == [created.id]


async def test_batch_update_and_207_for_unknown_ids(hs: HubSpotClient) -> None:
    """batchUpdateCalls updates; unknown ids are 207 item errors mapped back via ids."""
    ids = await _create_many(hs, 2)
    inputs = [update_input(i, {"hs_call_title": f"updated {i}"}, trace_id=f"t{i}") for i in ids]
    done = await hs.batch_update_calls(inputs)
    assert done.http_status == 200
    assert {c.properties["hs_call_title"] for c in done.results} == {f"updated {i}" for i in ids}

    mixed = [*inputs, update_input("424242", {"hs_call_title": "x"}, trace_id="ghost")]
    answer = await hs.batch_update_calls(mixed)
    assert answer.http_status == 207
    got = outcomes(207, answer, [f"t{i}" for i in ids] + ["ghost"], ids=[*ids, "424242"])
    assert got[f"t{ids[0]}"] == Ok(ids[0]) and got[f"t{ids[1]}"] == Ok(ids[1])
    assert isinstance(got["ghost"], Dead) and got["ghost"].category == "OBJECT_NOT_FOUND"


async def test_batch_archive_calls(hs: HubSpotClient) -> None:
    """batchArchiveCalls archives; lists then show them only with archived=True."""
    ids = await _create_many(hs, 3)
    await hs.batch_archive_calls(ids[:2])
    live = [c.id async for c in hs.iter_calls()]
    assert live == [ids[2]]
    archived = await hs.list_calls(archived=True)
    assert sorted(c.id for c in archived.results) == sorted(ids[:2])


async def test_gdpr_delete_call(hs: HubSpotClient) -> None:
    """gdprDeleteCall removes the call for good (not even archived)."""
    created = await hs.create_call(call_props("to forget"))
    await hs.gdpr_delete_call(created.id)
    with pytest.raises(HubSpotNotFound):
        await hs.get_call_by_id(created.id, archived=True)


async def test_batch_limits_and_whole_batch_400(hs: HubSpotClient, sandbox: SandboxHandle) -> None:
    """Over 100 inputs is refused locally; an untraced batch with a bad input is a 400."""
    with pytest.raises(ValueError, match="at most 100"):
        await hs.batch_create_calls([create_input(call_props("x"))] * 101)
    sandbox.faults(reject={"property": "hs_call_title", "value": "REJECT-ME"})
    untraced = [CallCreateInput(properties=call_props(t)) for t in ("ok", "REJECT-ME")]
    with pytest.raises(HubSpotValidationError) as caught:
        await hs.batch_create_calls(untraced)
    assert caught.value.status == 400 and caught.value.correlation_id
    assert sandbox.stats()["records"]["calls"] == 0  # nothing of the batch was written


async def test_207_item_errors_matched_by_trace_id(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """A traced batch create with rejected inputs: 207, errors keyed by objectWriteTraceId."""
    sandbox.faults(reject={"property": "hs_call_title", "value": "REJECT-ME"})
    titles = ["one", "REJECT-ME", "two", "REJECT-ME"]
    traces = [f"trace-{n}" for n in range(4)]
    inputs = [
        create_input(call_props(t), trace_id=tr) for t, tr in zip(titles, traces, strict=True)
    ]
    answer = await hs.batch_create_calls(inputs)
    assert answer.http_status == 207
    got = outcomes(207, answer, traces)
    for trace in ("trace-1", "trace-3"):
        assert isinstance(got[trace], Dead)
        assert (got[trace].category, got[trace].status) == ("VALIDATION_ERROR", 400)
    assert len(answer.results) == 2


async def test_207_successes_matched_by_echoed_trace_id(
    hs: HubSpotClient, sandbox: SandboxHandle
) -> None:
    """Created objects echo their objectWriteTraceId, so successes in a 207 map to inputs."""
    sandbox.faults(reject={"property": "hs_call_title", "value": "REJECT-ME"})
    inputs = [
        create_input(call_props("one"), trace_id="a"),
        create_input(call_props("REJECT-ME"), trace_id="b"),
    ]
    answer = await hs.batch_create_calls(inputs)
    got = outcomes(answer.http_status, answer, ["a", "b"])
    assert got["a"] == Ok(answer.results[0].id)
    assert isinstance(got["b"], Dead)


SEARCH_DATA = {
    "A": call_props(
        "Alpha discovery call",
        hs_call_duration="1000",
        hs_call_direction="INBOUND",
        hs_call_status="COMPLETED",
        hs_call_body="notes",
    ),
    "B": call_props(
        "Beta follow up",
        hs_call_duration="2000",
        hs_call_direction="OUTBOUND",
        hs_call_status="NO_ANSWER",
    ),
    "C": call_props(
        "Gamma review",
        hs_call_duration="3000",
        hs_call_direction="OUTBOUND",
        hs_call_status="BUSY",
    ),
}

OPERATOR_CASES = [
    (Filter(property_name="hs_call_direction", operator="EQ", value="INBOUND"), "A"),
    (Filter(property_name="hs_call_direction", operator="NEQ", value="INBOUND"), "BC"),
    (Filter(property_name="hs_call_duration", operator="LT", value="2000"), "A"),
    (Filter(property_name="hs_call_duration", operator="LTE", value="2000"), "AB"),
    (Filter(property_name="hs_call_duration", operator="GT", value="2000"), "C"),
    (Filter(property_name="hs_call_duration", operator="GTE", value="2000"), "BC"),
    (
        Filter(
            property_name="hs_call_duration", operator="BETWEEN", value="1500", high_value="3000"
        ),
        "BC",
    ),
    (
        Filter(property_name="hs_call_status", operator="IN", values=["COMPLETED", "NO_ANSWER"]),
        "AB",
    ),
    (Filter(property_name="hs_call_status", operator="NOT_IN", values=["COMPLETED"]), "BC"),
    (Filter(property_name="hs_call_body", operator="HAS_PROPERTY"), "A"),
    (Filter(property_name="hs_call_body", operator="NOT_HAS_PROPERTY"), "BC"),
    (Filter(property_name="hs_call_title", operator="CONTAINS_TOKEN", value="discovery"), "A"),
    (Filter(property_name="hs_call_title", operator="NOT_CONTAINS_TOKEN", value="discovery"), "BC"),
]


async def test_search_with_every_operator(hs: HubSpotClient) -> None:
    """searchCalls honours each of the 13 filter operators, a query and a sort."""
    names: dict[str, str] = {}
    for name, props in SEARCH_DATA.items():
        names[(await hs.create_call(props)).id] = name
    assert {f.operator for f, _ in OPERATOR_CASES} == set(OPERATORS)
    for flt, expected in OPERATOR_CASES:
        found = await hs.search_calls(
            SearchRequest(filter_groups=[FilterGroup(filters=[flt])], properties=["hs_call_title"])
        )
        assert "".join(sorted(names[c.id] for c in found.results)) == expected, flt.operator
        assert found.total == len(expected)

    by_query = await hs.search_calls(SearchRequest(query="Gamma"))
    assert [names[c.id] for c in by_query.results] == ["C"]
    ordered = await hs.search_calls(
        SearchRequest(
            sorts=[Sort(property_name="hs_call_duration", direction="DESCENDING")],
            properties=["hs_call_duration"],
        )
    )
    assert [names[c.id] for c in ordered.results] == ["C", "B", "A"]
    either = [OPERATOR_CASES[0][0], OPERATOR_CASES[4][0]]  # EQ INBOUND (A) or GT 2000 (C)
    two_groups = await hs.search_calls(
        SearchRequest(filter_groups=[FilterGroup(filters=[f]) for f in either])
    )
    assert sorted(names[c.id] for c in two_groups.results) == ["A", "C"]


async def test_iter_search_calls_walks_every_page(hs: HubSpotClient) -> None:
    """iter_search_calls follows the search cursor to the last page."""
    ids = await _create_many(hs, 25, prefix="paged")
    request = SearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[
                    Filter(property_name="hs_call_title", operator="CONTAINS_TOKEN", value="paged")
                ]
            )
        ],
        limit=10,
    )
    first = await hs.search_calls(request)
    assert first.total == 25 and len(first.results) == 10 and first.after
    found = [c.id async for c in hs.iter_search_calls(request)]
    assert sorted(found) == sorted(ids)
