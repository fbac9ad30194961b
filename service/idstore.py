"""The durable per-call record: the compacted ``calls.ids`` topic.

Keyed like ``calls.events`` (``provider:call_id``) and co-partitioned with it (a record
is produced to the same partition number as its call's events), so the writer that owns
a partition of events loads exactly the records it needs when the partition is assigned.
A record is written *before* the events' offsets are committed: after a crash, the
redelivered events find the call's HubSpot id (update, not a second create) or its
create intent (reconcile by searching ``hs_call_external_id`` before creating again).

Memory stays bounded: records not written for ``retention_s`` are not loaded (and are
tombstoned so the topic forgets them too). A call whose record may have been forgotten
is recognisable by its old events, and the writer searches HubSpot for it before
creating (see ``service.writer_flush``): the store is an optimization, HubSpot the truth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from service.coalesce import CallRecord, decode_record, encode_record

log = structlog.get_logger()


class IdStore:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        producer: AIOKafkaProducer,
        retention_s: float = float("inf"),
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap = bootstrap
        self.retention_s = retention_s
        self.wall = wall
        self.topic = topic
        self.producer = producer
        self.records: dict[str, CallRecord] = {}
        self._partition_of: dict[str, int] = {}

    def get(self, key: str) -> CallRecord | None:
        return self.records.get(key)

    async def load(self, partitions: set[int]) -> int:
        """Read the assigned partitions of the topic from the beginning to their end."""
        if not partitions:
            return 0
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        loaded = 0
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            # Explicit offsets: aiokafka's seek_to_beginning() could land at the end when
            # position() was asked right after it (seen with Kafka 4.3).
            for tp, first in (await consumer.beginning_offsets(tps)).items():
                consumer.seek(tp, first)
            end = await consumer.end_offsets(tps)
            remaining = {tp for tp in tps if end[tp] > 0}
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, recs in batch.items():
                    for rec in recs:
                        if rec.key is None:
                            continue
                        key = rec.key.decode()
                        if rec.value is None:
                            self.records.pop(key, None)
                            self._partition_of.pop(key, None)
                        else:
                            self.records[key] = decode_record(rec.value)
                            self._partition_of[key] = tp.partition
                        loaded += 1
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
        expired = self._expired(partitions)
        for key, _ in expired:
            self.records.pop(key, None)
            self._partition_of.pop(key, None)
        if expired:  # let compaction drop them from the topic too
            await self.put_many([(key, partition, None) for key, partition in expired])
        log.info(
            "idstore_loaded",
            partitions=sorted(partitions),
            records=loaded,
            kept=sum(1 for p in self._partition_of.values() if p in partitions),
            expired=len(expired),
        )
        return loaded

    def _expired(self, partitions: set[int]) -> list[tuple[str, int]]:
        """Records of these partitions not written within the retention window."""
        horizon = self.wall() - self.retention_s
        return [
            (key, partition)
            for key, partition in self._partition_of.items()
            if partition in partitions
            and (touched := self.records[key].touched_at) is not None
            and touched < horizon
        ]

    def forget(self, partitions: set[int]) -> None:
        for key in [k for k, p in self._partition_of.items() if p in partitions]:
            self.records.pop(key, None)
            self._partition_of.pop(key, None)

    async def put_many(self, items: list[tuple[str, int, CallRecord | None]]) -> None:
        """Durably write records (``None``: a tombstone) and wait for the broker's acks."""
        futures = []
        for key, partition, record in items:
            value = None if record is None else encode_record(record)
            futures.append(
                await self.producer.send(
                    self.topic, value=value, key=key.encode(), partition=partition
                )
            )
        if futures:
            await asyncio.gather(*futures)
        for key, partition, record in items:
            if record is None:
                self.records.pop(key, None)
                self._partition_of.pop(key, None)
            else:
                self.records[key] = record
                self._partition_of[key] = partition
