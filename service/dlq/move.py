"""Moving one dead letter exactly once (the Kafka side of ``replay``).

The protocol, per record: commit the replay's cursor *onto* the record with a ``pending``
note (target topic and partition, the timestamp the record will carry); produce it with the
idempotent producer (``acks=all``); commit the cursor past it. Whatever stops a replay in
between, the next run finds the note and ``was_moved`` looks for the record where it would
be, so it is produced once: never skipped, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Final, Literal

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from service.config import Settings
from service.deadletter import (
    PARKED_FROM,
    PARKED_FROM_PARTITION,
    REPLAYED_FROM,
    REPLAYED_FROM_PARTITION,
    header_map,
    parked_headers,
    replay_headers_from,
)
from service.dlq.checkpoint import Checkpoint, Pending, advance
from service.dlq.filters import Filters
from service.dlq.kafkaio import Cursor, KafkaLink, Record, talking_to_kafka

Action = Literal["replay", "park"]
#: how far a pending record's broker timestamp may be from the one it was sent with
PENDING_WINDOW_MS: Final = 5 * 60 * 1000


def target_partition(key: bytes | None, partitions: list[int]) -> int:
    """The partition the default (Java-compatible murmur2) partitioner picks for ``key``:
    a replayed event lands where the ingress puts the call's other events."""
    return int(DefaultPartitioner()(key, sorted(partitions), sorted(partitions)))


async def was_moved(
    link: KafkaLink, settings: Settings, dlq_partition: int, pending: Pending
) -> bool:
    """Whether the record a stopped run was moving reached its target partition."""
    if pending.topic == settings.topic_parked:
        names = (PARKED_FROM, PARKED_FROM_PARTITION)
    else:
        names = (REPLAYED_FROM, REPLAYED_FROM_PARTITION)
    # The record, if it was appended, carries timestamp at_ms: it is at or after the first
    # offset stamped at_ms - window (the window absorbs LogAppendTime clock skew).
    start = await link.offset_at(
        pending.topic, pending.partition, pending.at_ms - PENDING_WINDOW_MS
    )
    if start is None:
        return False
    _, end = await link.bounds(pending.topic)
    stop = end.get(pending.partition, 0)
    async with contextlib.aclosing(
        link.scan(pending.topic, pending.partition, start, stop)
    ) as scan:
        async for rec in scan:
            h = header_map(rec.headers)
            if h.get(names[0]) == str(pending.offset) and h.get(names[1], "0") == str(
                dlq_partition
            ):
                return True
            if rec.timestamp_ms > pending.at_ms + 2 * PENDING_WINDOW_MS:
                return False  # appended well after it could have been
    return False


class Mover:
    """Moves one dead letter at a time with the pending-note protocol; tracks commits.

    ``base`` is the cursor's commit per DLQ partition when the run began and ``starts``
    where the run began: every commit adds the range looked at since (``advance``).
    """

    def __init__(
        self,
        settings: Settings,
        filters: Filters,
        producer: AIOKafkaProducer,
        cursor: Cursor,
        *,
        partitions: dict[str, list[int]],
        base: dict[int, Checkpoint | None],
        starts: dict[int, int],
        now: Callable[[], datetime],
        on_moved: Callable[[Action], None],
    ) -> None:
        self.settings = settings
        self.filters = filters
        self.producer = producer
        self.cursor = cursor
        self.partitions = partitions
        self.base = base
        self.starts = starts
        self.now = now
        self.on_moved = on_moved
        self.committed: dict[int, int] = {}
        self.unsure = False  # a move failed half-way: leave its pending note for the next run

    async def move_shielded(self, record: Record, action: Action) -> None:
        """Move the record; a cancellation waits for it to finish, then propagates."""
        task = asyncio.ensure_future(self._move(record, action))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task})
            if task.cancelled() or task.exception() is not None:
                self.unsure = True
            raise
        except BaseException:
            self.unsure = True
            raise

    async def _move(self, record: Record, action: Action) -> None:
        s = self.settings
        p = record.partition
        now = self.now()
        if action == "park":
            topic = s.topic_parked
            headers = parked_headers(
                record.headers, partition=p, dlq_offset=record.offset, parked_at=now
            )
        else:
            topic = s.topic_events
            headers = replay_headers_from(record.headers, p, record.offset)
        target = target_partition(record.key, self.partitions[topic])
        at_ms = int(now.timestamp() * 1000)
        pending = Pending(record.offset, topic, target, at_ms)
        await self.cursor.commit(p, self._checkpoint(p, record.offset, pending))
        with talking_to_kafka(s.kafka_bootstrap, f"producing to {topic}"):
            await self.producer.send_and_wait(
                topic,
                value=record.value,
                key=record.key,
                partition=target,
                timestamp_ms=at_ms,
                headers=headers,
            )
        self.on_moved(action)
        await self.cursor.commit(p, self._checkpoint(p, record.offset + 1))
        self.committed[p] = record.offset + 1

    def _checkpoint(self, p: int, position: int, pending: Pending | None = None) -> Checkpoint:
        return advance(
            self.base.get(p),
            start=self.starts[p],
            position=position,
            filters=self.filters,
            pending=pending,
        )

    async def settle(self, partition: int, position: int) -> None:
        """Commit the cursor past records looked at but not moved (best effort: re-reading
        them next time is harmless). Never over a half-done move's pending note."""
        if self.unsure or position <= self.committed.get(partition, -1):
            return
        with contextlib.suppress(Exception):
            await asyncio.shield(
                self.cursor.commit(partition, self._checkpoint(partition, position))
            )
            self.committed[partition] = position
