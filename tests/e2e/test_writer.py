"""The writer on the real broker against the sandbox: coalescing, create vs update,
contacts, the DLQ for item errors, and retries through 5xx/429 storms."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

import handlers.generic as generic
from handlers import NormalizeOptions, WebhookRequest
from service.deadletter import parse as parse_dlq
from service.dlq.exporter import Exporter
from service.localkafka import free_port
from service.model import CallEvent
from service.runtime import make_server
from service.writer.records import decode_record
from tests.e2e.helpers import all_calls
from tests.e2e.kafkaio import produce_events
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import wait_until

#: recent calls (two days ago, on a minute): the writer's ordinary path; older ones than
#: CALLBRIDGE_WRITER_IDS_RETENTION_DAYS are looked up in HubSpot first (tested below)
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
PROPS = [
    "hs_call_external_id",
    "hs_call_status",
    "hs_call_duration",
    "hs_call_recording_url",
    "hs_call_title",
    "hs_timestamp",
]


def event(call: int, kind: str, at: timedelta, **fields: Any) -> CallEvent:
    """A generic event for call ``call`` normalized exactly as the ingress would."""
    body = {
        "event_id": f"c{call}:{kind}",
        "call_id": f"c{call}",
        "type": kind,
        "occurred_at": (T0 + at).isoformat().replace("+00:00", "Z"),
        "direction": "inbound",
        "from": f"+1415555{call:04d}",
        "to": "+18005550100",
        **fields,
    }
    [ev] = generic.parse(
        WebhookRequest("POST", "", {}, orjson.dumps(body)), NormalizeOptions()
    ).events
    return ev


def lifecycle(call: int, rng: random.Random) -> list[CallEvent]:
    """3–5 events of one call: ringing, answered, ended, maybe recording, maybe a title update."""
    start = timedelta(minutes=call)
    events = [
        event(call, "call.ringing", start),
        event(call, "call.answered", start + timedelta(seconds=5)),
        event(call, "call.ended", start + timedelta(seconds=65), duration_ms=60_000),
    ]
    if rng.random() < 0.5:
        events.append(
            event(
                call,
                "call.recording",
                start + timedelta(seconds=70),
                recording_url=f"https://rec.example/c{call}.mp3",
            )
        )
    if rng.random() < 0.3:
        events.append(
            event(call, "call.updated", start + timedelta(seconds=80), title=f"Renewal call {call}")
        )
    return events


def stats_sum(stats: dict[str, Any], op: str, status: str | None = None) -> int:
    per = stats["requests"].get(op, {})
    return sum(n for s, n in per.items() if status is None or s == status)


async def test_2000_shuffled_duplicated_events_make_500_records(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """2,000 events (500 calls × 3–5, shuffled, 10 % duplicates) → exactly 500 correct records,
    contacts associated, in batches averaging ≥ 95 inputs."""
    rng = random.Random(7)
    per_call = {i: lifecycle(i, rng) for i in range(500)}
    unique = [e for evs in per_call.values() for e in evs]
    duplicates = rng.sample(unique, 2000 - len(unique))
    stream = unique + duplicates
    rng.shuffle(stream)
    contact_ids: dict[int, str] = {}
    for i in range(0, 500, 5):
        response = sandbox.client.post(
            "/crm/v3/objects/contacts",
            json={"properties": {"phone": f"+1415555{i:04d}", "firstname": f"C{i}"}},
            headers=sandbox.headers,
        )
        assert response.status_code == 201, response.text
        contact_ids[i] = response.json()["id"]

    await produce_events(kafka.settings, stream)
    handle = await start_writer(pipeline_settings.model_copy(update={"writer_linger_ms": 2000}))

    async def all_settled() -> bool:
        committed = await committed_offsets(kafka, pipeline_settings.writer_group)
        return sum(committed.values()) == 2000

    await wait_until(all_settled, timeout_s=90)
    await handle.stop()

    calls = all_calls(sandbox, PROPS)
    assert len(calls) == 500
    keys = Counter(c["properties"]["hs_call_external_id"] for c in calls)
    assert max(keys.values()) == 1
    by_key = {c["properties"]["hs_call_external_id"]: c for c in calls}
    for i, events in per_call.items():
        props = by_key[f"generic:c{i}"]["properties"]
        kinds = {e.type for e in events}
        assert props["hs_call_status"] == "COMPLETED", (i, props)
        assert props["hs_call_duration"] == "60000"
        assert props["hs_timestamp"] == events[0].properties["hs_timestamp"]
        if "call.recording" in kinds:
            assert props["hs_call_recording_url"] == f"https://rec.example/c{i}.mp3"
        else:
            assert props.get("hs_call_recording_url") in (None, "")
        if "call.updated" in kinds:
            assert props["hs_call_title"] == f"Renewal call {i}"
        else:
            assert props["hs_call_title"] == f"Inbound call from +1415555{i:04d}"
    for i, contact in contact_ids.items():
        call_id = by_key[f"generic:c{i}"]["id"]
        got = sandbox.client.get(
            f"/crm/v3/objects/calls/{call_id}",
            params={"associations": "contacts"},
            headers=sandbox.headers,
        ).json()
        assert [r["id"] for r in got["associations"]["contacts"]["results"]] == [contact]
    stats = sandbox.stats()
    creates = stats["batch_inputs"]["batchCreateCalls"]
    assert sum(creates) == 500
    assert sum(creates) / len(creates) >= 95
    assert stats_sum(stats, "batchUpdateCalls") == 0
    committed = await committed_offsets(kafka, pipeline_settings.writer_group)
    assert sum(committed.values()) == 2000


async def committed_offsets(kafka: KafkaEnv, group: str) -> dict[int, int]:
    """The group's committed offsets ({} while its coordinator is not there yet)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:
        return {}
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


