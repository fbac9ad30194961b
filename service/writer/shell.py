"""The writer's Kafka shell: a consumer-group member that only polls, pauses, resumes,
commits and handles rebalances. Everything it reads goes into the buffer; due calls go to
the flush (``service.writer.flush``), whose report says which events are settled, which
to retry when, and whether HubSpot wants writing paused.

Fencing: the shell holds a *lease* on its partitions, renewed by every successful commit
(the group coordinator validates the member and generation of each commit). Before any
write, the flush asks ``confirm``: with a fresh lease the owned partitions are those
assigned and loaded; with a stale one (a flush longer than a third of the session timeout,
a frozen VM, a lost session) a commit is tried first, and a refused commit means this
writer owns nothing until the group says otherwise: it drops its buffer, writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Collection
from pathlib import Path

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition
from starlette.applications import Starlette

from service import metrics
from service.clock import SYSTEM, Clock
from service.config import Settings
from service.contacts import ContactMatcher, make_contact_matcher
from service.deadletter import Failure
from service.hubspot import HubSpotClient
from service.hubspot.errors import HubSpotError, HubSpotNotFound
from service.kafka import ensure_topics, make_producer
from service.model import decode_event
from service.wiring import hubspot_client
from service.writer.buffer import Buffer, Pending, Ref
from service.writer.core import Policy
from service.writer.flush import Flusher, FlushReport
from service.writer.health import health_app
from service.writer.hubspot import (
    KEY_PROPERTY,
    HubSpotCalls,
    HubSpotContacts,
)
from service.writer.idstore import IdStore
from service.writer.kafka import KafkaDeadLetters
from service.writer.offsets import OffsetTracker
from service.writer.ports import Blocked

log = structlog.get_logger()

#: liveness: the writer is considered stuck when it has not polled Kafka for this long
LIVENESS_S = 60.0
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

    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM) -> None:
        self.settings = settings
        self.clock = clock
        self.buffer = Buffer(
            settings.writer_linger_ms / 1000,
            max_events=settings.writer_max_buffer,
            max_bytes=settings.writer_max_buffer_bytes,
        )
        self.offsets = OffsetTracker()
        self._stop = asyncio.Event()
        self.started = False
        self.last_poll = clock.monotonic()
        self.paused_until = 0.0
        self.pause_kind: str | None = None
        self._failures = 0
        self.consumer: AIOKafkaConsumer | None = None
        self.hubspot: HubSpotClient | None = None
        self.store: IdStore | None = None
        self.flusher: Flusher | None = None
        self.matcher: ContactMatcher | None = None
        self.producer: AIOKafkaProducer = make_producer(settings)
        self._undecodable: list[tuple[Ref, Failure]] = []
        #: partitions whose calls.ids records are loaded: only these are consumed
        self.loaded: set[int] = set()
        self._loading: dict[int, asyncio.Task[None]] = {}
        self.lease_at = float("-inf")
        #: one flush at a time: the poll loop and the rebalance callbacks share the state
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        #: partitions to read again from their committed offsets (calls abandoned, fenced)
        self._rewinds: set[int] = set()
        self.mode = "unknown"

    @property
    def daily_limited(self) -> bool:
        return self.pause_kind == "daily"

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if s.create_topics:
            await ensure_topics(s)
        await self.producer.start()
        self.hubspot = hubspot_client(s)
        await self.hubspot.__aenter__()
        key_property = await self._key_property(self.hubspot)
        state = Path(s.writer_state_dir or tempfile.mkdtemp(prefix="callbridge-writer-"))
        self.store = IdStore(
            s.kafka_bootstrap,
            s.topic_ids,
            self.producer,
            path=state / "ids.sqlite3",
            retention_s=s.writer_ids_retention_days * 86400,
            wall=self.clock.wall,
        )
        contact_settings = s
        if s.contact_index_dir is None:  # beside the ids map: per writer, unless configured
            contact_settings = s.model_copy(update={"contact_index_dir": state / "contacts"})
        self.matcher = make_contact_matcher(self.hubspot, contact_settings, self.clock.wall)
        self.flusher = Flusher(
            calls=HubSpotCalls(self.hubspot, key_property),
            store=self.store,
            dead_letters=KafkaDeadLetters(self.producer, s.topic_dlq),
            ownership=self,
            contacts=HubSpotContacts(self.matcher),
            policy=Policy(
                key_property=key_property,
                reconcile_after_s=s.writer_reconcile_after_s,
                unknown_window_s=s.hubspot_timeout_s + 5.0,
            ),
            wall=self.clock.wall,
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
        log.info("writer_started", topic=s.topic_events, group=s.writer_group, mode=self.mode)

    async def _key_property(self, hubspot: HubSpotClient) -> str | None:
        """Whether the portal has the unique call-key property (``callbridge hubspot setup``)."""
        try:
            found = await hubspot.get_call_property(KEY_PROPERTY)
        except HubSpotNotFound:
            found = None
        except HubSpotError as exc:
            log.warning("call_key_property_unreadable", error=str(exc))
            found = None
        unique = found is not None and found.has_unique_value
        self.mode = "key" if unique else "search"
        for mode in ("key", "search"):
            metrics.RECONCILE_MODE.labels(mode).set(1 if mode == self.mode else 0)
        if unique:
            log.info("reconcile_mode", mode="key", property=KEY_PROPERTY)
            return KEY_PROPERTY
        log.warning(
            "reconcile_mode",
            mode="search",
            reason=f"no unique {KEY_PROPERTY} property: run `callbridge hubspot setup`",
        )
        return None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Poll, buffer, flush and commit until ``stop()``; then drain within the deadline."""
        if not self.started:
            await self.start()
        self._tasks = [asyncio.create_task(self._export_lag())]
        if self.matcher is not None:
            self._tasks.append(asyncio.create_task(self.matcher.run()))
        try:
            while not self._stop.is_set():
                await self._step()
        finally:
            for task in self._tasks + list(self._loading.values()):
                task.cancel()
            await self._drain()

    async def _step(self) -> None:
        assert self.consumer is not None
        if self._rewinds:
            await self._rewind(set(self._rewinds))
        now = self.clock.monotonic()
        self._apply_backpressure(now)
        wait = self.buffer.next_due(self.clock.wall())
        timeout_ms = 200 if wait is None else int(min(max(wait, 0.005), 0.2) * 1000)
        room = max(1, self.buffer.max_events - self.buffer.events)
        asked = min(room, POLL_RECORDS)
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=asked)
        self.last_poll = self.clock.monotonic()
        metrics.LAST_POLL_AGE.set(0)
        for tp, records in batch.items():
            if tp.partition not in self.loaded:  # fetched while its records were loading
                self.consumer.seek(tp, records[0].offset)
                continue
            for record in records:
                self._take(tp.topic, tp.partition, record)
        # Catching up on a backlog: read what is there before spending requests, so the
        # events of a call are merged into one write (bounded by the buffer's size).
        backlog = sum(len(r) for r in batch.values()) >= asked == POLL_RECORDS
        backlog = backlog and not self.buffer.full()
        wall = self.clock.wall()
        if self.clock.monotonic() < self.paused_until or backlog:
            return
        if self.buffer.due(wall) or self._undecodable:
            async with self._lock:
                await self._flush(self.buffer.take(wall))
                await self.commit()

    def _apply_backpressure(self, now: float) -> None:
        assert self.consumer is not None
        assignment = self.consumer.assignment()
        held = self.loaded - self._rewinds
        loading = [tp for tp in assignment if tp.partition not in held]
        if loading:
            self.consumer.pause(*loading)
        fetchable = [tp for tp in assignment if tp.partition in held]
        paused = now < self.paused_until or self.buffer.full()
        if paused and fetchable:
            self.consumer.pause(*fetchable)
        elif fetchable:
            self.consumer.resume(*fetchable)
        metrics.WRITER_PAUSED.set(1 if paused else 0)

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
        try:
            event = decode_event(record.value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            failure = Failure("decode", "decode", None, "INVALID_EVENT", str(exc))
            self._undecodable.append((ref, failure))
            return
        if not self.buffer.add(event.key, event, ref, self.clock.wall()):
            metrics.WRITER_DUPLICATES.inc()

    async def _flush(self, pendings: list[Pending]) -> None:
        """Write due calls; settle what is final, put back what must be retried."""
        assert self.flusher is not None
        await self._dead_letter_undecodable()
        if not pendings:
            return
        report = await self.flusher.flush(pendings)
        self._settle(report.settled)
        self._calls_written(report.settled)
        for pending, at in report.retry:
            self.buffer.restore([pending], not_before=at)
        if report.abandoned:
            metrics.WRITER_FENCED.inc()
            await self._rewind({p.partition for p in report.abandoned})
        for decision, n in report.counts.items():
            metrics.WRITER_DECISIONS.labels(decision).inc(n)
        metrics.WRITER_COALESCED.inc(sum(max(0, len(p.refs) - 1) for p in report.settled))
        self._paused(report)
        log.info(
            "flush_done",
            calls=len(pendings),
            settled=len(report.settled),
            retry=len(report.retry),
            dead=len(report.dead),
            abandoned=len(report.abandoned),
            still_buffered=len(self.buffer),
        )

    def _calls_written(self, settled: list[Pending]) -> None:
        """Tell contact matching which numbers' calls were written (late matches)."""
        if self.matcher is None or self.store is None:
            return
        now = self.clock.wall()
        items = []
        for pending in settled:
            record = self.store.get(pending.key)
            if record is not None and record.hubspot_id is not None:
                items += [(n, record.hubspot_id, now) for n in pending.counterparts()]
        if items:
            self.matcher.calls_written(items)

    def _paused(self, report: FlushReport) -> None:
        pause = report.pause
        if pause is None:
            if report.settled:
                self._failures = 0
                self.pause_kind = None
                metrics.WRITER_AUTH_FAILED.set(0)
            return
        self._failures += 1
        backoff = min(30.0, 0.5 * 2 ** min(self._failures, 6))
        if isinstance(pause, Blocked) and pause.kind == "daily":
            backoff = self.settings.writer_daily_retry_s
        elif isinstance(pause, Blocked):
            backoff = max(backoff, 10.0)
            metrics.WRITER_AUTH_FAILED.set(1)
            log.error("hubspot_token_refused", reason=pause.reason, retry_in_s=backoff)
        backoff = pause.retry_after_s or backoff
        self.pause_kind = pause.kind if isinstance(pause, Blocked) else "transient"
        self.paused_until = self.clock.monotonic() + backoff
        log.warning(
            "writer_paused", reason=pause.reason, kind=self.pause_kind, retry_in_s=round(backoff, 2)
        )

    async def _dead_letter_undecodable(self) -> None:
        if not self._undecodable:
            return
        items, self._undecodable = self._undecodable, []
        owned = await self.confirm({ref.partition for ref, _ in items})
        items = [(ref, f) for ref, f in items if ref.partition in owned]
        assert self.flusher is not None
        await self.flusher.dead_letters.send(items)
        for ref, _ in items:
            self.offsets.settled(ref.partition, ref.offset)

    def _settle(self, pendings: list[Pending]) -> None:
        for pending in pendings:
            for ref in pending.refs:
                self.offsets.settled(ref.partition, ref.offset)

    async def commit(self) -> bool:
        """Commit the settled positions; a success renews the lease. False: refused (this
        writer is no longer the partitions' owner, or the group is rebalancing)."""
        assert self.consumer is not None
        assigned = {tp.partition for tp in self.consumer.assignment()}
        positions = {p: o for p, o in self.offsets.to_commit().items() if p in assigned}
        if not positions:
            return True
        return await self._commit(positions)

    async def _commit(self, positions: dict[int, int]) -> bool:
        assert self.consumer is not None
        topic = self.settings.topic_events
        try:
            async with asyncio.timeout(5.0):
                await self.consumer.commit(
                    {TopicPartition(topic, p): o for p, o in positions.items()}
                )
        except (KafkaError, IllegalStateError, TimeoutError) as exc:
            log.warning("commit_refused", error=repr(exc))
            return False
        self.offsets.committed(positions)
        self.lease_at = self.clock.monotonic()
        return True

    async def _rewind(self, partitions: set[int]) -> None:
        """Calls of these partitions were abandoned (fenced): forget what is buffered and
        read again from the committed offsets, unless a rebalance already took them."""
        assert self.consumer is not None
        topic = self.settings.topic_events
        self.buffer.drop(partitions)
        self.offsets.forget(partitions)
        for p in partitions:
            tp = TopicPartition(topic, p)
            if tp not in self.consumer.assignment():
                continue
            try:
                async with asyncio.timeout(5.0):
                    committed = await self.consumer.committed(tp)
            except (KafkaError, IllegalStateError, TimeoutError):
                self._rewinds.add(p)  # paused, and tried again at the next step
                continue
            self.consumer.seek(tp, committed or 0)
            self._rewinds.discard(p)
        log.warning("partitions_rewound", partitions=sorted(partitions - self._rewinds))

    # -- ownership (fencing) -----------------------------------------------------------

    async def confirm(self, partitions: Collection[int]) -> set[int]:
        """The partitions of ``partitions`` this writer owns now (the ``Ownership`` port)."""
        assert self.consumer is not None
        assigned = {tp.partition for tp in self.consumer.assignment()} & self.loaded
        wanted = set(partitions) & assigned
        lease_s = self.settings.writer_session_timeout_ms / 3000
        if wanted and self.clock.monotonic() - self.lease_at > lease_s:
            current = {p: o for p, o in self.offsets.current().items() if p in assigned}
            if not current or not await self._commit(current):
                log.warning("writer_fenced", partitions=sorted(wanted))
                return set()
        return wanted

    # -- rebalancing -------------------------------------------------------------------

    async def on_assigned(self, partitions: set[int]) -> None:
        """Load the calls' records of new partitions (retried until it works) before their
        events are consumed."""
        assert self.consumer is not None
        if not partitions:
            return
        topic = self.settings.topic_events
        self.consumer.pause(*[TopicPartition(topic, p) for p in partitions])
        self.lease_at = self.clock.monotonic()  # the group just gave us these
        task = asyncio.create_task(self._load(partitions))
        for p in partitions:
            self._loading[p] = task
        log.info("partitions_assigned", partitions=sorted(partitions))

    async def _load(self, partitions: set[int]) -> None:
        assert self.store is not None
        attempt = 0
        while True:
            try:
                async with self._lock:
                    await self.store.load(partitions)
                    self.loaded |= partitions
                break
            except (KafkaError, TimeoutError, OSError) as exc:
                attempt += 1
                metrics.IDS_LOAD_FAILURES.inc()
                wait = min(30.0, 0.5 * 2**attempt)
                log.error(
                    "ids_load_failed",
                    partitions=sorted(partitions),
                    error=repr(exc),
                    retry_in_s=wait,
                )
                await asyncio.sleep(wait)
        for p in partitions:
            self._loading.pop(p, None)

    async def on_revoked(self, partitions: set[int]) -> None:
        """Flush what can be settled for the revoked partitions, commit, forget the rest.

        Whatever is not settled within half the flush deadline is dropped uncommitted: the
        partition's next owner reads it again (and its calls.ids records say what landed).
        """
        if not partitions:
            return
        for p in partitions:
            task = self._loading.pop(p, None)
            if task is not None:
                task.cancel()
        async with self._lock:
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.writer_flush_deadline_s / 2):
                        await self._flush(self.buffer.take(float("inf"), partitions))
                await self.commit()
            finally:
                dropped = self.buffer.drop(partitions)
                self.offsets.forget(partitions)
                self.loaded -= partitions
                self._rewinds -= partitions
                if self.store is not None:
                    self.store.forget(partitions)
                for p in partitions:
                    with contextlib.suppress(KeyError):
                        metrics.CONSUMER_LAG.remove(str(p))
        log.info("partitions_revoked", partitions=sorted(partitions), dropped=len(dropped))

    async def _drain(self) -> None:
        """SIGTERM path: flush everything pending within the deadline, commit, leave."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.writer_flush_deadline_s
        try:
            async with asyncio.timeout_at(deadline):
                while len(self.buffer) or self._undecodable:
                    if self.clock.monotonic() < self.paused_until:
                        await asyncio.sleep(min(1.0, self.paused_until - self.clock.monotonic()))
                        continue
                    taken = self.buffer.take(float("inf"))
                    if not taken and not self._undecodable:
                        await asyncio.sleep(0.2)
                        continue
                    async with self._lock:
                        await self._flush(taken)
                        await self.commit()
        except TimeoutError:
            log.warning("writer_drain_deadline", pending_calls=len(self.buffer))
        finally:
            if self.consumer is not None:
                with contextlib.suppress(Exception):
                    await self.commit()
                await self.consumer.stop()
            if self.matcher is not None:
                await self.matcher.aclose()
            if self.hubspot is not None:
                await self.hubspot.aclose()
            await self.producer.stop()
            if self.store is not None:
                self.store.close()
            log.info("writer_stopped")

    # -- background figures ------------------------------------------------------------

    async def _export_lag(self) -> None:
        """``callbridge_writer_consumer_lag``: log-end minus the group's committed offset."""
        assert self.consumer is not None
        while True:
            await asyncio.sleep(self.settings.writer_lag_interval_s)
            with contextlib.suppress(KafkaError, IllegalStateError, TimeoutError):
                tps = list(self.consumer.assignment())
                if not tps:
                    continue
                async with asyncio.timeout(5.0):
                    end = await self.consumer.end_offsets(tps)
                    for tp in tps:
                        committed = await self.consumer.committed(tp)
                        lag = end[tp] - (committed or 0)
                        metrics.CONSUMER_LAG.labels(str(tp.partition)).set(max(0, lag))

    # -- health ------------------------------------------------------------------------

    def healthy(self) -> bool:
        age = self.clock.monotonic() - self.last_poll
        metrics.LAST_POLL_AGE.set(age)
        return age < LIVENESS_S

    def health_app(self) -> Starlette:
        return health_app(self)

    def ready(self) -> bool:
        blocked = self.pause_kind in ("daily", "auth")
        return self.started and not blocked and not self._stop.is_set()
