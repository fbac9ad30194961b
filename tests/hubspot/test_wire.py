"""The sans-I/O wire layer: payloads, batching and reading batch answers into outcomes."""

from __future__ import annotations

import ast
import pathlib

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.hubspot import wire
from service.hubspot.models import (
    BatchError,
    CallBatchResponse,
    CrmObject,
    ErrorBody,
    Filter,
    FilterGroup,
    SearchRequest,
    encode,
)
from service.hubspot.wire import Dead, Ok, Retry, outcomes

PURE_MODULES = ["wire", "models", "errors", "pacing"]
IO_LIBRARIES = {"httpx", "asyncio", "anyio", "tenacity", "aiokafka", "starlette", "structlog"}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_io_library(module: str) -> None:
    """wire, models, errors and pacing import no httpx/asyncio (sans-I/O)."""
    path = pathlib.Path(wire.__file__).with_name(f"{module}.py")
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
            if node.module.startswith("service.hubspot."):
                assert node.module.removeprefix("service.hubspot.") in PURE_MODULES
    assert not imported & IO_LIBRARIES


def test_chunks_split_into_batches_of_at_most_100() -> None:
    """chunks() keeps order and never yields more than the batch size."""
    items = list(range(250))
    parts = list(wire.chunks(items))
    assert [len(p) for p in parts] == [100, 100, 50]
    assert [x for p in parts for x in p] == items
    assert list(wire.chunks([])) == []
    with pytest.raises(ValueError):
        list(wire.chunks(items, 0))


def test_check_batch_refuses_more_than_100() -> None:
    """A batch over HubSpot's 100 inputs is refused before it is sent."""
    wire.check_batch([1] * 100)
    with pytest.raises(ValueError, match="at most 100"):
        wire.check_batch([1] * 101)


def test_create_input_payload_shape() -> None:
    """A create input carries properties, the trace id and typed associations."""
    body = wire.create_input(
        {"hs_call_title": "t", "hs_timestamp": "2026-01-01T00:00:00Z"},
        trace_id="trace-1",
        associations={"contacts": ["101"], "companies": ["7"]},
    )
    assert orjson.loads(encode(body)) == {
        "properties": {"hs_call_title": "t", "hs_timestamp": "2026-01-01T00:00:00Z"},
        "associations": [
            {
                "to": {"id": "101"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
            },
            {
                "to": {"id": "7"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 182}],
            },
        ],
        "objectWriteTraceId": "trace-1",
    }


def test_unset_request_fields_are_left_out() -> None:
    """Request bodies omit what the caller did not set (no nulls, no empty lists)."""
    assert orjson.loads(encode(wire.create_input({"a": "b"}))) == {"properties": {"a": "b"}}
    assert orjson.loads(encode(wire.update_input("5", {"a": "b"}))) == {
        "id": "5",
        "properties": {"a": "b"},
    }
    search = SearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="p", operator="EQ", value="v")])]
    )
    assert orjson.loads(encode(search)) == {
        "filterGroups": [{"filters": [{"propertyName": "p", "operator": "EQ", "value": "v"}]}]
    }  # limit 10 is HubSpot's default too


def test_v4_association_pair_shape() -> None:
    """The v4 batch association input is {from:{id}, to:{id}, types:[...]}."""
    assert orjson.loads(encode(wire.association_pair("1", "2"))) == {
        "from": {"id": "1"},
        "to": {"id": "2"},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
    }


def _call(id: str, trace: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "id": id,
        "properties": {"hs_call_title": "x"},
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
        "archived": False,
    }
    if trace:
        out["objectWriteTraceId"] = trace
    return out


def test_207_create_outcomes_are_matched_by_trace_id() -> None:
    """A 207 gives ok for echoed trace ids, dead for item errors, retry for the unmentioned."""
    body = orjson.dumps(
        {
            "status": "COMPLETE",
            "results": [_call("11", "b"), _call("10", "a")],
            "errors": [
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "Property values were not valid",
                    "context": {"objectWriteTraceId": ["c"]},
                }
            ],
            "startedAt": "2026-01-01T00:00:00Z",
            "completedAt": "2026-01-01T00:00:01Z",
        }
    )
    got = outcomes(207, body, ["a", "b", "c", "d"], correlation_id="cid-1")
    assert got == {
        "a": Ok("10"),
        "b": Ok("11"),
        "c": Dead("VALIDATION_ERROR", "Property values were not valid", 400, "cid-1"),
        "d": Retry(),
    }


