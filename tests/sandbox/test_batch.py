"""Batch operations over real HTTP: limits, 201/207/400 semantics, trace ids, idProperty."""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import TS, Api, call_input


def traced(n: int, **extra: str) -> dict[str, object]:
    """A batch-create input carrying an objectWriteTraceId."""
    return {**call_input(n, **extra), "objectWriteTraceId": f"trace-{n}"}


def test_batch_create_201_and_batch_inputs_recorded(sandbox: SandboxHandle, api: Api) -> None:
    """batchCreateCalls: 201 COMPLETE with every record, and the batch size in the stats."""
    r = api.batch_create([call_input(n) for n in range(100)])
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "COMPLETE" and len(body["results"]) == 100
    assert "startedAt" in body and "completedAt" in body and "errors" not in body
    api.batch_create([call_input(n) for n in range(37)])
    stats = sandbox.stats()
    assert stats["batch_inputs"]["batchCreateCalls"] == [100, 37]
    assert stats["records"]["calls"] == 137


def test_batch_over_100_inputs_is_400(api: Api) -> None:
    """Every batch endpoint refuses more than 100 inputs with 400."""
    assert api.batch_create([call_input(n) for n in range(101)]).status_code == 400
    ids = [{"id": str(n)} for n in range(101)]
    assert api.post("/crm/v3/objects/calls/batch/read", {"inputs": ids}).status_code == 400
    assert api.post("/crm/v3/objects/calls/batch/archive", {"inputs": ids}).status_code == 400
    upd = [{"id": str(n), "properties": {}} for n in range(101)]
    assert api.post("/crm/v3/objects/calls/batch/update", {"inputs": upd}).status_code == 400


def test_failing_input_without_trace_ids_fails_whole_batch(
    sandbox: SandboxHandle, api: Api
) -> None:
    """Without objectWriteTraceIds one bad input is a 400 for the batch, nothing created."""
    r = api.batch_create([call_input(1), {"properties": {"hs_call_title": "no timestamp"}}])
    assert r.status_code == 400
    assert r.json()["category"] == "VALIDATION_ERROR"
    assert sandbox.stats()["records"]["calls"] == 0


def test_failing_input_with_trace_ids_is_a_207_item_error(api: Api) -> None:
    """With objectWriteTraceIds on every input, failures are per item in a 207."""
    bad = {"properties": {"hs_call_title": "no timestamp"}, "objectWriteTraceId": "trace-bad"}
    r = api.batch_create([traced(1), bad, traced(2)])
    assert r.status_code == 207
    body = r.json()
    assert len(body["results"]) == 2
    assert body["numErrors"] == 1
    err = body["errors"][0]
    assert err["status"] == "error" and err["category"] == "VALIDATION_ERROR"
    assert err["context"]["objectWriteTraceId"] == ["trace-bad"]
    assert "hs_timestamp" in err["message"]


def test_trace_ids_on_only_some_inputs_still_fail_whole_batch(api: Api) -> None:
    """Per-item errors need a trace id on *every* input."""
    bad = {"properties": {"hs_call_title": "x"}, "objectWriteTraceId": "t"}
    assert api.batch_create([call_input(1), bad]).status_code == 400


def test_reject_fault_is_per_item_with_trace_ids(sandbox: SandboxHandle, api: Api) -> None:
    """The reject fault fails matching inputs: 207 item errors with trace ids, else 400."""
    sandbox.faults(reject={"property": "hs_call_title", "value": "REJECT-ME"})
    inputs = [traced(1), traced(2, hs_call_title="REJECT-ME"), traced(3)]
    r = api.batch_create(inputs)
    assert r.status_code == 207
    body = r.json()
    assert [x["properties"]["hs_call_title"] for x in body["results"]] == ["call 1", "call 3"]
    assert body["errors"][0]["context"]["objectWriteTraceId"] == ["trace-2"]
    assert body["errors"][0]["category"] == "VALIDATION_ERROR"
    plain = [call_input(1), call_input(2, hs_call_title="REJECT-ME")]
    assert api.batch_create(plain).status_code == 400
    single = api.post(
        "/crm/v3/objects/calls", {"properties": {"hs_timestamp": TS, "hs_call_title": "REJECT-ME"}}
    )
    assert single.status_code == 400
    sandbox.clear_faults()
    assert api.batch_create(plain).status_code == 201


