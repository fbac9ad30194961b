"""Graceful shutdown: SIGTERM during a busy writer run → it flushes, commits and exits 0
within the grace period; a restarted writer neither loses nor duplicates anything."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson

from tests.e2e.helpers import all_calls
from tests.e2e.kafkaio import produce_events
from tests.e2e.procs import start_writer_process
from tests.e2e.test_writer import PROPS, committed_offsets, event, stats_sum
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import wait_until

CALLS = 600
#: deploy/k8s: the writer's terminationGracePeriodSeconds
GRACE_S = 45


async def test_sigterm_drains_commits_and_exits_zero(
    kafka: KafkaEnv, sandbox: SandboxHandle, pipeline_settings, tmp_path: Path
) -> None:
    """SIGTERM mid-run: exit 0 within the grace period with everything it had taken written and
    committed; the next writer finishes the rest; one record per call, none lost."""
    sandbox.faults(latency_ms=300)
    settings = pipeline_settings.model_copy(
        update={
            "writer_linger_ms": 50,
            "writer_session_timeout_ms": 6000,
            "writer_flush_deadline_s": 20,
            "writer_max_buffer": 200,  # backpressure: it holds at most 200 events at a time
        }
    )
    events = [event(i, "call.ended", timedelta(minutes=i), duration_ms=1000) for i in range(CALLS)]
    await produce_events(kafka.settings, events)
    log = tmp_path / "writer.log"
    proc = start_writer_process(settings, log)

    async def busy() -> bool:
        return stats_sum(sandbox.stats(), "batchCreateCalls") >= 1

    await wait_until(busy, timeout_s=60)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = await asyncio.to_thread(proc.wait, GRACE_S)
    assert code == 0, log.read_text()[-3000:]
    assert time.monotonic() - started < GRACE_S
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("event") == "writer_stopped" for line in lines)
    written_before = sandbox.stats()["records"]["calls"]
    committed = sum((await committed_offsets(kafka, settings.writer_group)).values())
    assert committed == written_before  # drained: what it wrote is committed, nothing more
    assert 0 < written_before < CALLS

    sandbox.clear_faults()
    proc = start_writer_process(settings, log)
    try:

        async def done() -> bool:
            return sum((await committed_offsets(kafka, settings.writer_group)).values()) == CALLS

        await wait_until(done, timeout_s=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(GRACE_S) == 0
    calls = all_calls(sandbox, PROPS)
    keys = Counter(c["properties"]["hs_call_external_id"] for c in calls)
    assert set(keys) == {f"generic:c{i}" for i in range(CALLS)}
    assert max(keys.values()) == 1
