"""The writer's Kafka output: ``WriterProducer`` (the ``calls.ids`` records and the dead
letters, acks awaited) and the dead-letter sink over it (``DeadLetterSink``): each
original record with the ``dlq.*`` headers of ``service.deadletter``, acks awaited
before anything is settled.

When Kafka cannot take the records, a send raises ``StoreUnavailable`` (the flush settles
nothing and tries again). An idempotent producer that met a non-retriable error never
recovers by itself (``OutOfOrderSequenceNumber`` once a restarted broker no longer knows
its sequence): it is replaced by a new one, started at the next send.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from handlers.event import DEFAULT_PORTAL
from service import metrics
from service.config import Settings
from service.deadletter import Failure, dlq_headers
from service.kafka import make_producer
from service.writer.buffer import Ref
from service.writer.ports import StoreUnavailable

log = structlog.get_logger()


@dataclass(frozen=True)
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None
    partition: int | None = None
    headers: Sequence[tuple[str, bytes]] = ()


class WriterProducer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer = make_producer(settings)
        self._started = False
        self._lock = asyncio.Lock()
        self.replaced = 0

    async def start(self) -> None:
        async with self._lock:
            if not self._started:
                await self.producer.start()
                self._started = True

    async def stop(self) -> None:
        """Flush and close the producer (one never started is closed too)."""
        await self.producer.stop()
        self._started = False

    async def send_all(self, records: Sequence[Outgoing]) -> None:
        """Produce ``records`` and wait for every ack; ``StoreUnavailable`` if Kafka
        cannot take them (then some may still have been written: callers write only
        what may be repeated)."""
        if not records:
            return
        producer = self.producer
        try:
            await self.start()
            futures = [
                await producer.send(
                    r.topic,
                    value=r.value,
                    key=r.key,
                    partition=r.partition,
                    headers=list(r.headers) or None,
                )
                for r in records
            ]
            await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            if isinstance(exc, KafkaError) and not exc.retriable:
                await self._replace(producer, exc)
            raise StoreUnavailable(repr(exc)) from exc

    async def _replace(self, stale: AIOKafkaProducer, exc: BaseException) -> None:
        async with self._lock:
            if self.producer is not stale:  # another send replaced it already
                return
            self.producer = make_producer(self.settings)
            self._started = False
            self.replaced += 1
        log.warning("kafka_producer_reset", error=repr(exc))
        metrics.WRITER_PRODUCER_RESETS.inc()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await stale.stop()


class KafkaDeadLetters:
    def __init__(self, producer: WriterProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send(
        self, items: Sequence[tuple[Ref, Failure]], *, portal: str = DEFAULT_PORTAL
    ) -> None:
        if not items:
            return
        now = datetime.now(UTC)
        records = [
            Outgoing(
                self.topic,
                ref.value,
                ref.key,
                headers=dlq_headers(
                    ref.headers,
                    topic=ref.topic,
                    partition=ref.partition,
                    offset=ref.offset,
                    failure=failure,
                    failed_at=now,
                    portal=portal,
                ),
            )
            for ref, failure in items
        ]
        await self.producer.send_all(records)
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
