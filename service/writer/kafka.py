"""The dead-letter sink over Kafka (``DeadLetterSink``): each original record with the
``dlq.*`` headers of ``service.deadletter``, acks awaited before anything is settled."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaProducer

from handlers.event import DEFAULT_PORTAL
from service import metrics
from service.deadletter import Failure, dlq_headers
from service.writer.buffer import Ref

log = structlog.get_logger()


class KafkaDeadLetters:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send(
        self, items: Sequence[tuple[Ref, Failure]], *, portal: str = DEFAULT_PORTAL
    ) -> None:
        if not items:
            return
        now = datetime.now(UTC)
        futures = []
        for ref, failure in items:
            headers = dlq_headers(
                ref.headers,
                topic=ref.topic,
                partition=ref.partition,
                offset=ref.offset,
                failure=failure,
                failed_at=now,
                portal=portal,
            )
            futures.append(
                await self.producer.send(self.topic, value=ref.value, key=ref.key, headers=headers)
            )
        await asyncio.gather(*futures)
        by_key: Counter[tuple[str, str, str]] = Counter()
        for ref, failure in items:
            key = (ref.key or b"").decode("utf-8", "replace")[:300]
            by_key[(key, failure.category, failure.message[:200])] += 1
            metrics.DLQ_RECORDS.labels(failure.category).inc()
        for (key, category, message), n in by_key.items():
            request_ids = sorted(
                {
                    v.decode("utf-8", "replace")
                    for ref, _ in items
                    if (ref.key or b"").decode("utf-8", "replace")[:300] == key
                    for k, v in ref.headers
                    if k == "request_id"
                }
            )
            log.warning(
                "call_dead_lettered",
                key=key,
                portal=portal,
                category=category,
                message=message,
                records=n,
                request_ids=request_ids or None,
            )
