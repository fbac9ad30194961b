"""The /_sandbox/ fault injection and control API."""

from __future__ import annotations

import time

import httpx

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import Api, call_input


def test_error_rate_answers_chosen_status(sandbox: SandboxHandle, api: Api) -> None:
    """error_rate 1.0 with error_status 503 answers every API request 503 in HubSpot's shape."""
    sandbox.faults(error_rate=1.0, error_status=503)
    r = api.batch_create([call_input(1)])
    assert r.status_code == 503
    assert r.json()["status"] == "error"
    assert sandbox.stats()["records"]["calls"] == 0
    assert sandbox.stats()["requests"]["batchCreateCalls"] == {"503": 1}


def test_error_rate_is_a_rate(sandbox: SandboxHandle, api: Api) -> None:
    """error_rate 0.5 fails roughly half the requests (seeded)."""
    sandbox.faults(error_rate=0.5, seed=7)
    codes = [api.get("/crm/v3/objects/calls").status_code for _ in range(200)]
    failures = codes.count(500)
    assert 60 < failures < 140
    assert set(codes) == {200, 500}


def test_faults_can_target_operations(sandbox: SandboxHandle, api: Api) -> None:
    """``operations`` limits request faults to the named operation ids."""
    sandbox.faults(error_rate=1.0, operations=["batchCreateCalls"])
    assert api.get("/crm/v3/objects/calls").status_code == 200
    assert api.batch_create([call_input(1)]).status_code == 500


def test_rate_limit_burst(sandbox: SandboxHandle, api: Api) -> None:
    """rate_limit_burst N answers the next N requests 429 TEN_SECONDLY_ROLLING."""
    sandbox.faults(rate_limit_burst=2)
    first = api.get("/crm/v3/objects/calls")
    assert first.status_code == 429
    assert first.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert api.get("/crm/v3/objects/calls").status_code == 429
    assert api.get("/crm/v3/objects/calls").status_code == 200


def test_latency(sandbox: SandboxHandle, api: Api) -> None:
    """latency_ms delays answers by at least that long."""
    sandbox.faults(latency_ms=300)
    start = time.monotonic()
    assert api.get("/crm/v3/objects/calls").status_code == 200
    assert time.monotonic() - start >= 0.3


def test_delete_faults_clears_everything(sandbox: SandboxHandle, api: Api) -> None:
    """DELETE /_sandbox/faults turns every fault off."""
    sandbox.faults(
        error_rate=1.0,
        latency_ms=10,
        rate_limit_burst=5,
        reject={"property": "hs_call_title", "value": "x"},
    )
    sandbox.clear_faults()
    got = httpx.get(sandbox.url + "/_sandbox/faults").json()
    assert got["error_rate"] == 0 and got["rate_limit_burst"] == 0 and got["reject"] == []
    assert api.batch_create([call_input(1, hs_call_title="x")]).status_code == 201


def test_bad_fault_settings_are_400(sandbox: SandboxHandle) -> None:
    """Unknown keys and out-of-range values are refused and change nothing."""
    for body in (
        {"nope": 1},
        {"error_rate": 2},
        {"reject": {"property": 1}},
        {"error_status": "x"},
    ):
        r = httpx.post(sandbox.url + "/_sandbox/faults", json=body)
        assert r.status_code == 400, body
    assert httpx.get(sandbox.url + "/_sandbox/faults").json()["error_rate"] == 0


def test_reset_empties_stores_and_stats(sandbox: SandboxHandle, api: Api) -> None:
    """POST /_sandbox/reset removes records and counters."""
    api.batch_create([call_input(1)])
    api.create_contact(email="a@example.com")
    sandbox.reset()
    stats = sandbox.stats()
    assert stats["records"]["calls"] == 0 and stats["records"]["contacts"] == 0
    assert stats["requests"] == {} and stats["timeline"] == []


def test_stats_shape(sandbox: SandboxHandle, api: Api) -> None:
    """stats: requests per operation and status, records, archived, batch sizes, timeline."""
    ids = [x["id"] for x in api.batch_create([call_input(1), call_input(2)]).json()["results"]]
    api.delete(f"/crm/v3/objects/calls/{ids[0]}")
    api.get("/crm/v3/objects/calls/1")
    stats = sandbox.stats()
    assert stats["requests"] == {
        "batchCreateCalls": {"201": 1},
        "archiveCall": {"204": 1},
        "getCallById": {"404": 1},
    }
    assert stats["records"]["calls"] == 1 and stats["archived"]["calls"] == 1
    assert stats["batch_inputs"] == {"batchCreateCalls": [2]}
    times = [row[0] for row in stats["timeline"]]
    assert [row[1] for row in stats["timeline"]] == [
        "batchCreateCalls",
        "archiveCall",
        "getCallById",
    ]
    assert times == sorted(times) and times[-1] <= stats["now"]


def test_latency_after_applies_the_write_before_answering(sandbox) -> None:
    """latency_after_ms: the create has happened by the time the late answer would arrive."""
    import httpx as _httpx

    sandbox.faults(latency_after_ms=1500)
    body = {"inputs": [{"properties": {"hs_timestamp": "2026-01-01T00:00:00Z"}}]}
    try:
        sandbox.client.post(
            "/crm/v3/objects/calls/batch/create", json=body, headers=sandbox.headers, timeout=0.5
        )
    except _httpx.ReadTimeout:
        pass
    else:
        raise AssertionError("the answer should have come after the client gave up")
    assert sandbox.stats()["records"]["calls"] == 1


def test_reject_whole_batch_fails_a_traced_batch_with_400(sandbox) -> None:
    """reject_whole_batch: a rejected input fails the whole (traced) batch with 400, nothing written."""
    sandbox.faults(reject={"property": "hs_call_title", "value": "BAD"}, reject_whole_batch=True)
    inputs = [
        {
            "properties": {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_call_title": title},
            "objectWriteTraceId": f"t{i}",
        }
        for i, title in enumerate(["ok", "BAD", "ok"])
    ]
    response = sandbox.client.post(
        "/crm/v3/objects/calls/batch/create", json={"inputs": inputs}, headers=sandbox.headers
    )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert sandbox.stats()["records"]["calls"] == 0
