"""What Kafka holds, read from the outside: a group's true lag and a topic's records.

The true lag of the writers is, per partition of ``calls.events``, the log-end offset minus
the offset the writer group committed (nothing committed: the whole partition is lag). It
is 0 only when every event the ingress acknowledged is settled by some writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition


@contextlib.contextmanager
def quiet_aiokafka() -> Iterator[None]:
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield None
    finally:
        logger.setLevel(level)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(50):
        cluster = await consumer._client.fetch_all_metadata()
        ids = cluster.partitions_for_topic(topic) or set()
        if ids:
            return [TopicPartition(topic, p) for p in sorted(ids)]
        await asyncio.sleep(0.1)
    return []


async def group_lag(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Lag per partition of ``topic`` for consumer group ``group``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        parts = await _partitions(consumer, topic)
        if not parts:
            return {}
        ends = await consumer.end_offsets(parts)
        committed = await admin.list_consumer_group_offsets(group, partitions=parts)
        lag: dict[int, int] = {}
        for tp in parts:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.partition] = max(0, ends[tp] - offset)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str
    headers: dict[str, str]
    value: bytes


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Record]:
    """Every record in ``topic`` from the beginning to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = await _partitions(consumer, topic)
        if not parts:
            return []
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        for tp, first in (await consumer.beginning_offsets(parts)).items():
            consumer.seek(tp, first)
        out: list[Record] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if all([await consumer.position(tp) >= ends[tp] for tp in parts]):
                break
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                for r in recs:
                    out.append(
                        Record(
                            r.partition,
                            r.offset,
                            (r.key or b"").decode("utf-8", "replace"),
                            {k: v.decode("utf-8", "replace") for k, v in r.headers},
                            r.value or b"",
                        )
                    )
        return out
    finally:
        await consumer.stop()
