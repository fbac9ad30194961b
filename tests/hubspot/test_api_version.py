"""``HubSpotClient(api_version=...)``: the legacy ``/crm/v3`` (v4 associations) paths or
HubSpot's date-based ``/crm/objects/2026-03/…`` family, for calls, contacts, properties
and associations. The in-process sandbox counts requests per API version of the path."""

from __future__ import annotations

import pytest

from service.hubspot import CallCreateInput, Filter, FilterGroup, HubSpotClient, SearchRequest
from service.hubspot.errors import HubSpotValidationError
from service.hubspot.paths import ApiPaths
from service.hubspot.setup import ensure_call_key_property
from tests.hubspot.conftest import InProcessSandbox, call_props


async def _exercise(hs: HubSpotClient) -> None:
    """One request of every kind the writer and set-up send."""
    await ensure_call_key_property(hs)
    created = await hs.create_call(call_props("one"))
    batch = await hs.batch_create_calls(
        [CallCreateInput(call_props(f"b{i}"), object_write_trace_id=f"t{i}") for i in range(3)]
    )
    await hs.batch_read_calls([x.id for x in batch.results], properties=["hs_call_title"])
    await hs.get_call_by_id(created.id)
    await hs.search_calls(
        SearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[Filter(property_name="hs_call_title", operator="EQ", value="one")]
                )
            ]
        )
    )
    contact = await hs.create_contact({"phone": "+14155550142"})
    await hs.search_contacts(
        SearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[Filter(property_name="phone", operator="EQ", value="+14155550142")]
                )
            ]
        )
    )
    await hs.batch_read_contacts([contact.id])
    linked = await hs.batch_create_call_contact_associations([(created.id, contact.id)])
    assert linked.http_status == 201
    got = await hs.get_call_by_id(created.id, associations=["contacts"])
    assert got.associations is not None
    assert [r.id for r in got.associations["contacts"].results] == [contact.id]


async def test_a_2026_03_client_uses_only_the_dated_paths(inproc: InProcessSandbox) -> None:
    async with inproc.client(api_version="2026-03") as hs:
        assert hs.paths.calls == "/crm/objects/2026-03/calls"
        await _exercise(hs)
    versions = (await inproc.stats())["versions"]
    assert set(versions) == {"2026-03"}, versions
    dated = versions["2026-03"]
    for op in (
        "getProperty",
        "createCall",
        "batchCreateCalls",
        "batchReadCalls",
        "searchCalls",
        "createContact",
        "searchContacts",
        "batchReadContacts",
        "batchCreateAssociations",
    ):
        assert dated.get(op, 0) >= 1, op


async def test_the_default_client_keeps_the_legacy_paths(inproc: InProcessSandbox) -> None:
    async with inproc.client() as hs:
        assert hs.paths == ApiPaths.of("v3")
        await _exercise(hs)
    versions = (await inproc.stats())["versions"]
    assert set(versions) == {"v3", "v4"}
    assert versions["v4"] == {"batchCreateAssociations": 1}


async def test_a_2026_09_client_meets_the_portals_validation_rules(
    inproc: InProcessSandbox,
) -> None:
    """From 2026-09 a write breaking an admin rule fails with a validation error naming
    the property; the same write through a 2026-03 client passes."""
    r = await inproc.control.post(
        "/_sandbox/validation-rules",
        json={"rules": [{"object_type": "calls", "property": "hs_call_body"}]},
    )
    assert r.status_code == 200
    async with (
        inproc.client(api_version="2026-03") as old,
        inproc.client(api_version="2026-09") as new,
    ):
        await old.create_call(call_props("fine"))
        with pytest.raises(HubSpotValidationError) as caught:
            await new.create_call(call_props("refused"))
        assert "hs_call_body" in caught.value.message
        await new.create_call(call_props("fine", hs_call_body="notes"))


def test_unknown_api_versions_are_refused() -> None:
    for bad in ("v4", "2026-04", "2027-03", ""):
        with pytest.raises(ValueError, match="unknown HubSpot api_version"):
            HubSpotClient("http://127.0.0.1:1", "t", api_version=bad)
