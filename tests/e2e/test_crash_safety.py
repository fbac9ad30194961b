"""Crash safety: the writer SIGKILLed at random points and restarted still leaves exactly one
HubSpot record per call (the create-intent record + search reconciliation at work)."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from tests.e2e.helpers import all_calls
from tests.e2e.kafkaio import produce_events
from tests.e2e.procs import start_writer_process
from tests.e2e.test_writer import PROPS, committed_offsets, event, stats_sum
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import wait_until

CALLS = 400


@pytest.mark.slow
async def test_sigkilled_writer_leaves_exactly_one_record_per_call(
    kafka: KafkaEnv, sandbox: SandboxHandle, pipeline_settings, tmp_path: Path
) -> None:
    """A writer subprocess SIGKILLed 4 times mid-run and restarted each time → exactly one record
    per call, each with its final properties, every offset committed."""
    rng = random.Random(1234)
    # HubSpot applies each write but answers a second late (the window where a crash loses the
    # answer), and its search index lags: a restarted writer must reconcile, not re-create.
    sandbox.faults(
        latency_after_ms=1000,
        index_delay_ms=800,
        operations=["batchCreateCalls", "batchUpdateCalls"],
    )
    settings = pipeline_settings.model_copy(
        update={
            "writer_linger_ms": 100,
            "writer_reconcile_after_s": 2.0,
            "writer_session_timeout_ms": 6000,
        }
    )
    waves = [
        [event(i, "call.answered", timedelta(minutes=i)) for i in range(w, CALLS, 4)]
        for w in range(4)
    ]
    ends = [
        event(i, "call.ended", timedelta(minutes=i, seconds=60), duration_ms=60_000)
        for i in range(CALLS)
    ]
    rng.shuffle(ends)
    log = tmp_path / "writer.log"

    async def feed() -> None:
        for wave in waves:
            await produce_events(kafka.settings, wave)
            await asyncio.sleep(1.0)
        for start in range(0, CALLS, 100):
            await produce_events(kafka.settings, ends[start : start + 100])
            await asyncio.sleep(1.0)

    def written() -> int:
        """HubSpot writes received so far (creates and updates alike: a flush may create
        every call at once, and later waves only update them)."""
        stats = sandbox.stats()
        return stats_sum(stats, "batchCreateCalls") + stats_sum(stats, "batchUpdateCalls")

    feeder = asyncio.create_task(feed())
    kills = 0
    proc = start_writer_process(settings, log)
    try:
        for _ in range(4):

            async def started(n: int = kills + 1) -> bool:
                return log.read_text().count('"writer_started"') >= n

            # this process's own writes: an answer the killed one never saw may still be
            # counted by the sandbox a second after the kill (its latency_after)
            await wait_until(started, timeout_s=60)
            await asyncio.sleep(1.2)
            before = written()

            async def wrote_more(before: int = before) -> bool:
                return written() > before

            # kill while the answer to a write HubSpot has applied is still on its way
            await wait_until(wrote_more, timeout_s=90)
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = start_writer_process(settings, log)
        await feeder

        async def settled() -> bool:
            committed = await committed_offsets(kafka, settings.writer_group)
            return sum(committed.values()) == 2 * CALLS

        await wait_until(settled, timeout_s=240)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        sandbox.clear_faults()
    assert kills == 4
    calls = all_calls(sandbox, PROPS)
    keys = Counter(c["properties"]["hs_call_external_id"] for c in calls)
    assert set(keys) == {f"generic:c{i}" for i in range(CALLS)}
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    assert {c["properties"]["hs_call_status"] for c in calls} == {"COMPLETED"}
    assert {c["properties"]["hs_call_duration"] for c in calls} == {"60000"}
    assert await kafka.records(kafka.settings.topic_dlq) == []
    text = log.read_text()
    assert text.count('"writer_started"') == 5
    # at least one restart found a create whose answer it never saw, and adopted it
    reconciled = [
        orjson.loads(line)
        for line in text.splitlines()
        if line.startswith("{") and '"creates_reconciled"' in line
    ]
    assert sum(r["found"] for r in reconciled) > 0