def test_unique_property_conflicts(sandbox: SandboxHandle, api: Api) -> None:
    """hasUniqueValue: HubSpot's 400 "... already has that value." on create/update (the
    holder named); per item with trace ids in a batch, else the whole batch, nothing written."""
    api.define_unique()
    first = api.create_call(hs_call_external_id="twilio:CA1")
    r = api.post(
        "/crm/v3/objects/calls",
        {"properties": {"hs_timestamp": TS, "hs_call_external_id": "twilio:CA1"}},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["category"] == "VALIDATION_ERROR" and "context" not in body
    burnt = int(first["id"]) + 1  # the create had allocated an id, as HubSpot's do
    assert body["message"] == (
        "Cannot set PropertyValueCoordinates{portalId=100000001, objectTypeId=ObjectTypeId{"
        "legacyObjectType=CALL}, propertyName=hs_call_external_id, value=twilio:CA1} "
        f"on {burnt}. {first['id']} already has that value."
    )
    other = api.create_call(hs_call_external_id="twilio:CA2")
    assert int(other["id"]) == burnt + 1  # ids never repeat: the burnt one stays a gap
    r = api.patch(
        f"/crm/v3/objects/calls/{other['id']}",
        {"properties": {"hs_call_external_id": "twilio:CA1"}},
    )
    assert r.status_code == 400
    assert r.json()["message"].endswith(f"on {other['id']}. {first['id']} already has that value.")
    r = api.batch_create(
        [traced(1, hs_call_external_id="twilio:CA1"), traced(2, hs_call_external_id="twilio:CA3")]
    )
    assert r.status_code == 207
    err = r.json()["errors"][0]
    assert err["category"] == "VALIDATION_ERROR"
    assert err["context"] == {"objectWriteTraceId": ["trace-1"]}
    assert err["message"].endswith(f"{first['id']} already has that value.")
    assert [x["objectWriteTraceId"] for x in r.json()["results"]] == ["trace-2"]
    before = sandbox.stats()["records"]["calls"]
    r = api.batch_create(
        [
            call_input(1, hs_call_external_id="twilio:CA4"),
            call_input(2, hs_call_external_id="twilio:CA1"),
        ]
    )
    assert r.status_code == 400 and "twilio:CA1" in r.json()["message"]
    assert sandbox.stats()["records"]["calls"] == before  # untraced: nothing written


def test_duplicate_unique_values_within_one_batch(api: Api) -> None:
    """Two inputs of one batch claiming one unique value: the second fails."""
    api.define_unique()
    r = api.batch_create([traced(1, hs_call_external_id="k"), traced(2, hs_call_external_id="k")])
    assert r.status_code == 207
    body = r.json()
    assert len(body["results"]) == 1
    assert body["errors"][0]["context"]["objectWriteTraceId"] == ["trace-2"]
    holder = body["results"][0]["id"]
    assert body["errors"][0]["message"].endswith(f". {holder} already has that value.")


def test_archived_records_release_unique_values(api: Api) -> None:
    """After archiving, a unique value may be used again."""
    api.define_unique()
    call = api.create_call(hs_call_external_id="k")
    api.delete(f"/crm/v3/objects/calls/{call['id']}")
    api.create_call(hs_call_external_id="k")


def test_batch_read_missing_ids_is_207_with_context_ids(api: Api) -> None:
    """batchReadCalls: 200 when all found; 207 OBJECT_NOT_FOUND with context.ids otherwise."""
    ids = [x["id"] for x in api.batch_create([call_input(1), call_input(2)]).json()["results"]]
    r = api.post(
        "/crm/v3/objects/calls/batch/read",
        {"inputs": [{"id": i} for i in ids], "properties": ["hs_call_title"]},
    )
    assert r.status_code == 200
    assert [x["properties"]["hs_call_title"] for x in r.json()["results"]] == ["call 1", "call 2"]
    r = api.post(
        "/crm/v3/objects/calls/batch/read", {"inputs": [{"id": ids[0]}, {"id": "42"}, {"id": "43"}]}
    )
    assert r.status_code == 207
    err = r.json()["errors"][0]
    assert err["category"] == "OBJECT_NOT_FOUND" and err["context"]["ids"] == ["42", "43"]


def test_batch_read_by_id_property(api: Api) -> None:
    """idProperty works with hs_object_id and unique properties; others are 400."""
    api.define_unique()
    api.batch_create(
        [call_input(1, hs_call_external_id="p:1"), call_input(2, hs_call_external_id="p:2")]
    )
    r = api.post(
        "/crm/v3/objects/calls/batch/read",
        {
            "idProperty": "hs_call_external_id",
            "inputs": [{"id": "p:1"}, {"id": "p:2"}, {"id": "p:3"}],
        },
    )
    assert r.status_code == 207
    found = {x["properties"]["hs_call_external_id"] for x in r.json()["results"]}
    assert found == {"p:1", "p:2"}
    assert r.json()["errors"][0]["context"]["ids"] == ["p:3"]
    some = r.json()["results"][0]["id"]
    r = api.post(
        "/crm/v3/objects/calls/batch/read", {"idProperty": "hs_object_id", "inputs": [{"id": some}]}
    )
    assert r.status_code == 200
    r = api.post(
        "/crm/v3/objects/calls/batch/read",
        {"idProperty": "hs_call_title", "inputs": [{"id": "call 1"}]},
    )
    assert r.status_code == 400
    assert r.json()["category"] == "VALIDATION_ERROR"


def test_batch_read_archived(api: Api) -> None:
    """batch/read with archived=true reads archived records."""
    call = api.create_call()
    api.delete(f"/crm/v3/objects/calls/{call['id']}")
    body = {"inputs": [{"id": call["id"]}]}
    assert api.post("/crm/v3/objects/calls/batch/read", body).status_code == 207
    r = api.post("/crm/v3/objects/calls/batch/read?archived=true", body)
    assert r.status_code == 200 and r.json()["results"][0]["archived"] is True


def test_batch_update_missing_ids_are_item_errors(api: Api) -> None:
    """batchUpdateCalls: 200 when all exist, 207 with OBJECT_NOT_FOUND items otherwise."""
    ids = [x["id"] for x in api.batch_create([call_input(1), call_input(2)]).json()["results"]]
    upd = [{"id": i, "properties": {"hs_call_title": f"new {i}"}} for i in ids]
    r = api.post("/crm/v3/objects/calls/batch/update", {"inputs": upd})
    assert r.status_code == 200
    assert {x["properties"]["hs_call_title"] for x in r.json()["results"]} == {
        f"new {i}" for i in ids
    }
    r = api.post(
        "/crm/v3/objects/calls/batch/update",
        {
            "inputs": [
                upd[0],
                {"id": "404404", "properties": {"hs_call_title": "x"}, "objectWriteTraceId": "t9"},
            ]
        },
    )
    assert r.status_code == 207
    err = r.json()["errors"][0]
    assert err["category"] == "OBJECT_NOT_FOUND"
    assert err["context"]["ids"] == ["404404"] and err["context"]["objectWriteTraceId"] == ["t9"]


def test_batch_update_invalid_value_fails_batch_unless_traced(api: Api) -> None:
    """A bad value in a batch update: 400 for the batch, or a 207 item with trace ids."""
    ids = [x["id"] for x in api.batch_create([call_input(1), call_input(2)]).json()["results"]]
    bad = [
        {"id": ids[0], "properties": {"hs_call_duration": "long"}},
        {"id": ids[1], "properties": {"hs_call_title": "ok"}},
    ]
    assert api.post("/crm/v3/objects/calls/batch/update", {"inputs": bad}).status_code == 400
    for n, item in enumerate(bad):
        item["objectWriteTraceId"] = f"t{n}"
    r = api.post("/crm/v3/objects/calls/batch/update", {"inputs": bad})
    assert r.status_code == 207
    assert r.json()["errors"][0]["context"]["objectWriteTraceId"] == ["t0"]
    assert r.json()["results"][0]["properties"]["hs_call_title"] == "ok"


def test_batch_archive_204(api: Api) -> None:
    """batchArchiveCalls: 204, records archived, unknown ids ignored."""
    ids = [x["id"] for x in api.batch_create([call_input(1), call_input(2)]).json()["results"]]
    r = api.post("/crm/v3/objects/calls/batch/archive", {"inputs": [{"id": ids[0]}, {"id": "777"}]})
    assert r.status_code == 204
    assert [x["id"] for x in api.get("/crm/v3/objects/calls").json()["results"]] == [ids[1]]


def test_created_objects_echo_their_trace_ids(api: Api) -> None:
    """batch create/update results carry the input's objectWriteTraceId, as HubSpot's do."""
    r = api.batch_create([traced(1), traced(2)])
    assert [x["objectWriteTraceId"] for x in r.json()["results"]] == ["trace-1", "trace-2"]
    ids = [x["id"] for x in r.json()["results"]]
    upd = [
        {"id": i, "properties": {"hs_call_title": "u"}, "objectWriteTraceId": f"u-{i}"} for i in ids
    ]
    r = api.post("/crm/v3/objects/calls/batch/update", {"inputs": upd})
    assert {x["objectWriteTraceId"] for x in r.json()["results"]} == {f"u-{i}" for i in ids}
    plain = api.batch_create([call_input(3)]).json()["results"][0]
    assert "objectWriteTraceId" not in plain


def test_batch_upsert_by_unique_property(sandbox: SandboxHandle, api: Api) -> None:
    """batch/upsert creates unknown keys and updates known ones, saying which is new."""
    api.define_unique()
    first = api.create_call(hs_call_external_id="k1", hs_call_title="old")
    inputs = [
        {"idProperty": "hs_call_external_id", "id": "k1", "properties": {"hs_call_title": "new"}},
        {"idProperty": "hs_call_external_id", "id": "k2", "properties": {"hs_timestamp": TS}},
    ]
    r = api.post("/crm/v3/objects/calls/batch/upsert", {"inputs": inputs})
    assert r.status_code == 200, r.text
    results = {x["properties"]["hs_call_external_id"]: x for x in r.json()["results"]}
    assert results["k1"]["new"] is False and results["k1"]["id"] == first["id"]
    assert results["k1"]["properties"]["hs_call_title"] == "new"
    assert results["k2"]["new"] is True
    assert sandbox.stats()["records"]["calls"] == 2
    bad = [{"idProperty": "hs_call_title", "id": "x", "properties": {}}]
    r = api.post("/crm/v3/objects/calls/batch/upsert", {"inputs": bad})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    assert r.json()["message"].startswith(
        "Unable to perform update/upsert by non-unique 0-48 property hs_call_title"
    )
    missing_ts = [
        {
            "idProperty": "hs_call_external_id",
            "id": "k3",
            "properties": {},
            "objectWriteTraceId": "t",
        }
    ]
    r = api.post("/crm/v3/objects/calls/batch/upsert", {"inputs": missing_ts})
    assert r.status_code == 207 and r.json()["errors"][0]["context"]["objectWriteTraceId"] == ["t"]


def test_batch_upsert_conflict_on_another_unique_property(sandbox: SandboxHandle, api: Api) -> None:
    """Upsert by one key that would duplicate another unique value: per item when traced,
    the whole batch when not (nothing written), or always whole with reject_whole_batch."""
    api.define_unique()
    api.define_unique("callbridge_call_key")
    holder = api.create_call(hs_call_external_id="taken")

    def item(key: str, ext: str, trace: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {
            "idProperty": "callbridge_call_key",
            "id": key,
            "properties": {"hs_timestamp": TS, "hs_call_external_id": ext},
        }
        if trace:
            out["objectWriteTraceId"] = trace
        return out

    r = api.post(
        "/crm/v3/objects/calls/batch/upsert",
        {"inputs": [item("a", "taken", "ta"), item("b", "free", "tb")]},
    )
    assert r.status_code == 207
    err = r.json()["errors"][0]
    assert err["context"] == {"objectWriteTraceId": ["ta"]}
    assert err["message"].endswith(f"{holder['id']} already has that value.")
    assert [x["properties"]["callbridge_call_key"] for x in r.json()["results"]] == ["b"]
    before = sandbox.stats()["records"]["calls"]
    r = api.post(
        "/crm/v3/objects/calls/batch/upsert", {"inputs": [item("c", "free2"), item("d", "taken")]}
    )
    assert r.status_code == 400 and "already has that value" in r.json()["message"]
    assert sandbox.stats()["records"]["calls"] == before
    sandbox.faults(reject_whole_batch=True)
    r = api.post(
        "/crm/v3/objects/calls/batch/upsert",
        {"inputs": [item("e", "free3", "te"), item("f", "taken", "tf")]},
    )
    assert r.status_code == 400
    assert sandbox.stats()["records"]["calls"] == before
