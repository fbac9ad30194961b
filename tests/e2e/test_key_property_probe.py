"""The call-key property unreadable when the writer starts (5xx after the client's
retries): the writer starts in search mode (safe), reads the property again in the
background, and once it is read switches the portal to key mode: its gauges say so and its
next creates carry the key, a create of unknown outcome being resolved by reading by the
key (no search). The switch waits for the creates it sent in search mode whose outcome is
unknown: a read by the key would not find those."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import generate_latest

from service.writer import shell
from tests.e2e.helpers import all_calls
from tests.e2e.kafkaio import produce_events
from tests.e2e.test_writer import PROPS, event, stats_sum
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import wait_until

KEY = "callbridge_call_key"


def _gauge(name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in generate_latest().decode().splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def _modes() -> tuple[float | None, float | None, float | None]:
    return (
        _gauge("callbridge_writer_reconcile_mode", mode="key"),
        _gauge("callbridge_writer_portal_reconcile_mode", portal="default", mode="key"),
        _gauge("callbridge_writer_portal_reconcile_mode", portal="default", mode="search"),
    )


async def test_an_unreadable_key_property_is_read_again_and_the_portal_switches_to_key_mode(
    kafka: KafkaEnv,
    sandbox: SandboxHandle,
    start_writer,
    pipeline_settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shell, "KEY_PROBE_FIRST_S", 0.3)
    settings = pipeline_settings.model_copy(update={"hubspot_timeout_s": 1.0})
    # every property read and every create answered 503 (the property exists: set up)
    sandbox.faults(error_rate=1.0, error_status=503, operations=["getProperty", "batchCreateCalls"])
    handle = await start_writer(settings)
    writer = handle.writer
    assert writer.states["default"].mode == "search"
    assert writer.flushers["default"].policy.key_property is None
    assert _modes() == (0.0, 0.0, 1.0)
    await produce_events(kafka.settings, [event(i, "call.ended", timedelta()) for i in range(3)])
    assert writer.store is not None
    store = writer.store

    async def unknown_creates() -> bool:  # sent in search mode, outcome unknown
        records = [store.get(f"generic:c{i}") for i in range(3)]
        return all(r is not None and r.intent_at is not None for r in records)

    at_start = stats_sum(sandbox.stats(), "getProperty", "503")
    assert at_start >= 1

    async def probed_again() -> bool:
        return stats_sum(sandbox.stats(), "getProperty", "503") > at_start

    await wait_until(unknown_creates, timeout_s=60)
    await wait_until(probed_again, timeout_s=60)
    assert writer.states["default"].mode == "search"
    # the property is readable again; creates still fail: the switch waits for them
    sandbox.faults(operations=["batchCreateCalls"])

    async def read_ok() -> bool:
        return stats_sum(sandbox.stats(), "getProperty", "200") >= 1

    await wait_until(read_ok, timeout_s=60)
    await asyncio.sleep(1.0)
    assert writer.states["default"].mode == "search"  # deferred: 3 creates of unknown outcome
    assert writer.flushers["default"].policy.key_property is None
    sandbox.clear_faults()  # resolved by search (a miss trusted), created, then the switch

    async def key_mode() -> bool:
        return writer.states["default"].mode == "key"

    await wait_until(key_mode, timeout_s=60)
    flusher = writer.flushers["default"]
    assert flusher.policy.key_property == KEY and flusher.calls.key_property == KEY
    assert _modes() == (1.0, 1.0, 0.0)
    calls = all_calls(sandbox, [*PROPS, KEY])
    assert sorted(c["properties"]["hs_call_external_id"] for c in calls) == [
        f"generic:c{i}" for i in range(3)
    ]
    searches = stats_sum(sandbox.stats(), "searchCalls")
    assert searches >= 1  # the search-mode creates were reconciled by search
    reads = stats_sum(sandbox.stats(), "batchReadCalls")

    # key mode: creates carry the key; one of unknown outcome is read by the key
    sandbox.faults(error_rate=1.0, error_status=503, operations=["batchCreateCalls"])
    await produce_events(kafka.settings, [event(i, "call.ended", timedelta()) for i in (10, 11)])

    async def unknown_again() -> bool:
        return all(
            (r := store.get(f"generic:c{i}")) is not None and r.intent_at is not None
            for i in (10, 11)
        )

    await wait_until(unknown_again, timeout_s=60)
    sandbox.clear_faults()

    async def written() -> bool:
        return len(all_calls(sandbox, PROPS)) == 5

    await wait_until(written, timeout_s=60)
    by_key = {c["properties"]["hs_call_external_id"]: c for c in all_calls(sandbox, [*PROPS, KEY])}
    assert sorted(by_key) == sorted(f"generic:c{i}" for i in (0, 1, 2, 10, 11))
    assert by_key["generic:c10"]["properties"].get(KEY) == "generic:c10"
    assert by_key["generic:c11"]["properties"].get(KEY) == "generic:c11"
    assert not by_key["generic:c0"]["properties"].get(KEY)  # created in search mode
    stats = sandbox.stats()
    assert stats_sum(stats, "batchReadCalls") > reads  # looked up by the key ...
    assert stats_sum(stats, "searchCalls") == searches  # ... never searched
