"""The DLQ tools with the real writer and the sandbox: a 207 rejection lands in the DLQ,
`dlq list`/`show` explain it, and after the cause is fixed `dlq replay` writes each call to
HubSpot exactly once, however often it is replayed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

import handlers.generic as generic
from handlers import NormalizeOptions, WebhookRequest
from service.config import Settings
from service.deadletter import parse
from service.dlq import ops
from service.dlq.filters import Filters
from service.dlq.replay import replay
from service.model import CallEvent
from tests.dlq.helpers import cli, kafka_args, records, replay_args
from tests.e2e.helpers import all_calls
from tests.e2e.kafkaio import produce_events
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import WriterHandle, wait_until

T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
REJECT = {"property": "hs_call_title", "value": "REJECT-ME"}
REJECTED = [0, 4, 7]


def event(call: int, title: str) -> CallEvent:
    """A generic call.ended event normalized exactly as the ingress would."""
    body = {
        "event_id": f"d{call}:ended",
        "call_id": f"d{call}",
        "type": "call.ended",
        "occurred_at": (T0 + timedelta(minutes=call)).isoformat().replace("+00:00", "Z"),
        "direction": "inbound",
        "from": f"+1415555{call:04d}",
        "to": "+18005550100",
        "duration_ms": 30_000,
        "title": title,
    }
    [ev] = generic.parse(
        WebhookRequest("POST", "", {}, orjson.dumps(body)), NormalizeOptions()
    ).events
    return ev


async def settled(kafka: KafkaEnv, settings: Settings) -> bool:
    """Whether the writer has committed everything in the events topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.writer_group)
    except KafkaError:
        return False
    finally:
        await admin.close()
    ends: Counter[int] = Counter(r.partition for r in await records(kafka, settings.topic_events))
    done = {tp.partition: meta.offset for tp, meta in committed.items()}
    return all(done.get(p, 0) >= n for p, n in ends.items())


def calls_by_key(sandbox: SandboxHandle) -> Counter[str]:
    return Counter(
        c["properties"]["hs_call_external_id"]
        for c in all_calls(sandbox, ["hs_call_external_id", "hs_call_title"])
    )


async def test_rejected_calls_are_listed_then_replayed_into_hubspot_exactly_once(
    kafka: KafkaEnv,
    sandbox: SandboxHandle,
    start_writer: Callable[..., Awaitable[WriterHandle]],
    pipeline_settings: Settings,
    group: str,
) -> None:
    """REJECT-ME items → DLQ with the contract's headers → list/show → fault cleared →
    replay writes each once → a second replay changes nothing, even forced."""
    settings = pipeline_settings
    sandbox.faults(reject=REJECT)
    await produce_events(
        settings, [event(i, "REJECT-ME" if i in REJECTED else f"ok {i}") for i in range(10)]
    )
    await start_writer()

    async def dead_lettered() -> bool:
        return len(await records(kafka, settings.topic_dlq)) == len(REJECTED)

    await wait_until(dead_lettered)
    await wait_until(lambda: settled(kafka, settings))
    assert set(calls_by_key(sandbox)) == {f"generic:d{i}" for i in range(10) if i not in REJECTED}

    # The contract's headers, as list and show display them.
    args = kafka_args(settings, group)
    listed = await cli("list", "--json", *args)
    rows = orjson.loads(listed.stdout)
    assert sorted(r["key"] for r in rows) == sorted(f"generic:d{i}" for i in REJECTED)
    for row in rows:
        assert (row["category"], row["http_status"], row["attempt"], row["stage"]) == (
            "VALIDATION_ERROR",
            207,
            1,
            "hubspot",
        )
        assert row["operation"] == "batchCreateCalls" and row["pending"]
        assert row["original_topic"] == settings.topic_events
    table = await cli("list", *args)
    assert "VALIDATION_ERROR" in table.stdout and "3 dead letters (3 pending)" in table.stdout
    shown = await cli("show", str(rows[0]["offset"]), *args)
    assert shown.exit_code == 0
    for text in ("dlq.error.message", "dlq.hubspot.correlation_id", "REJECT-ME", rows[0]["key"]):
        assert text in shown.stdout
    dead = await records(kafka, settings.topic_dlq)
    assert all(parse(r.headers).correlation_id for r in dead)

    # Fix the cause, look first, then replay.
    sandbox.clear_faults()
    dry = await cli("replay", "--dry-run", *args, *replay_args(settings))
    assert dry.exit_code == 0 and "would replay 3" in dry.stdout
    assert len(await records(kafka, settings.topic_events)) == 10
    done = await cli("replay", "--rate", "50", *args, *replay_args(settings))
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("replayed 3, parked 0")

    async def all_written() -> bool:
        return len(calls_by_key(sandbox)) == 10

    await wait_until(all_written)
    await wait_until(lambda: settled(kafka, settings))
    written = calls_by_key(sandbox)
    assert written == Counter({f"generic:d{i}": 1 for i in range(10)})
    before = sandbox.stats()
    assert (await ops.stats(settings, group=group)).pending == 0

    # A second replay has nothing to do; a forced one re-sends, and HubSpot stays the same.
    again = await cli("replay", *args, *replay_args(settings))
    assert again.exit_code == 1 and again.stdout.startswith("nothing to replay")
    forced = await cli("replay", "--from-start", *args, *replay_args(settings))
    assert forced.exit_code == 0 and forced.stdout.startswith("replayed 3")
    assert len(await records(kafka, settings.topic_events)) == 16
    await wait_until(lambda: settled(kafka, settings))
    assert calls_by_key(sandbox) == written
    after = sandbox.stats()
    assert after["records"] == before["records"]
    assert creates(after) == creates(before)
    assert len(await records(kafka, settings.topic_dlq)) == len(REJECTED)


def creates(stats: dict[str, Any]) -> int:
    """Calls created by batch or single create (any status)."""
    ops_ = ("batchCreateCalls", "createCall")
    return sum(n for op in ops_ for n in stats["requests"].get(op, {}).values())


async def test_a_record_rejected_again_comes_back_with_attempt_2_and_is_parked_at_the_limit(
    kafka: KafkaEnv,
    sandbox: SandboxHandle,
    start_writer: Callable[..., Awaitable[WriterHandle]],
    pipeline_settings: Settings,
    group: str,
) -> None:
    """Replaying while the cause persists dead-letters the record again with attempt 2; at
    dlq_max_attempts the next replay parks it instead of sending it round again."""
    settings = pipeline_settings.model_copy(update={"dlq_max_attempts": 2})
    sandbox.faults(reject=REJECT)
    await produce_events(settings, [event(1, "REJECT-ME")])
    await start_writer(settings)

    def dead_letters(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(await records(kafka, settings.topic_dlq)) == n

        return check

    await wait_until(dead_letters(1))
    assert (await replay(settings, Filters(), group=group)).replayed == 1
    await wait_until(dead_letters(2))
    second = (await records(kafka, settings.topic_dlq))[1]
    assert parse(second.headers).attempt == 2
    report = await replay(settings, Filters(), group=group)
    assert (report.replayed, report.parked) == (0, 1)
    [parked] = await records(kafka, settings.topic_parked)
    assert parse(parked.headers).attempt == 2
    assert parked.value == second.value
    assert calls_by_key(sandbox) == Counter()