def test_207_update_errors_are_matched_by_context_ids() -> None:
    """Batch update item errors name object ids; they map back to the inputs' trace ids."""
    batch = CallBatchResponse(
        results=[CrmObject(id="1")],
        errors=[
            BatchError(category="OBJECT_NOT_FOUND", message="gone", context={"ids": ["2"]}),
            BatchError(category="RATE_LIMITS", message="later", context={"ids": ["3"]}),
        ],
        http_status=207,
    )
    got = outcomes(207, batch, ["t1", "t2", "t3"], ids=["1", "2", "3"])
    assert got["t1"] == Ok("1")
    assert got["t2"] == Dead("OBJECT_NOT_FOUND", "gone", 404, None)
    assert isinstance(got["t3"], Retry)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, Retry), (500, Retry), (503, Retry), (400, Dead), (404, Dead)],
)
def test_whole_request_failures_settle_every_input(status: int, expected: type) -> None:
    """Retryable statuses retry every input; other failures kill every input."""
    body = orjson.dumps(
        {"status": "error", "category": "VALIDATION_ERROR", "message": "bad", "correlationId": "c"}
    )
    got = outcomes(status, body, ["a", "b"])
    assert set(got) == {"a", "b"}
    assert all(isinstance(o, expected) for o in got.values())
    if expected is Dead:
        assert got["a"] == Dead("VALIDATION_ERROR", "bad", status, "c")


def test_204_archive_is_ok_for_every_input() -> None:
    """A 204 batch archive settles every input as done."""
    assert outcomes(204, b"", ["a", "b"], ids=["1", "2"]) == {"a": Ok("1"), "b": Ok("2")}


def test_duplicate_trace_ids_are_refused() -> None:
    """Trace ids must be unique, or outcomes could not be told apart."""
    with pytest.raises(ValueError):
        outcomes(201, CallBatchResponse(), ["a", "a"])


def test_unreadable_error_body_still_gives_outcomes() -> None:
    """A proxy's HTML 502 page still retries every input."""
    assert outcomes(502, b"<html>bad gateway</html>", ["a"]) == {"a": Retry("HTTP 502")}
    assert outcomes(403, b"<html>no</html>", ["a"])["a"] == Dead(
        "ERROR", "<html>no</html>", 403, None
    )


_traces = st.lists(st.uuids().map(str), min_size=1, max_size=120, unique=True)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), traces=_traces, status=st.sampled_from([200, 201, 207, 400, 429, 503]))
def test_every_trace_id_gets_exactly_one_outcome(
    data: st.DataObject, traces: list[str], status: int
) -> None:
    """Outcome partitioning: each input has exactly one outcome, consistent with the answer."""
    oks = data.draw(st.sets(st.sampled_from(traces)))
    erred = data.draw(st.sets(st.sampled_from(traces)))
    categories = st.sampled_from(["VALIDATION_ERROR", "OBJECT_NOT_FOUND", "RATE_LIMITS"])
    results = [CrmObject(id=f"id-{t}", object_write_trace_id=t) for t in oks]
    results.append(CrmObject(id="stranger", object_write_trace_id="not-ours"))
    errors = [
        BatchError(category=data.draw(categories), message="m", context={"objectWriteTraceId": [t]})
        for t in erred
    ]
    batch = CallBatchResponse(results=results, errors=errors, http_status=status)
    body: bytes | CallBatchResponse | ErrorBody = (
        batch if status < 300 else ErrorBody(message="whole", category="VALIDATION_ERROR")
    )
    got = outcomes(status, body, traces)
    assert list(got) == traces or set(got) == set(traces)
    assert len(got) == len(traces)
    for trace, outcome in got.items():
        assert isinstance(outcome, Ok | Retry | Dead)
        if status >= 300:
            assert isinstance(outcome, Retry if status in (429, 503) else Dead)
        elif trace in oks:
            assert outcome == Ok(f"id-{trace}")
        elif trace in erred:
            assert isinstance(outcome, Dead | Retry)
        else:
            assert outcome == Retry()


