"""The writer: a consumer-group member turning ``calls.events`` into HubSpot call records.

The Kafka shell around the pure core (``service.coalesce``): it polls records, hands them
to the coalescer with their offsets, flushes due calls to HubSpot in batches of at most
100 (``service.writer_flush``), records each call's HubSpot id durably in ``calls.ids``,
dead-letters what HubSpot refuses, and commits offsets only up to the first event whose
outcome is not settled. Transient HubSpot trouble (429, 5xx, timeouts) pauses fetching
and retries with backoff: nothing is dead-lettered for it and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from service import metrics
from service.coalesce import Coalescer, Pending, Ref
from service.config import Settings
from service.contacts import ContactResolver
from service.dlq.format import Failure, dlq_headers
from service.hubspot import HubSpotClient
from service.idstore import IdStore
from service.kafka import ensure_topics, make_producer
from service.model import decode_event
from service.offsets import OffsetTracker
from service.wiring import hubspot_client
from service.writer_flush import Flusher, Paused, find_contacts_by_phone

log = structlog.get_logger()

#: liveness: the writer is considered stuck when it has not polled Kafka for this long.
LIVENESS_S = 60.0
#: records asked for per poll
POLL_RECORDS = 1000


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.writer.on_revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.writer.on_assigned({tp.partition for tp in assigned})


class Writer:
    """One consumer-group member. ``run()`` until ``stop()``; then it drains and leaves."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.coalescer = Coalescer(settings.writer_linger_ms / 1000)
        self.offsets = OffsetTracker()
        self._stop = asyncio.Event()
        self.started = False
        self.last_poll = clock()
        self.paused_until = 0.0
        self.daily_limited = False
        self._failures = 0
        self.consumer: AIOKafkaConsumer | None = None
        self.hubspot: HubSpotClient | None = None
        self.store: IdStore | None = None
        self.flusher: Flusher | None = None
        self.producer: AIOKafkaProducer = make_producer(settings)
        self._undecodable: list[tuple[Pending, Failure]] = []
        #: partitions whose calls.ids records are loaded: only these are consumed
        self.loaded: set[int] = set()
        #: one flush at a time: the poll loop and the rebalance callbacks share the state
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if s.create_topics:
            await ensure_topics(s)
        await self.producer.start()
        self.hubspot = hubspot_client(s)
        await self.hubspot.__aenter__()
        self.store = IdStore(
            s.kafka_bootstrap,
            s.topic_ids,
            self.producer,
            retention_s=s.writer_ids_retention_days * 86400,
            wall=self.wall,
        )
        contacts = ContactResolver(
            self._lookup_contacts,
            ttl_s=s.contact_cache_ttl_s,
            negative_ttl_s=s.contact_negative_ttl_s,
            clock=self.clock,
        )
        self.flusher = Flusher(
            settings=s,
            hubspot=self.hubspot,
            store=self.store,
            contacts=contacts,
            dead_letter=self.dead_letter,
            wall=self.wall,
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.writer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=300_000,
            session_timeout_ms=s.writer_session_timeout_ms,
            heartbeat_interval_ms=max(1_000, s.writer_session_timeout_ms // 10),
        )
        await self.consumer.start()
        self.consumer.subscribe([s.topic_events], listener=_Rebalance(self))
        self.started = True
        log.info("writer_started", topic=s.topic_events, group=s.writer_group)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Poll, coalesce, flush and commit until ``stop()``; then drain within the deadline."""
        if not self.started:
            await self.start()
        assert self.consumer is not None
        gauges = asyncio.create_task(self._refresh_dlq_metrics())
        try:
            while not self._stop.is_set():
                await self._step()
        finally:
            gauges.cancel()
            await self._drain()

    async def _refresh_dlq_metrics(self) -> None:
        """Keep the DLQ depth/age gauges on this process's /metrics current."""
        interval = self.settings.dlq_metrics_interval_s
        if interval <= 0:
            return
        from service.dlq.kafkaio import DlqError
        from service.dlq.metrics import refresh_metrics

        while True:
            try:
                await refresh_metrics(self.settings)
            except DlqError as exc:
                log.warning("dlq_metrics_unavailable", error=str(exc))
            await asyncio.sleep(interval)

    async def _step(self) -> None:
        assert self.consumer is not None
        now = self.clock()
        self._apply_backpressure(now)
        wait = self.coalescer.next_due(now)
        timeout_ms = 200 if wait is None else int(min(max(wait, 0.005), 0.2) * 1000)
        room = max(1, self.settings.writer_max_buffer - self.coalescer.events)
        asked = min(room, POLL_RECORDS)
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=asked)
        self.last_poll = self.clock()
        metrics.LAST_POLL_AGE.set(0)
        for tp, records in batch.items():
            if tp.partition not in self.loaded:  # fetched while its records were loading
                self.consumer.seek(tp, records[0].offset)
                continue
            for record in records:
                self._take(tp.topic, tp.partition, record)
        # Catching up on a backlog: read what is already there before spending requests,
        # so the events of a call are merged into one write (bounded by the buffer size).
        backlog = sum(len(r) for r in batch.values()) >= asked and asked == POLL_RECORDS
        now = self.clock()
        if now >= self.paused_until and not backlog and self.coalescer.due(now):
            async with self._lock:
                await self._flush(self.coalescer.take(now))
                await self.commit()

    def _apply_backpressure(self, now: float) -> None:
        assert self.consumer is not None
        assignment = self.consumer.assignment()
        stalled = now < self.paused_until
        full = self.coalescer.events >= self.settings.writer_max_buffer
        loading = [tp for tp in assignment if tp.partition not in self.loaded]
        if loading:
            self.consumer.pause(*loading)
        fetchable = [tp for tp in assignment if tp.partition in self.loaded]
        if (stalled or full) and fetchable:
            self.consumer.pause(*fetchable)
            metrics.WRITER_PAUSED.set(1)
        elif fetchable:
            self.consumer.resume(*fetchable)
            metrics.WRITER_PAUSED.set(0)

    def _take(self, topic: str, partition: int, record: ConsumerRecord[bytes, bytes]) -> None:
        metrics.WRITER_EVENTS.inc()
        self.offsets.consumed(partition, record.offset)
        ref = Ref(
            topic=topic,
            partition=partition,
            offset=record.offset,
            key=record.key,
            value=record.value or b"",
            headers=tuple(record.headers or ()),
        )
        now = self.clock()
        try:
            event = decode_event(record.value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            key = (record.key or b"").decode("utf-8", "replace") or f"undecodable:{record.offset}"
            failure = Failure("decode", "decode", None, "INVALID_EVENT", str(exc))
            pending = Pending(key=key, first_seen=now, refs=[ref])
            self._undecodable.append((pending, failure))
            return
        if not self.coalescer.add(event, ref, now):
            metrics.WRITER_DUPLICATES.inc()

    async def _flush(self, pendings: list[Pending]) -> None:
        """Write a set of due calls; settle what is final, put back what must be retried."""
        assert self.flusher is not None
        undecodable, self._undecodable = self._undecodable, []
        for pending, failure in undecodable:
            await self.dead_letter([pending], failure)
            self._settle([pending])
        if not pendings:
            return
        log.debug("flush_started", calls=len(pendings), still_buffered=self.coalescer.events)
        try:
            result = await self.flusher.flush(pendings)
        except Paused as paused:
            self._failures += 1
            backoff = paused.retry_after_s or min(30.0, 0.5 * 2 ** min(self._failures, 6))
            self.paused_until = self.clock() + backoff
            self.daily_limited = paused.daily
            self.coalescer.restore(pendings, not_before=self.paused_until)
            log.warning("writer_paused", reason=paused.reason, retry_in_s=round(backoff, 2))
            return
        self._failures = 0
        self.daily_limited = False
        self._settle(result.settled)
        log.info(
            "flush_done",
            calls=len(pendings),
            settled=len(result.settled),
            retry=len(result.retry),
            still_buffered=self.coalescer.events,
        )
        if result.retry:
            self.coalescer.restore(result.retry, not_before=self.clock() + result.retry_after_s)

    def _settle(self, pendings: list[Pending]) -> None:
        for pending in pendings:
            for ref in pending.refs:
                self.offsets.settled(ref.partition, ref.offset)

    async def dead_letter(self, pendings: list[Pending], failure: Failure) -> None:
        """Produce every original record of these calls to the DLQ (acks awaited)."""
        now = datetime.now(UTC)
        futures = []
        for pending in pendings:
            for ref in pending.refs:
                headers = dlq_headers(
                    ref.headers,
                    topic=ref.topic,
                    partition=ref.partition,
                    offset=ref.offset,
                    failure=failure,
                    failed_at=now,
                )
                futures.append(
                    await self.producer.send(
                        self.settings.topic_dlq, value=ref.value, key=ref.key, headers=headers
                    )
                )
            metrics.DLQ_RECORDS.labels(failure.category).inc(len(pending.refs))
            log.warning(
                "call_dead_lettered",
                key=pending.key,
                category=failure.category,
                message=failure.message[:200],
                records=len(pending.refs),
            )
        if futures:
            await asyncio.gather(*futures)

    async def commit(self) -> None:
        assert self.consumer is not None
        positions = self.offsets.to_commit()
        assigned = {tp.partition for tp in self.consumer.assignment()}
        positions = {p: o for p, o in positions.items() if p in assigned}
        if not positions:
            return
        topic = self.settings.topic_events
        await self.consumer.commit({TopicPartition(topic, p): o for p, o in positions.items()})
        self.offsets.committed(positions)
        for partition, lag in self.offsets.lag().items():
            metrics.CONSUMER_LAG.labels(str(partition)).set(lag)

    # -- rebalancing -------------------------------------------------------------------

    async def on_assigned(self, partitions: set[int]) -> None:
        """Load the calls' durable records of new partitions before consuming their events."""
        assert self.store is not None and self.consumer is not None
        if not partitions:
            return
        topic = self.settings.topic_events
        self.consumer.pause(*[TopicPartition(topic, p) for p in partitions])
        async with self._lock:
            await self.store.load(partitions)
            self.loaded |= partitions
        log.info("partitions_assigned", partitions=sorted(partitions))

    async def on_revoked(self, partitions: set[int]) -> None:
        """Flush what can be settled for the revoked partitions, commit, forget the rest.

        Whatever is not settled within half the flush deadline is dropped uncommitted: the
        partition's next owner reads it again (and its calls.ids records tell it what landed).
        """
        if not partitions:
            return
        async with self._lock:
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.writer_flush_deadline_s / 2):
                        await self._flush(self.coalescer.take(float("inf"), partitions))
                try:
                    await self.commit()
                except KafkaError as exc:  # the group moved on: the next owner re-reads
                    log.warning("commit_on_revoke_failed", error=repr(exc))
            finally:
                dropped = self.coalescer.drop(partitions)
                self.offsets.forget(partitions)
                self.loaded -= partitions
                if self.store is not None:
                    self.store.forget(partitions)
        log.info("partitions_revoked", partitions=sorted(partitions), dropped=len(dropped))

    async def _drain(self) -> None:
        """SIGTERM path: flush everything pending within the deadline, commit, leave."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.writer_flush_deadline_s
        try:
            async with asyncio.timeout_at(deadline):
                while len(self.coalescer) or self._undecodable:
                    taken = self.coalescer.take(float("inf"))
                    if not taken and not self._undecodable:
                        await asyncio.sleep(0.2)
                        continue
                    async with self._lock:
                        await self._flush(taken)
                    if self.clock() < self.paused_until:
                        await asyncio.sleep(min(1.0, self.paused_until - self.clock()))
        except TimeoutError:
            log.warning("writer_drain_deadline", pending_calls=len(self.coalescer))
        finally:
            if self.consumer is not None:
                with contextlib.suppress(Exception):
                    await self.commit()
                await self.consumer.stop()
            if self.hubspot is not None:
                await self.hubspot.aclose()
            await self.producer.stop()
            log.info("writer_stopped")

    # -- helpers -----------------------------------------------------------------------

    async def _lookup_contacts(self, numbers: list[str]) -> dict[str, list[str]]:
        assert self.hubspot is not None
        return await find_contacts_by_phone(self.hubspot, numbers, self.settings.default_region)

    def healthy(self) -> bool:
        age = self.clock() - self.last_poll
        metrics.LAST_POLL_AGE.set(age)
        return age < LIVENESS_S

    def ready(self) -> bool:
        return self.started and not self.daily_limited and not self._stop.is_set()

    def health_app(self) -> Starlette:
        async def healthz(_: Request) -> Response:
            ok = self.healthy()
            return JSONResponse(
                {
                    "status": "ok" if ok else "stuck",
                    "last_poll_age_s": round(self.clock() - self.last_poll, 3),
                },
                status_code=200 if ok else 503,
            )

        async def readyz(_: Request) -> Response:
            ok = self.ready()
            return JSONResponse(
                {"status": "ready" if ok else "not ready", "daily_limited": self.daily_limited},
                status_code=200 if ok else 503,
            )

        async def metrics_endpoint(_: Request) -> Response:
            self.healthy()
            return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        return Starlette(
            routes=[
                Route("/healthz", healthz),
                Route("/readyz", readyz),
                Route("/metrics", metrics_endpoint),
            ]
        )
