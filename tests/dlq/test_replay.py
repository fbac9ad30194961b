"""replay against a real broker: provenance, selection, resumption, parking, pacing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from service.config import Settings
from service.deadletter import (
    ATTEMPT,
    PARKED_AT,
    PARKED_FROM,
    REPLAYED_FROM,
    REPLAYED_FROM_PARTITION,
    header_map,
    replay_headers_from,
)
from service.dlq.checkpoint import Pending, advance, group_for
from service.dlq.filters import Filters
from service.dlq.kafkaio import Cursor, KafkaLink
from service.dlq.move import target_partition
from service.dlq.ops import stats
from service.dlq.replay import ReplayReport, Step, replay
from tests.dlq.helpers import (
    NOW,
    Spec,
    cli,
    event_value,
    kafka_args,
    put_dead_letters,
    put_raw,
    records,
    replay_args,
)
from tests.fixtures.kafka import KafkaEnv

SPECS = [
    Spec("r1"),
    Spec("r2", category="OBJECT_NOT_FOUND", status=404),
    Spec("r3", attempt=3),
    Spec("r4", category="OBJECT_NOT_FOUND", status=404),
    Spec("r5"),
]


async def replayed_from(kafka: KafkaEnv) -> list[tuple[int, int]]:
    """(DLQ partition, DLQ offset) of every replayed record in the events topic, sorted."""
    out = []
    for rec in await records(kafka, kafka.settings.topic_events):
        h = header_map(rec.headers)
        out.append((int(h[REPLAYED_FROM_PARTITION]), int(h[REPLAYED_FROM])))
    return sorted(out)


def once_each(n: int, partition: int = 0) -> list[tuple[int, int]]:
    return [(partition, i) for i in range(n)]


async def test_replay_reproduces_records_with_provenance(kafka: KafkaEnv, group: str) -> None:
    """Each replayed record keeps key, value and original headers, carries its dead letter's
    attempt count and offset, and lands on its key's partition."""
    await put_dead_letters(kafka.settings, SPECS)
    report = await replay(kafka.settings, Filters(), group=group)
    assert (report.replayed, report.parked, report.scanned) == (5, 0, 5)
    got = await records(kafka, kafka.settings.topic_events)
    assert len(got) == 5
    partitions = sorted(range(kafka.settings.topic_partitions))
    for rec in got:
        h = header_map(rec.headers)
        spec = SPECS[int(h[REPLAYED_FROM])]
        assert rec.key == spec.key.encode()
        assert rec.value == event_value(spec.call)
        assert h["event_id"] == f"{spec.call}:1" and h["provider"] == "generic"
        assert h[ATTEMPT] == str(spec.attempt)
        assert h[REPLAYED_FROM_PARTITION] == "0"
        assert not any(
            k.startswith("dlq.")
            for k in h
            if k not in (ATTEMPT, REPLAYED_FROM, REPLAYED_FROM_PARTITION)
        )
        assert rec.partition == target_partition(rec.key, partitions)