def test_bytes_and_decoded_bodies_agree() -> None:
    """outcomes() reads raw bytes exactly as the decoded response."""
    batch = CallBatchResponse(
        results=[CrmObject(id="9", object_write_trace_id="x")],
        errors=[
            BatchError(category="CONFLICT", message="dup", context={"objectWriteTraceId": ["y"]})
        ],
    )
    raw = msgspec.json.encode(batch)
    assert outcomes(207, raw, ["x", "y"]) == outcomes(207, batch, ["x", "y"])


# --- unique-value conflicts (HubSpot's messages, verbatim shapes) ---------------------

CALL_CONFLICT = (
    "Cannot set PropertyValueCoordinates{portalId=44956899, objectTypeId=ObjectTypeId{"
    "legacyObjectType=CALL}, propertyName=callbridge_call_key, value=twilio:CA1} on "
    "552148386511. 552239500007 already has that value."
)


def test_unique_conflict_reads_hubspots_message() -> None:
    """The holder, property and value come out of HubSpot's 400 message; not the burnt id."""
    found = wire.unique_conflict(ErrorBody(message=CALL_CONFLICT, category="VALIDATION_ERROR"))
    assert found == wire.UniqueConflict(
        existing_id="552239500007",
        property="callbridge_call_key",
        value="twilio:CA1",
        object_id="552148386511",
    )
    assert wire.is_unique_conflict(CALL_CONFLICT, "callbridge_call_key")
    assert not wire.is_unique_conflict(CALL_CONFLICT, "hs_call_external_id")


def test_unique_conflict_other_shapes_and_non_conflicts() -> None:
    """Older coordinates, values with commas, the contact 409, and unrelated errors."""
    old = (
        "Cannot set PropertyValueCoordinates{objectType=COMPANY, propertyName=id_hotel, "
        "value=ChIJ123} on 48328838322. 51090765207 already has that value."
    )
    assert wire.unique_conflict(old) == wire.UniqueConflict(
        "51090765207", "id_hotel", "ChIJ123", "48328838322"
    )
    odd = CALL_CONFLICT.replace("value=twilio:CA1}", "value=a, b} on {x}")
    found = wire.unique_conflict(odd)
    assert found is not None and found.value == "a, b} on {x"
    contact = wire.unique_conflict("Contact already exists. Existing ID: 37765128953")
    assert contact == wire.UniqueConflict(existing_id="37765128953")
    assert wire.unique_conflict("Property values were not valid: [...]") is None
    assert wire.unique_conflict(BatchError(category="RATE_LIMITS", message="slow down")) is None


def test_conflicts_by_trace_maps_207_items_to_inputs() -> None:
    """Only conflict items count, and only for the batch's own trace ids."""
    batch = CallBatchResponse(
        errors=[
            BatchError(
                category="VALIDATION_ERROR",
                message=CALL_CONFLICT,
                context={"objectWriteTraceId": ["a", "stranger"]},
            ),
            BatchError(
                category="VALIDATION_ERROR",
                message="Property values were not valid",
                context={"objectWriteTraceId": ["b"]},
            ),
        ],
        http_status=207,
    )
    found = wire.conflicts_by_trace(batch, ["a", "b"])
    assert list(found) == ["a"] and found["a"].existing_id == "552239500007"


def test_upsert_input_payload_shape() -> None:
    """An upsert input is {id, idProperty, properties, objectWriteTraceId} on the wire."""
    body = wire.upsert_input("twilio:CA1", {"hs_call_title": "t"}, id_property="k", trace_id="x")
    assert orjson.loads(encode(body)) == {
        "id": "twilio:CA1",
        "properties": {"hs_call_title": "t"},
        "idProperty": "k",
        "objectWriteTraceId": "x",
    }


def test_create_input_association_types_are_hubspots_own() -> None:
    """Default call association types are HubSpot's; an unknown object type is refused."""
    body = orjson.loads(encode(wire.create_input({"a": "b"}, associations={"deals": ["7"]})))
    assert body["associations"][0]["types"][0]["associationTypeId"] == 206
    with pytest.raises(ValueError, match="widgets"):
        wire.create_input({"a": "b"}, associations={"widgets": ["1"]})
    custom = wire.create_input({"a": "b"}, associations={"x": ["1"]}, type_ids={"x": 5})
    assert custom.associations[0].types[0].association_type_id == 5
