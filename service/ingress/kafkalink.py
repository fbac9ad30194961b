"""The ingress's Kafka producer: connects in the background so the ingress starts and keeps
serving (with 503s) while Kafka is down, and recovers without a restart.

A producer the broker no longer accepts is replaced: after a non-retriable error (an
idempotent producer's ``OutOfOrderSequenceNumber`` once a restarted broker lost its state)
or ``RESET_AFTER`` failed produces in a row, it is closed and a new one connects; until then
``ready()`` is False and webhooks get 503 (the providers retry)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from handlers.event import CallEvent, encode_event
from service import metrics
from service.config import Settings
from service.kafka import ensure_topics, make_producer

log = structlog.get_logger()

#: failed produces in a row after which the producer is replaced
RESET_AFTER = 3


class KafkaLink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_loop())

    async def _connect_loop(self) -> None:
        delay = 0.2
        while True:
            producer = make_producer(self.settings)
            try:
                await producer.start()
                if self.settings.create_topics:
                    await ensure_topics(self.settings)
            except Exception as exc:  # broker unreachable: keep trying, answer 503 meanwhile
                log.warning("kafka_connect_failed", error=repr(exc), retry_in_s=delay)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.producer = producer
            log.info("kafka_producer_connected", bootstrap=self.settings.kafka_bootstrap)
            return

    async def ready(self, timeout_s: float = 2.0) -> bool:
        """True when the producer is connected and the broker answers a metadata request."""
        producer = self.producer
        if producer is None:
            return False
        try:
            return bool(await asyncio.wait_for(producer.client.force_metadata_update(), timeout_s))
        except Exception:
            return False

    async def produce(self, events: list[CallEvent], request_id: str) -> None:
        """Send every event and wait for the broker's acks (``TimeoutError`` if it doesn't).
        Keyed by ``event.portal_key`` (``provider:call_id`` in the ``default`` portal,
        ``portal/provider:call_id`` in others). Headers: ``event_id``, ``provider``,
        ``portal`` (always, ``default`` too) and ``request_id`` (the webhook's, for logs)."""
        producer = self.producer
        if producer is None:
            raise ConnectionError("kafka producer not connected")
        started = time.perf_counter()
        futures = [
            await producer.send(
                self.settings.topic_events,
                value=encode_event(event),
                key=event.portal_key.encode(),
                headers=[
                    ("event_id", event.event_id.encode()),
                    ("provider", event.provider.encode()),
                    ("portal", event.portal.encode()),
                    ("request_id", request_id.encode()),
                ],
            )
            for event in events
        ]
        await asyncio.gather(*futures)
        self.failures = 0
        metrics.PRODUCE_SECONDS.observe(time.perf_counter() - started)

    def failed(self, exc: BaseException) -> None:
        """A produce failed (or timed out): replace the producer when it looks stuck."""
        self.failures += 1
        fatal = isinstance(exc, KafkaError) and not exc.retriable
        if self.producer is None or not (fatal or self.failures >= RESET_AFTER):
            return
        stale, self.producer = self.producer, None
        self.failures = 0
        log.warning("kafka_producer_reset", error=repr(exc))
        asyncio.get_running_loop().create_task(self._replace(stale))

    async def _replace(self, stale: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stale.stop(), 10)
        self._task = asyncio.create_task(self._connect_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.producer is not None:
            await self.producer.stop()
