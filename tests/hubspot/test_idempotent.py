"""Idempotent creates by a unique key, through the client against the sandbox: reads and
upserts by ``idProperty`` see writes at once, and a second create of one key is refused
in HubSpot's words, which the wire helpers read back to the holder's id."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator

import pytest

from service.hubspot import (
    CallCreateInput,
    Dead,
    Filter,
    FilterGroup,
    HubSpotClient,
    HubSpotValidationError,
    Ok,
    SearchRequest,
    conflicts_by_trace,
    create_input,
    outcomes,
    unique_conflict,
    upsert_input,
)
from service.hubspot.setup import CALL_KEY_PROPERTY, ensure_call_key_property
from tests.fixtures.sandbox import SandboxHandle
from tests.hubspot.conftest import InProcessSandbox, call_props

KEY = CALL_KEY_PROPERTY


def keyed(n: int, *, trace: bool = True, title: str | None = None) -> CallCreateInput:
    props = call_props(title or f"call {n}", **{KEY: f"twilio:CA{n}"})
    return create_input(props, trace_id=f"t{n}" if trace else None)


@pytest.fixture
async def hs(inproc: InProcessSandbox) -> AsyncIterator[HubSpotClient]:
    """A client on a fresh in-process sandbox that has the call-key property."""
    async with inproc.client() as client:
        await ensure_call_key_property(client)
        yield client


async def test_batch_read_by_key_sees_writes_despite_index_lag(
    hs: HubSpotClient, inproc: InProcessSandbox
) -> None:
    """With search lagging 10 minutes, batch read by the unique key finds creates at once."""
    await inproc.faults(index_delay_ms=600_000)
    created = await hs.batch_create_calls([keyed(n) for n in range(3)])
    assert created.http_status == 201
    keys = [f"twilio:CA{n}" for n in range(3)]
    search = SearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name=KEY, operator="IN", values=keys)])]
    )
    assert (await hs.search_calls(search)).total == 0  # the index has not caught up
    read = await hs.batch_read_calls([*keys, "twilio:missing"], id_property=KEY)
    assert read.http_status == 207
    assert {c.properties[KEY]: c.id for c in read.results} == {
        c.properties[KEY]: c.id for c in created.results
    }
    assert read.errors[0].category == "OBJECT_NOT_FOUND"
    assert read.errors[0].context["ids"] == ["twilio:missing"]


async def test_upsert_creates_then_updates_by_key(
    hs: HubSpotClient, inproc: InProcessSandbox
) -> None:
    """batch/upsert by the key creates unknown keys (new) and updates known ones in place."""
    inputs = [
        upsert_input(f"k{n}", call_props(f"first {n}"), id_property=KEY, trace_id=f"u{n}")
        for n in range(2)
    ]
    first = await hs.batch_upsert_calls(inputs)
    assert first.http_status == 200
    assert [(r.new, r.object_write_trace_id) for r in first.results] == [(True, "u0"), (True, "u1")]
    assert {r.properties[KEY] for r in first.results} == {"k0", "k1"}
    again = [upsert_input("k0", {"hs_call_title": "second"}, id_property=KEY, trace_id="v0")]
    second = await hs.batch_upsert_calls(again)
    assert second.results[0].new is False
    assert second.results[0].id == first.results[0].id
    assert second.results[0].properties["hs_call_title"] == "second"
    assert (await inproc.stats())["records"]["calls"] == 2
    got = outcomes(second.http_status, second, ["v0"])
    assert got == {"v0": Ok(first.results[0].id)}


async def test_upsert_by_a_non_unique_property_is_hubspots_400(hs: HubSpotClient) -> None:
    """Upserting by a property without unique values is refused as HubSpot does."""
    with pytest.raises(HubSpotValidationError) as refused:
        await hs.batch_upsert_calls(
            [upsert_input("x", call_props("x"), id_property="hs_call_title")]
        )
    assert refused.value.message.startswith(
        "Unable to perform update/upsert by non-unique 0-48 property hs_call_title"
    )


async def test_create_with_a_taken_key_is_a_unique_conflict(hs: HubSpotClient) -> None:
    """A single create of an existing key: 400 naming the holder, read by unique_conflict."""
    first = await hs.create_call(call_props("one", **{KEY: "twilio:CA9"}))
    with pytest.raises(HubSpotValidationError) as refused:
        await hs.create_call(call_props("two", **{KEY: "twilio:CA9"}))
    assert refused.value.status == 400 and refused.value.category == "VALIDATION_ERROR"
    conflict = unique_conflict(refused.value)
    assert conflict is not None
    assert (conflict.existing_id, conflict.property, conflict.value) == (
        first.id,
        KEY,
        "twilio:CA9",
    )
    assert conflict.object_id != first.id  # the id HubSpot had allocated for the refused one


async def test_traced_batch_create_conflict_is_a_207_item(
    hs: HubSpotClient, inproc: InProcessSandbox
) -> None:
    """A traced batch: the taken key is one 207 item error; the other input is created."""
    existing = await hs.create_call(call_props("old", **{KEY: "twilio:CA1"}))
    answer = await hs.batch_create_calls([keyed(1), keyed(2)])
    assert answer.http_status == 207
    found = conflicts_by_trace(answer, ["t1", "t2"])
    assert list(found) == ["t1"]
    assert found["t1"].existing_id == existing.id and found["t1"].value == "twilio:CA1"
    got = outcomes(answer.http_status, answer, ["t1", "t2"])
    assert isinstance(got["t1"], Dead) and got["t1"].category == "VALIDATION_ERROR"
    assert isinstance(got["t2"], Ok)
    assert (await inproc.stats())["records"]["calls"] == 2


async def test_untraced_batch_create_conflict_fails_the_whole_batch(
    hs: HubSpotClient, inproc: InProcessSandbox
) -> None:
    """Untraced, a taken key fails the whole batch (400, first conflict named), nothing made."""
    existing = await hs.create_call(call_props("old", **{KEY: "twilio:CA2"}))
    with pytest.raises(HubSpotValidationError) as refused:
        await hs.batch_create_calls([keyed(1, trace=False), keyed(2, trace=False)])
    conflict = unique_conflict(refused.value)
    assert conflict is not None and conflict.existing_id == existing.id
    assert conflict.value == "twilio:CA2"
    assert (await inproc.stats())["records"]["calls"] == 1


async def test_whole_batch_fault_fails_a_traced_conflict_batch(
    hs: HubSpotClient, inproc: InProcessSandbox
) -> None:
    """reject_whole_batch: even a traced batch fails whole on a conflict (a stricter HubSpot)."""
    await hs.create_call(call_props("old", **{KEY: "twilio:CA1"}))
    await inproc.faults(reject_whole_batch=True)
    with pytest.raises(HubSpotValidationError) as refused:
        await hs.batch_create_calls([keyed(1), keyed(2)])
    assert unique_conflict(refused.value) is not None
    assert (await inproc.stats())["records"]["calls"] == 1


async def test_upsert_is_retried_after_an_unanswered_attempt_without_duplicates(
    sandbox: SandboxHandle,
) -> None:
    """An upsert applied but answered too late is retried (it is keyed) and makes one call."""
    sandbox.reset(properties=True)
    async with HubSpotClient(
        sandbox.url, sandbox.token, rate=100_000, timeout_s=0.5, deadline_s=20.0
    ) as hs:
        await ensure_call_key_property(hs)
        sandbox.faults(latency_after_ms=2_000, operations=["batchUpsertCalls"])
        timer = threading.Timer(1.2, sandbox.clear_faults)
        timer.start()
        started = time.monotonic()
        try:
            answer = await hs.batch_upsert_calls(
                [upsert_input("twilio:CA7", call_props("late"), id_property=KEY, trace_id="x")]
            )
        finally:
            timer.cancel()
        assert time.monotonic() - started > 1.0  # it did wait out unanswered attempts
    # new=False: an earlier, unanswered attempt had created it; the retry only updated it
    assert answer.http_status == 200 and answer.results[0].new is False
    assert sandbox.stats()["records"]["calls"] == 1