async def test_later_events_update_the_record_created_earlier(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer
) -> None:
    """Events for calls created in an earlier batch update them; no second record appears."""
    await start_writer()
    first = [event(i, "call.answered", timedelta(minutes=i)) for i in range(20)]
    await produce_events(kafka.settings, first)

    async def created() -> bool:
        return sandbox.stats()["records"]["calls"] == 20

    await wait_until(created)
    later = [
        event(i, "call.ended", timedelta(minutes=i, seconds=90), duration_ms=90_000)
        for i in range(20)
    ]
    late_ringing = [event(i, "call.ringing", timedelta(minutes=i, seconds=-3)) for i in range(20)]
    await produce_events(kafka.settings, later + late_ringing)

    async def updated() -> bool:
        calls = all_calls(sandbox, PROPS)
        return all(c["properties"].get("hs_call_duration") == "90000" for c in calls)

    await wait_until(updated)
    calls = all_calls(sandbox, PROPS)
    assert len(calls) == 20
    assert {c["properties"]["hs_call_status"] for c in calls} == {"COMPLETED"}
    stats = sandbox.stats()
    assert sum(stats["batch_inputs"]["batchCreateCalls"]) == 20
    assert stats_sum(stats, "batchUpdateCalls") >= 1
    # the late 'ringing' moved hs_timestamp earlier but never downgraded COMPLETED
    assert all(c["properties"]["hs_timestamp"].endswith(":57.000Z") for c in calls)


