"""The schemathesis conformance run of ``test_conformance.py`` against the date-based
path family: the shared spec, rewritten at import time from ``/crm/v3/objects/calls``
to ``/crm/objects/2026-03/calls`` (HubSpot's 2026-03 paths take the same bodies and
answer the same shapes), every operation, no 5xx, every answer conforming."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import settings

from tests.fixtures.sandbox import SandboxServer
from tests.sandbox.test_conformance import BOUNDS, SPEC, _call, live_call_ids

__all__ = ["live_call_ids"]  # the fixture, shared

VERSION = "2026-03"

if not SPEC.exists():  # pragma: no cover - depends on the checkout
    pytest.skip(f"HubSpot spec not found at {SPEC}", allow_module_level=True)

_text = SPEC.read_text().replace("/crm/v3/objects/calls", f"/crm/objects/{VERSION}/calls")
assert "/crm/v3/" not in _text
_dated = Path(tempfile.mkdtemp(prefix="callbridge-spec-")) / "hubspot-calls-2026-03.yml"
_dated.write_text(_text)
schema = schemathesis.openapi.from_path(_dated)


def test_the_rewritten_spec_has_only_dated_paths() -> None:
    paths = list(schema.raw_schema["paths"])
    assert len(paths) == 8 and all(p.startswith(f"/crm/objects/{VERSION}/calls") for p in paths)


@schema.exclude(operation_id="batchCreateCalls").parametrize()
@settings(max_examples=10, **BOUNDS)
def test_dated_operation_conforms(
    case: Any, sandbox_server: SandboxServer, live_call_ids: list[str]
) -> None:
    """Generated requests to each operation on the 2026-03 paths: answers match the spec."""
    _call(case, sandbox_server.url, live_call_ids)


@schema.include(operation_id="batchCreateCalls").parametrize()
@settings(max_examples=4, **BOUNDS)
def test_dated_batch_create_conforms(
    case: Any, sandbox_server: SandboxServer, live_call_ids: list[str]
) -> None:
    """Generated batch creates on the 2026-03 path: answers match the spec."""
    _call(case, sandbox_server.url, live_call_ids)


def test_the_requests_hit_the_dated_routes(sandbox_server: SandboxServer) -> None:
    """(After the generated cases.) The sandbox counted them under version 2026-03, for
    every one of the spec's operations."""
    stats = httpx.get(sandbox_server.url + "/_sandbox/stats").json()
    dated = stats["versions"].get(VERSION, {})
    spec_ops = {
        "listCalls",
        "createCall",
        "getCallById",
        "updateCall",
        "archiveCall",
        "batchCreateCalls",
        "batchReadCalls",
        "batchUpdateCalls",
        "batchArchiveCalls",
        "searchCalls",
        "gdprDeleteCall",
    }
    assert spec_ops <= set(dated), sorted(spec_ops - set(dated))
