"""Read partitions of a topic from a start offset to their end, once: the one helper behind
the writer's ``calls.ids`` load, the DLQ tools' scans and the test fixtures' topic reads.

"The end" is the log-end offset when the read starts: records produced later are not
waited for. Offsets are sought explicitly (``beginning_offsets``), because aiokafka's
``seek_to_beginning()`` followed by ``position()`` was seen to land at the end (Kafka 4.3).
A read that makes no progress for ``stall_s`` raises ``TimeoutError`` instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition


async def read_to_end(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    *,
    start: Mapping[TopicPartition, int] | None = None,
    end: Mapping[TopicPartition, int] | None = None,
    stall_s: float = 30.0,
    max_records: int = 1000,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of ``tps`` from ``start`` (default: the beginning) up to ``end``
    (default: the log end now), partition by partition in offset order."""
    if not tps:
        return
    consumer.assign(tps)
    first = dict(start) if start is not None else await consumer.beginning_offsets(tps)
    last = dict(end) if end is not None else await consumer.end_offsets(tps)
    remaining = {tp for tp in tps if first.get(tp, 0) < last[tp]}
    for tp in remaining:
        consumer.seek(tp, first.get(tp, 0))
    loop = asyncio.get_running_loop()
    progress_at = loop.time()
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=300, max_records=max_records)
        moved = False
        for tp, records in batch.items():
            for record in records:
                if record.offset >= last[tp]:
                    break
                yield record
            moved = moved or bool(records)
        for tp in list(remaining):
            if await consumer.position(tp) >= last[tp]:
                remaining.discard(tp)
                moved = True
        if moved:
            progress_at = loop.time()
        elif loop.time() - progress_at > stall_s:
            raise TimeoutError(f"no progress reading {sorted(str(tp) for tp in remaining)}")