async def test_rejected_items_go_to_the_dlq_and_the_rest_is_written(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """REJECT-ME items of a 207 → calls.dlq with the contract headers; others written; offsets
    committed; the DLQ exporter (the one place the DLQ gauges are computed) shows them."""
    sandbox.faults(reject={"property": "hs_call_title", "value": "REJECT-ME"})
    events = [
        event(
            i, "call.ended", timedelta(minutes=i), title="REJECT-ME" if i % 10 == 0 else f"ok {i}"
        )
        for i in range(50)
    ]
    await produce_events(kafka.settings, events)
    handle = await start_writer()

    async def settled() -> bool:
        return sum((await committed_offsets(kafka, pipeline_settings.writer_group)).values()) == 50

    await wait_until(settled)
    await handle.stop()
    exporter = Exporter(pipeline_settings.model_copy(update={"dlq_metrics_interval_s": 1}))
    refresher = asyncio.create_task(exporter.refresh_forever())
    transport = httpx.ASGITransport(app=exporter.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as web:

        async def gauge_shows_them() -> bool:
            text = (await web.get("/metrics")).text
            return 'callbridge_dlq_depth{category="VALIDATION_ERROR"} 5.0' in text

        await wait_until(gauge_shows_them, timeout_s=30)
        assert (await web.get("/readyz")).status_code == 200
    refresher.cancel()
    calls = all_calls(sandbox, PROPS)
    assert sorted(c["properties"]["hs_call_external_id"] for c in calls) == sorted(
        f"generic:c{i}" for i in range(50) if i % 10
    )
    dead = await kafka.records(kafka.settings.topic_dlq)
    assert sorted(r.key for r in dead) == sorted(f"generic:c{i}".encode() for i in range(0, 50, 10))
    originals = {r.key: r for r in await kafka.records(kafka.settings.topic_events)}
    for record in dead:
        letter = parse_dlq(record.headers)
        original = originals[record.key]
        assert record.value == original.value
        assert letter.original_topic == kafka.settings.topic_events
        assert (letter.original_partition, letter.original_offset) == (
            original.partition,
            original.offset,
        )
        assert letter.stage == "hubspot"
        assert letter.operation == "batchCreateCalls"
        assert letter.http_status == 207
        assert letter.category == "VALIDATION_ERROR"
        assert "REJECT-ME" in letter.message or "hs_call_title" in letter.message
        assert letter.correlation_id
        assert letter.attempt == 1
        assert datetime.fromisoformat(letter.failed_at)
        assert (
            dict(record.headers)["event_id"]
            == original.key.replace(b"generic:", b"") + b":call.ended"
        )


async def test_5xx_and_429_storms_write_everything_and_dead_letter_nothing(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """With 30 % 503s and 429 bursts injected, every call is written once and the DLQ stays empty."""
    sandbox.faults(
        error_rate=0.3,
        error_status=503,
        rate_limit_burst=5,
        seed=11,
        operations=["batchCreateCalls", "batchUpdateCalls", "searchContacts"],
    )
    events = [event(i, "call.ended", timedelta(minutes=i)) for i in range(300)]
    await produce_events(kafka.settings, events)
    await start_writer()

    async def settled() -> bool:
        return sum((await committed_offsets(kafka, pipeline_settings.writer_group)).values()) == 300

    await wait_until(settled, timeout_s=120)
    sandbox.clear_faults()
    calls = all_calls(sandbox, PROPS)
    keys = Counter(c["properties"]["hs_call_external_id"] for c in calls)
    assert set(keys) == {f"generic:c{i}" for i in range(300)}
    assert max(keys.values()) == 1
    stats = sandbox.stats()
    assert (
        stats_sum(stats, "batchCreateCalls", "503") + stats_sum(stats, "batchCreateCalls", "429")
        > 0
    )
    assert await kafka.records(kafka.settings.topic_dlq) == []


async def test_undecodable_record_is_dead_lettered_and_committed(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """A record on calls.events that is not a call event → DLQ (stage decode), offset committed."""
    await produce_events(
        kafka.settings, [event(1, "call.ended", timedelta())], raw=[(b"junk:1", b"{not json")]
    )
    await start_writer()

    async def settled() -> bool:
        return sum((await committed_offsets(kafka, pipeline_settings.writer_group)).values()) == 2

    await wait_until(settled)
    [dead] = await kafka.records(kafka.settings.topic_dlq)
    letter = parse_dlq(dead.headers)
    assert (dead.key, dead.value) == (b"junk:1", b"{not json")
    assert (letter.stage, letter.category) == ("decode", "INVALID_EVENT")
    assert sandbox.stats()["records"]["calls"] == 1


async def test_a_batch_answered_400_is_bisected_to_isolate_the_bad_input(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """One bad input among 100 fails the whole batch (400): bisection writes the 99 good ones
    and dead-letters exactly the bad one."""
    sandbox.faults(reject={"property": "hs_call_title", "value": "BAD"}, reject_whole_batch=True)
    events = [
        event(i, "call.ended", timedelta(minutes=i), title="BAD" if i == 37 else f"ok {i}")
        for i in range(100)
    ]
    await produce_events(kafka.settings, events)
    await start_writer(pipeline_settings.model_copy(update={"writer_linger_ms": 1000}))

    async def settled() -> bool:
        return sum((await committed_offsets(kafka, pipeline_settings.writer_group)).values()) == 100

    await wait_until(settled)
    calls = all_calls(sandbox, PROPS)
    assert len(calls) == 99
    assert "generic:c37" not in {c["properties"]["hs_call_external_id"] for c in calls}
    [dead] = await kafka.records(kafka.settings.topic_dlq)
    assert dead.key == b"generic:c37"
    letter = parse_dlq(dead.headers)
    assert (letter.http_status, letter.category, letter.operation) == (
        400,
        "VALIDATION_ERROR",
        "batchCreateCalls",
    )
    stats = sandbox.stats()
    # 1 + 2 per halving level down to the single bad input: ~2*log2(100), far below 100
    assert 3 <= stats_sum(stats, "batchCreateCalls", "400") <= 8
    assert stats_sum(stats, "batchCreateCalls") <= 20


async def test_daily_limit_pauses_and_marks_unready_without_losing_anything(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """A DAILY 429 pauses the writer and fails /readyz; once the budget is back it writes
    everything, and nothing was dead-lettered."""
    sandbox.config(daily_limit=1)  # the first request (a contacts search) spends it
    events = [event(i, "call.ended", timedelta(minutes=i)) for i in range(30)]
    await produce_events(kafka.settings, events)
    handle = await start_writer(pipeline_settings.model_copy(update={"writer_daily_retry_s": 1.0}))
    port = free_port()
    server = make_server(handle.writer.health_app(), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    try:

        async def limited() -> bool:
            return handle.writer.daily_limited

        await wait_until(limited)
        async with httpx.AsyncClient() as client:
            await wait_until(lambda: _started(server))
            ready = await client.get(f"http://127.0.0.1:{port}/readyz")
            alive = await client.get(f"http://127.0.0.1:{port}/healthz")
        assert ready.status_code == 503 and ready.json()["daily_limited"] is True
        assert alive.status_code == 200  # alive: it keeps polling, it is just not writing
        assert sandbox.stats()["records"]["calls"] == 0
        sandbox.config(daily_limit=None)

        async def written() -> bool:
            return sandbox.stats()["records"]["calls"] == 30

        await wait_until(written, timeout_s=60)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    finally:
        server.should_exit = True
        await task
    assert await kafka.records(kafka.settings.topic_dlq) == []


async def _started(server) -> bool:
    return bool(server.started)


async def test_contact_found_after_the_call_exists_is_associated_via_v4(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """A call created before its contact existed gets the contact associated (v4 batch) when a
    later event of the call is written."""
    await start_writer(pipeline_settings.model_copy(update={"contact_negative_ttl_s": 0.0}))
    await produce_events(kafka.settings, [event(3, "call.answered", timedelta())])

    async def created() -> bool:
        return sandbox.stats()["records"]["calls"] == 1

    await wait_until(created)
    contact = sandbox.client.post(
        "/crm/v3/objects/contacts",
        json={"properties": {"phone": "+14155550003"}},
        headers=sandbox.headers,
    ).json()["id"]
    await produce_events(
        kafka.settings, [event(3, "call.ended", timedelta(seconds=30), duration_ms=30_000)]
    )

    async def associated() -> bool:
        [call] = all_calls(sandbox, PROPS)
        got = sandbox.client.get(
            f"/crm/v3/objects/calls/{call['id']}",
            params={"associations": "contacts"},
            headers=sandbox.headers,
        ).json()
        results = got.get("associations", {}).get("contacts", {}).get("results", [])
        return [r["id"] for r in results] == [contact]

    await wait_until(associated)
    stats = sandbox.stats()
    assert stats_sum(stats, "batchCreateAssociations") >= 1
    assert sum(stats["batch_inputs"]["batchCreateCalls"]) == 1


async def test_a_second_writer_joining_rebalances_without_loss_or_duplicates(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """Writer B joins while A is busy: A flushes/commits its revoked partitions, B loads their
    calls.ids records; every call ends up as exactly one record with its final state."""
    settings = pipeline_settings.model_copy(
        update={"writer_linger_ms": 100, "writer_session_timeout_ms": 6000}
    )
    sandbox.faults(latency_ms=50)
    first = [event(i, "call.answered", timedelta(minutes=i)) for i in range(300)]
    await produce_events(kafka.settings, first)
    a = await start_writer(settings)

    async def some_written() -> bool:
        return sandbox.stats()["records"]["calls"] >= 100

    await wait_until(some_written)
    b = await start_writer(settings)

    async def both_assigned() -> bool:
        return bool(a.writer.loaded) and bool(b.writer.loaded)

    await wait_until(both_assigned)
    assert not a.writer.loaded & b.writer.loaded  # each partition has one owner
    ends = [
        event(i, "call.ended", timedelta(minutes=i, seconds=30), duration_ms=30_000)
        for i in range(300)
    ]
    await produce_events(kafka.settings, ends)

    async def settled() -> bool:
        return sum((await committed_offsets(kafka, settings.writer_group)).values()) == 600

    await wait_until(settled, timeout_s=120)
    calls = all_calls(sandbox, PROPS)
    keys = Counter(c["properties"]["hs_call_external_id"] for c in calls)
    assert set(keys) == {f"generic:c{i}" for i in range(300)}
    assert max(keys.values()) == 1
    assert {c["properties"]["hs_call_status"] for c in calls} == {"COMPLETED"}
    assert {c["properties"]["hs_call_duration"] for c in calls} == {"30000"}
    assert await kafka.records(kafka.settings.topic_dlq) == []


async def test_a_write_delayed_past_its_revocation_never_lands_over_the_new_owners(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """Writer A's update waits out a 429 (10 s) inside its flush when writer B joins: A's
    revocation may not wait that long, so B (and A itself, with the partitions it gets
    back) write the calls' newer state meanwhile. A's delayed request, carrying the older
    state, must never be sent after its partitions were revoked: it would overwrite the
    newer values while every ``calls.ids`` record says they were written (the chaos run
    of seed 722074: 15 calls left with wrong final properties)."""
    settings = pipeline_settings.model_copy(
        update={
            "writer_linger_ms": 100,
            "writer_session_timeout_ms": 6000,
            "writer_flush_deadline_s": 2.0,  # a revocation waits 1 s for flushes in flight
        }
    )
    calls = range(40)
    await produce_events(
        kafka.settings, [event(i, "call.answered", timedelta(minutes=i)) for i in calls]
    )
    a = await start_writer(settings)

    async def settled(n: int) -> bool:
        return sum((await committed_offsets(kafka, settings.writer_group)).values()) == n

    await wait_until(lambda: settled(40), timeout_s=60)
    sandbox.faults(rate_limit_burst=1, operations=["batchUpdateCalls"])

    def titled(label: str, seconds: int) -> list[CallEvent]:
        """Each call's title set to ``label`` (an event of its own, later for more seconds)."""
        return [
            event(
                i,
                "call.updated",
                timedelta(minutes=i, seconds=seconds),
                title=f"{label} {i}",
                event_id=f"c{i}:{label}",
            )
            for i in calls
        ]

    await produce_events(kafka.settings, titled("stale", 10))

    async def held_by_a_429() -> bool:
        return stats_sum(sandbox.stats(), "batchUpdateCalls", "429") == 1

    await wait_until(held_by_a_429)  # A's flush now sleeps 10 s before sending it again
    b = await start_writer(settings)

    async def both_assigned() -> bool:
        return bool(a.writer.loaded) and bool(b.writer.loaded)

    await wait_until(both_assigned)
    await produce_events(kafka.settings, titled("fresh", 20))
    await wait_until(lambda: settled(120), timeout_s=60)
    await asyncio.sleep(12)  # past A's 10-s wait: its old request, if any, has been sent
    titles = {
        c["properties"]["hs_call_external_id"]: c["properties"]["hs_call_title"]
        for c in all_calls(sandbox, PROPS)
    }
    assert titles == {f"generic:c{i}": f"fresh {i}" for i in calls}


async def test_a_late_event_of_a_call_past_retention_updates_its_one_record(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """Past the ids retention a call's record is compacted to its HubSpot id, status and
    start (memory and topic stay small); a late event with a *fresh* timestamp (Aircall's
    call.tagged, generic call.updated) still updates that one record, with no search."""
    settings = pipeline_settings.model_copy(
        update={"writer_ids_retention_days": 2e-5, "writer_session_timeout_ms": 6000}  # ~1.7 s
    )
    first = await start_writer(settings)
    await produce_events(kafka.settings, [event(5, "call.ended", timedelta(), duration_ms=30_000)])

    async def created() -> bool:
        return sandbox.stats()["records"]["calls"] == 1

    await wait_until(created)
    await first.stop()
    await asyncio.sleep(2.5)  # the record is now older than the retention
    second = await start_writer(settings)
    late = event(5, "call.updated", datetime.now(UTC) - T0, title="tagged later")
    await produce_events(kafka.settings, [late])

    async def updated() -> bool:
        calls = all_calls(sandbox, PROPS + ["hs_call_title"])
        return len(calls) == 1 and calls[0]["properties"].get("hs_call_title") == "tagged later"

    await wait_until(updated)
    assert second.writer.store is not None
    [call] = all_calls(sandbox, PROPS)
    assert call["properties"]["hs_call_status"] == "COMPLETED"
    stats = sandbox.stats()
    assert sum(stats["batch_inputs"]["batchCreateCalls"]) == 1
    assert stats_sum(stats, "searchCalls") == 0
    ids = [r for r in await kafka.records(kafka.settings.topic_ids) if r.key == b"generic:c5"]
    records = [(r, decode_record(r.value)) for r in ids if r.value]
    compacted = [(r, rec) for r, rec in records if rec.hubspot_id and rec.events == ()]
    assert compacted and compacted[0][1].hubspot_id == call["id"]
    assert compacted[0][1].status == "COMPLETED" and len(compacted[0][0].value) < 200
