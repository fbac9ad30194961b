"""The walking skeleton end to end: signed webhook → ingress → Kafka → writer → sandbox."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import orjson

from service.model import decode_event
from tests.e2e.helpers import all_calls, generic_event, post_generic
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import wait_until

PROPS = [
    "hs_call_external_id",
    "hs_call_title",
    "hs_call_status",
    "hs_call_direction",
    "hs_call_duration",
    "hs_call_from_number",
    "hs_call_to_number",
    "hs_timestamp",
    "hs_call_source",
]


async def test_200_concurrent_calls_land_exactly_once(
    ingress_url: str, start_writer, sandbox: SandboxHandle, kafka: KafkaEnv
) -> None:
    """200 signed events for 200 calls posted concurrently → 202 each → 200 records, once each."""
    await start_writer()
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *[
                post_generic(
                    client,
                    ingress_url,
                    generic_event(f"c-{i}", duration_ms=1000 * i, title=f"Call {i}"),
                )
                for i in range(200)
            ]
        )
    assert Counter(r.status_code for r in responses) == {202: 200}

    async def all_written() -> bool:
        return sandbox.stats()["records"]["calls"] >= 200

    await wait_until(all_written, timeout_s=60)
    calls = all_calls(sandbox, PROPS)
    keys = Counter(c["properties"]["hs_call_external_id"] for c in calls)
    assert len(calls) == 200
    assert set(keys) == {f"generic:c-{i}" for i in range(200)}
    assert max(keys.values()) == 1
    by_key = {c["properties"]["hs_call_external_id"]: c["properties"] for c in calls}
    props = by_key["generic:c-7"]
    assert props["hs_call_title"] == "Call 7"
    assert props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_direction"] == "INBOUND"
    assert props["hs_call_duration"] == "7000"
    assert props["hs_call_from_number"] == "+14155550142"
    assert props["hs_call_to_number"] == "+18005550100"
    assert props["hs_call_source"] == "INTEGRATIONS_PLATFORM"
    assert props["hs_timestamp"].startswith("2026-03-03T15:03:58")  # 15:04:05 minus 7 s
    records = await kafka.records(kafka.settings.topic_events)
    assert len(records) == 200
    event = decode_event(records[0].value)
    assert records[0].key == event.key.encode()
    assert dict(records[0].headers)["event_id"] == event.event_id.encode()
    assert orjson.loads(records[0].value)["properties"]["hs_call_external_id"] == event.key