async def test_replay_lands_where_the_ingress_producer_puts_the_call(
    kafka: KafkaEnv, group: str
) -> None:
    """A replayed event shares its partition with the call's events produced without a
    partition (the ingress's default partitioner), so per-call order holds."""
    await put_dead_letters(kafka.settings, SPECS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        ingress_partition = {
            s.key: (
                await producer.send_and_wait(kafka.settings.topic_ids, b"x", key=s.key.encode())
            ).partition
            for s in SPECS
        }
    finally:
        await producer.stop()
    await replay(kafka.settings, Filters(), group=group)
    for rec in await records(kafka, kafka.settings.topic_events):
        assert rec.partition == ingress_partition[rec.key.decode()]


async def test_dry_run_produces_nothing(kafka: KafkaEnv, group: str) -> None:
    """--dry-run lists what it would do, produces nothing and moves no cursor."""
    await put_dead_letters(kafka.settings, SPECS)
    report = await replay(
        kafka.settings,
        Filters.parse(now=NOW, categories=["OBJECT_NOT_FOUND"]),
        dry_run=True,
        group=group,
    )
    assert [(s.offset, s.action) for s in report.steps] == [(1, "replay"), (3, "replay")]
    assert report.replayed == 2
    result = await cli(
        "replay", "--dry-run", *kafka_args(kafka.settings, group), *replay_args(kafka.settings)
    )
    assert result.exit_code == 0, result.output
    assert "would replay 5, would park 0" in result.stdout
    assert "generic:r3" in result.stdout
    assert await records(kafka, kafka.settings.topic_events) == []
    assert await records(kafka, kafka.settings.topic_parked) == []
    assert (await replay(kafka.settings, Filters(), group=group)).replayed == 5


async def test_filtered_replay_then_the_rest_replays_each_once(kafka: KafkaEnv, group: str) -> None:
    """A replay selects exactly its filter's dead letters; a later unfiltered replay moves only
    the others."""
    await put_dead_letters(kafka.settings, SPECS)
    first = await replay(
        kafka.settings, Filters.parse(now=NOW, categories=["OBJECT_NOT_FOUND"]), group=group
    )
    assert first.replayed == 2
    assert await replayed_from(kafka) == [(0, 1), (0, 3)]
    by_key = await replay(kafka.settings, Filters.parse(now=NOW, keys=["generic:r5"]), group=group)
    assert by_key.replayed == 1
    rest = await replay(kafka.settings, Filters(), group=group)
    assert (rest.replayed, rest.already) == (2, 3)
    assert await replayed_from(kafka) == once_each(5)


async def test_second_replay_has_nothing_and_from_start_replays_again(
    kafka: KafkaEnv, group: str
) -> None:
    """Replaying again finds nothing (exit 1, says why); --from-start replays everything again."""
    await put_dead_letters(kafka.settings, SPECS[:3])
    args = [*kafka_args(kafka.settings, group), *replay_args(kafka.settings)]
    first = await cli("replay", *args)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("replayed 3, parked 0")
    again = await cli("replay", *args)
    assert again.exit_code == 1
    assert (
        again.stdout.strip()
        == "nothing to replay: 3 matching dead letters were already replayed (--from-start replays them again)"
    )
    none = await cli("replay", "--category", "RATE_LIMITS", *args)
    assert none.exit_code == 1
    assert none.stdout.strip() == "nothing to replay: no pending dead letters match"
    forced = await cli("replay", "--from-start", *args)
    assert forced.exit_code == 0, forced.output
    assert Counter(await replayed_from(kafka)) == Counter(once_each(3) * 2)


async def test_max_then_run_again_resumes(kafka: KafkaEnv, group: str) -> None:
    """--max N stops after N; running again continues where it stopped, no skip, no duplicate."""
    await put_dead_letters(kafka.settings, SPECS)
    runs = [await replay(kafka.settings, Filters(), max=2, group=group) for _ in range(3)]
    assert [(r.replayed, r.stopped_by_max) for r in runs] == [(2, True), (2, True), (1, False)]
    assert await replayed_from(kafka) == once_each(5)


async def test_replay_cancelled_after_n_acks_resumes_exactly(kafka: KafkaEnv, group: str) -> None:
    """A replay cancelled right after its Nth ack has produced exactly N; the next run the rest."""
    specs = [Spec(f"c{i}") for i in range(12)]
    await put_dead_letters(kafka.settings, specs)

    class CancelAfter:
        def __init__(self, n: int) -> None:
            self.n = n
            self.task: asyncio.Task[ReplayReport] | None = None

        def begin(self, total: int) -> None:
            pass

        def advance(self, report: ReplayReport, step: Step | None) -> None:
            if report.replayed == self.n and self.task is not None:
                self.task.cancel()

    for n in (3, 4):
        stopper = CancelAfter(n)
        stopper.task = asyncio.create_task(
            replay(kafka.settings, Filters(), progress=stopper, group=group)
        )
        with pytest.raises(asyncio.CancelledError):
            await stopper.task
    assert await replayed_from(kafka) == once_each(7)
    last = await replay(kafka.settings, Filters(), group=group)
    assert last.replayed == 5
    assert await replayed_from(kafka) == once_each(12)


async def test_replay_cancelled_at_random_moments_neither_skips_nor_duplicates(
    kafka: KafkaEnv, group: str
) -> None:
    """Cancelling replays at arbitrary moments (mid-produce included), then finishing, moves
    every dead letter exactly once."""
    specs = [Spec(f"m{i}") for i in range(30)]
    await put_dead_letters(kafka.settings, specs)
    rng = random.Random(7)
    for _ in range(6):
        task = asyncio.create_task(replay(kafka.settings, Filters(), rate=60, group=group))
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await replay(kafka.settings, Filters(), group=group)
    assert await replayed_from(kafka) == once_each(30)


async def pending_note(settings: Settings, group: str, offset: int, key: bytes) -> Pending:
    """Leave the cursor as a replay killed mid-move does: on ``offset`` with a pending note."""
    part = target_partition(key, list(range(settings.topic_partitions)))
    pending = Pending(offset, settings.topic_events, part, int(time.time() * 1000))
    name = group_for(group, Filters())
    async with KafkaLink(settings) as link:
        base = (await link.checkpoints(name, settings.topic_dlq))[0]
    cursor = Cursor(settings, name, settings.topic_dlq, [0], 10)
    await cursor.start()
    try:
        note = advance(
            base, start=base.position, position=offset, filters=Filters(), pending=pending
        )
        await cursor.commit(0, note)
    finally:
        await cursor.stop()
    return pending


async def test_killed_after_ack_before_commit_is_not_replayed_twice(
    kafka: KafkaEnv, group: str
) -> None:
    """A record produced by a run that died before committing is found, not produced again."""
    await put_dead_letters(kafka.settings, SPECS)
    await replay(kafka.settings, Filters(), max=2, group=group)
    rec = (await records(kafka, kafka.settings.topic_dlq))[2]
    pending = await pending_note(kafka.settings, group, 2, rec.key)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:  # the produce the killed run got its ack for
        await producer.send_and_wait(
            kafka.settings.topic_events,
            rec.value,
            key=rec.key,
            partition=pending.partition,
            headers=replay_headers_from(list(rec.headers), 0, 2),
        )
    finally:
        await producer.stop()
    report = await replay(kafka.settings, Filters(), group=group)
    assert (report.recovered, report.replayed) == (1, 2)
    assert await replayed_from(kafka) == once_each(5)
    assert (await stats(kafka.settings, group=group)).pending == 0


async def test_killed_before_produce_replays_the_record(kafka: KafkaEnv, group: str) -> None:
    """A record whose produce never happened (note committed, then killed) is replayed once."""
    await put_dead_letters(kafka.settings, SPECS)
    await replay(kafka.settings, Filters(), max=2, group=group)
    rec = (await records(kafka, kafka.settings.topic_dlq))[2]
    await pending_note(kafka.settings, group, 2, rec.key)
    report = await replay(kafka.settings, Filters(), group=group)
    assert (report.recovered, report.replayed) == (0, 3)
    assert await replayed_from(kafka) == once_each(5)


async def start_cli(settings: Settings, group: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.dlq",
        "replay",
        *kafka_args(settings, group),
        *replay_args(settings),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def wait_for_events(kafka: KafkaEnv, at_least: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while len(await kafka.records(kafka.settings.topic_events, timeout_s=5)) < at_least:
        assert time.monotonic() < deadline, "replay made no progress"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
async def test_interrupted_cli_replay_resumes_exactly(
    kafka: KafkaEnv, group: str, sig: signal.Signals
) -> None:
    """`dlq replay` stopped by Ctrl-C, SIGTERM or kill -9 mid-way, then run again, moves
    every dead letter exactly once; a graceful stop says how to resume."""
    specs = [Spec(f"k{i}") for i in range(40)]
    await put_dead_letters(kafka.settings, specs)
    proc = await start_cli(kafka.settings, group, "--rate", "25")
    await wait_for_events(kafka, 5)
    proc.send_signal(sig)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    moved = len(await records(kafka, kafka.settings.topic_events))
    assert 5 <= moved < 40
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig]
        assert b"interrupted: replayed" in err and b"run the same command again to resume" in err
        assert b"Traceback" not in err
    again = await start_cli(kafka.settings, group)
    _out, err = await asyncio.wait_for(again.communicate(), 60)
    assert again.returncode == 0, err
    assert await replayed_from(kafka) == once_each(40)


async def test_out_of_attempts_is_parked_not_replayed(kafka: KafkaEnv, group: str) -> None:
    """A dead letter whose attempt count reached dlq_max_attempts goes to the parked topic
    with its headers and dlq.parked_at; one attempt below the limit is still replayed."""
    settings = kafka.settings.model_copy(update={"dlq_max_attempts": 3})
    await put_dead_letters(
        settings, [Spec("p1", attempt=3), Spec("p2", attempt=2), Spec("p3", attempt=4)]
    )
    dry = await cli("replay", "--dry-run", *kafka_args(settings, group), *replay_args(settings))
    assert dry.stdout.count("park (out of attempts)") == 2
    report = await replay(settings, Filters(), group=group)
    assert (report.replayed, report.parked) == (1, 2)
    assert await replayed_from(kafka) == [(0, 1)]
    dead = await records(kafka, settings.topic_dlq)
    parked = sorted(await records(kafka, settings.topic_parked), key=lambda r: r.offset)
    assert [header_map(r.headers)[PARKED_FROM] for r in parked] == ["0", "2"]
    for rec in parked:
        source = dead[int(header_map(rec.headers)[PARKED_FROM])]
        assert (rec.key, rec.value) == (source.key, source.value)
        assert list(rec.headers)[: len(source.headers)] == list(source.headers)
        assert header_map(rec.headers)[PARKED_AT].endswith("Z")
    assert (await ops_pending(settings, group)) == 0


async def ops_pending(settings: Settings, group: str) -> int:
    return (await stats(settings, group=group)).pending


async def test_dead_letters_arriving_during_a_replay_wait_for_the_next(
    kafka: KafkaEnv, group: str
) -> None:
    """A replay moves what the DLQ held when it started, so a replay that fails again
    cannot loop within one run."""
    await put_dead_letters(kafka.settings, SPECS[:3])

    class AddOne:
        added = False

        def begin(self, total: int) -> None:
            assert total == 3

        def advance(self, report: ReplayReport, step: Step | None) -> None:
            if not self.added:
                self.added = True
                asyncio.get_running_loop().create_task(
                    put_dead_letters(kafka.settings, [Spec("late")])
                )

    progress = AddOne()
    first = await replay(kafka.settings, Filters(), rate=5, progress=progress, group=group)
    assert first.replayed == 3
    assert len(await records(kafka, kafka.settings.topic_dlq)) == 4
    second = await replay(kafka.settings, Filters(), group=group)
    assert second.replayed == 1
    assert await replayed_from(kafka) == once_each(4)


async def test_rate_caps_records_per_second(kafka: KafkaEnv, group: str) -> None:
    """--rate 10 spaces 6 records at least 0.5 s apart end to end."""
    await put_dead_letters(kafka.settings, [Spec(f"t{i}") for i in range(6)])
    started = time.monotonic()
    report = await replay(kafka.settings, Filters(), rate=10, group=group)
    assert report.replayed == 6
    assert time.monotonic() - started >= 0.5


async def test_unreadable_records_are_left_alone(kafka: KafkaEnv, group: str) -> None:
    """A record without dead-letter headers is counted and never replayed."""
    await put_raw(kafka.settings, kafka.settings.topic_dlq, b"junk", key=b"k")
    await put_dead_letters(kafka.settings, SPECS[:1])
    report = await replay(kafka.settings, Filters(), group=group)
    assert (report.replayed, report.unreadable) == (1, 1)
    assert await replayed_from(kafka) == [(0, 1)]


async def test_multi_partition_dlq_replays_and_resumes_per_partition(
    kafka: KafkaEnv, group: str
) -> None:
    """With a 3-partition DLQ (as deployed), each partition's dead letters are replayed once,
    named by partition and offset, across interrupted runs."""
    topic = f"calls.dlq.multi.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    settings = kafka.settings.model_copy(update={"topic_dlq": topic})
    specs = [Spec(f"x{i}") for i in range(15)]
    await put_dead_letters(settings, specs)
    dead = await records(kafka, topic)
    assert len({r.partition for r in dead}) > 1
    for _ in range(3):
        await replay(settings, Filters(), max=4, group=group)
    await replay(settings, Filters(), group=group)
    assert await replayed_from(kafka) == sorted((r.partition, r.offset) for r in dead)


async def test_relative_until_leaves_newer_dead_letters_for_a_later_run(
    kafka: KafkaEnv, group: str
) -> None:
    """`--until 30m` stops at the first dead letter newer than that; the same command an hour
    later replays it; meanwhile it counts as pending."""
    await put_dead_letters(
        kafka.settings,
        [
            Spec("u1", age=timedelta(hours=2)),
            Spec("u2", age=timedelta(minutes=50)),
            Spec("u3", age=timedelta(minutes=10)),
        ],
    )
    first = await replay(kafka.settings, Filters.parse(now=NOW, until="30m"), group=group)
    assert first.replayed == 2
    assert await replayed_from(kafka) == once_each(2)
    figures = await stats(kafka.settings, group=group)
    assert figures.pending == 1
    later = await replay(
        kafka.settings, Filters.parse(now=NOW + timedelta(hours=1), until="30m"), group=group
    )
    assert later.replayed == 1
    assert await replayed_from(kafka) == once_each(3)
    assert (await stats(kafka.settings, group=group)).pending == 0


async def test_relative_since_keeps_earlier_replays_covered(kafka: KafkaEnv, group: str) -> None:
    """Dead letters replayed by `--since 2h` stay replayed when the same command runs later
    with a window that no longer includes them; an unfiltered replay does not send them again."""
    await put_dead_letters(
        kafka.settings,
        [Spec("s1", age=timedelta(minutes=90)), Spec("s2", age=timedelta(minutes=30))],
    )
    assert (
        await replay(kafka.settings, Filters.parse(now=NOW, since="2h"), group=group)
    ).replayed == 2
    await put_dead_letters(kafka.settings, [Spec("s3", age=timedelta(minutes=0))])
    later = Filters.parse(now=NOW + timedelta(hours=1), since="2h")
    assert (await replay(kafka.settings, later, group=group)).replayed == 1
    assert (await stats(kafka.settings, group=group)).pending == 0
    everything = await replay(kafka.settings, Filters(), group=group)
    assert (everything.replayed, everything.already) == (0, 3)
    assert await replayed_from(kafka) == once_each(3)
