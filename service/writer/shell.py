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

Portals (``service.portals``; one ``default`` portal without a portals file): each has
its own client, contact matcher, ``Flusher`` and pause state (``portal_state``). Each
portal's due calls are flushed in a task of their own, one at a time per portal, at most
``FAIR_CALLS`` calls each, launched round-robin: a paused or slow portal (429 back-off, a
refused token, a daily limit) never delays another's calls, and a paused portal's calls
stay buffered and uncommitted (never dead-lettered for the pause). Offsets are committed
up to the first unsettled event of a partition, whatever its portal: a paused portal's
events hold back the commit point of the partitions they are in (never skipped, never
lost) but not the other portals' writes.

The buffer bound is global (memory): when it is full, fetching stops for every
partition; the other portals' flushes go on and free room. A portal holding more than its
fair share of a full buffer (paused, or slow) *sheds* (``service.writer.shedding``): its
newest buffered calls are evicted down to its share and its new records are not buffered,
left unsettled (so uncommitted), until it drains; then the poll loop seeks the partitions
it shed in back and takes only the records it shed (``_reread_shed``), so the others'
calls behind its backlog are read meanwhile. With one portal nothing is ever shed. If the
buffer is full of paused portals' calls each within its share (every portal paused, or the
bytes bound), fetching waits for one to recover (logged once as
``buffer_held_by_paused_portals``, visible in ``/portals``). Calls of a portal not in the
portals file are dead-lettered (``UNKNOWN_PORTAL``): replayable once the portal is
configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition
from starlette.applications import Starlette

from handlers.event import DEFAULT_PORTAL, portal_key, split_portal_key
from service import metrics
from service.clock import SYSTEM, Clock
from service.config import Settings
from service.contacts import ContactMatcher, make_contact_matcher
from service.deadletter import Failure
from service.hubspot import HubSpotClient
from service.hubspot.errors import HubSpotError, HubSpotNotFound
from service.kafka import ensure_topics
from service.model import decode_event
from service.portals import PORTAL_ID, Portal, load_portals
from service.wiring import portal_clients
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
from service.writer.kafka import KafkaDeadLetters, WriterProducer
from service.writer.offsets import OffsetTracker
from service.writer.portal_state import FAIR_CALLS, PortalState, after_flush, rotation
from service.writer.ports import Claim, CreateInput, Fence, StoreUnavailable, WriteOutcome
from service.writer.shedding import Shedding, to_evict

log = structlog.get_logger()

#: liveness: the writer is considered stuck when it has not polled Kafka for this long
LIVENESS_S = 60.0
POLL_RECORDS = 1000
#: the call-key property unreadable at start: read again after this, doubling up to the max
KEY_PROBE_FIRST_S = 1.0
KEY_PROBE_MAX_S = 60.0


class _SearchCalls(HubSpotCalls):
    """A portal's calls in search mode because its call-key property could not be read:
    the keys it sent creates for are remembered. A create sent without the key property
    is found by search only, so the switch to key mode waits until none of them is of
    unknown outcome (a read by the key would miss it and create the call twice)."""

    def __init__(self, client: HubSpotClient) -> None:
        super().__init__(client, None)
        self.created: set[str] = set()

    async def create(
        self, inputs: Sequence[CreateInput], *, fence: Fence | None = None
    ) -> Mapping[str, WriteOutcome]:
        self.created.update(i.key for i in inputs)
        return await super().create(inputs, fence=fence)


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
        self.portals: list[Portal] = load_portals(settings)
        self.states: dict[str, PortalState] = {
            p.id: PortalState(p.id, p.hubspot.api_version) for p in self.portals
        }
        self.clients: dict[str, HubSpotClient] = {}
        self.flushers: dict[str, Flusher] = {}
        self.matchers: dict[str, ContactMatcher] = {}
        #: the one flush in flight per portal, and how many calls it holds
        self._flights: dict[str, asyncio.Task[None]] = {}
        self._in_flight: dict[str, int] = {}
        self._in_flight_bytes: dict[str, int] = {}
        self._turn = 0
        #: a revocation is flushing: no new portal flushes meanwhile (a call's events
        #: are never in two flushes at once)
        self._revoking = 0
        self._held_logged = False
        self.consumer: AIOKafkaConsumer | None = None
        self.store: IdStore | None = None
        self.producer = WriterProducer(settings)
        self._undecodable: list[tuple[Ref, Failure]] = []
        #: partitions whose calls.ids records are loaded: only these are consumed
        self.loaded: set[int] = set()
        self._loading: dict[int, asyncio.Task[None]] = {}
        self.lease_at = float("-inf")
        #: the rebalance callbacks and the loads share the state with the poll loop
        self._lock = asyncio.Lock()
        self._commit_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        #: partitions to read again from their committed offsets (calls abandoned, fenced)
        self._rewinds: set[int] = set()
        #: each owned partition's ownership epoch: new at every assignment and rewind, so
        #: work taken under an older one (a flush still out) can neither write nor settle
        self._epochs: dict[int, int] = {}
        self._epoch_seq = itertools.count(1)
        #: the partitions each portal's flush in flight holds calls of
        self._flight_parts: dict[str, set[int]] = {}
        #: portals shedding, and the offsets they shed per partition (``shedding``)
        self._shed = Shedding(len(self.portals), settings.writer_max_buffer)

    # -- the first portal's parts (the single-portal names) ----------------------------

    @property
    def hubspot(self) -> HubSpotClient | None:
        return self.clients.get(self.portals[0].id)

    @property
    def flusher(self) -> Flusher | None:
        return self.flushers.get(self.portals[0].id)

    @property
    def matcher(self) -> ContactMatcher | None:
        return self.matchers.get(self.portals[0].id)

    @property
    def mode(self) -> str:
        return self.states[self.portals[0].id].mode

    @property
    def pause_kind(self) -> str | None:
        """The pause kind of the one portal; with several, the worst one's when every
        portal is paused (None while any portal can write)."""
        states = list(self.states.values())
        if len(states) == 1:
            return states[0].kind
        if all(s.kind for s in states):
            order = ("transient", "daily", "auth")
            return max((s.kind or "" for s in states), key=order.index)
        return None

    @property
    def paused_until(self) -> float:
        """When the earliest paused portal may write again (0: none paused)."""
        paused = [s.paused_until for s in self.states.values() if s.kind]
        return min(paused) if len(paused) == len(self.states) else 0.0

    @property
    def daily_limited(self) -> bool:
        return any(s.kind == "daily" for s in self.states.values())

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if s.create_topics:
            await ensure_topics(s)
        await self.producer.start()
        self.clients = portal_clients(s, self.portals)
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
        dead_letters = KafkaDeadLetters(self.producer, s.topic_dlq)
        #: portals whose call-key property could not be read: read again in the background
        self._unread: set[str] = set()
        self._key_probes: list[asyncio.Task[None]] = []
        for portal in self.portals:
            client = self.clients[portal.id]
            key_property = await self._key_property(client, portal.id)
            calls = HubSpotCalls(client, key_property)
            if portal.id in self._unread:
                calls = _SearchCalls(client)
            # one matcher per portal: its index is <contact dir>/<portal>.sqlite3
            matcher = make_contact_matcher(
                client, contact_settings, self.clock.wall, portal=portal.id
            )
            self.matchers[portal.id] = matcher
            self.flushers[portal.id] = Flusher(
                calls=calls,
                store=self.store,
                dead_letters=dead_letters,
                ownership=self,
                contacts=HubSpotContacts(matcher),
                policy=Policy(
                    key_property=key_property,
                    reconcile_after_s=s.writer_reconcile_after_s,
                    unknown_window_s=s.hubspot_timeout_s + 5.0,
                ),
                wall=self.clock.wall,
                portal=portal.id,
                on_written=functools.partial(self._wrote, portal.id),
            )
            metrics.WRITER_PORTAL_PAUSED.labels(portal.id).set(0)
            metrics.WRITER_PORTAL_BUFFERED.labels(portal.id).set(0)
            metrics.WRITER_PORTAL_SHED.labels(portal.id)
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
        self._key_probes = [
            asyncio.create_task(self._probe_key_property(p)) for p in sorted(self._unread)
        ]
        log.info(
            "writer_started",
            topic=s.topic_events,
            group=s.writer_group,
            mode=self.mode,
            portals=[p.id for p in self.portals],
        )

    async def _key_property(self, hubspot: HubSpotClient, portal: str) -> str | None:
        """Whether the portal has the unique call-key property (``callbridge hubspot setup``).
        Not there (404) or not unique: search mode. Unreadable (5xx, 429, a timeout or a
        refused token after the client's retries): search mode too (safe), and the portal
        is in ``_unread``: ``_probe_key_property`` reads it again in the background."""
        try:
            found = await hubspot.get_call_property(KEY_PROPERTY)
        except HubSpotNotFound:
            found = None
        except HubSpotError as exc:
            log.warning(
                "call_key_property_unreadable",
                portal=portal,
                error=str(exc),
                retry_in_s=KEY_PROBE_FIRST_S,
            )
            self._unread.add(portal)
            self._reconcile_mode(
                portal,
                "search",
                f"{KEY_PROPERTY} could not be read ({exc.status} {exc.category}): search "
                "until it is read again",
            )
            return None
        if found is not None and found.has_unique_value:
            self._reconcile_mode(portal, "key")
            return KEY_PROPERTY
        self._reconcile_mode(
            portal, "search", f"no unique {KEY_PROPERTY} property: run `callbridge hubspot setup`"
        )
        return None

    def _reconcile_mode(self, portal: str, mode: str, reason: str | None = None) -> None:
        """Set, log and export (``callbridge_writer_portal_reconcile_mode``, and for the
        first portal ``callbridge_reconcile_mode``) the portal's reconcile mode."""
        self.states[portal].mode = mode
        for m in ("key", "search"):
            if portal == self.portals[0].id:
                metrics.RECONCILE_MODE.labels(m).set(1 if m == mode else 0)
            metrics.WRITER_PORTAL_RECONCILE_MODE.labels(portal, m).set(1 if m == mode else 0)
        if mode == "key":
            log.info("reconcile_mode", portal=portal, mode="key", property=KEY_PROPERTY)
        else:
            log.warning("reconcile_mode", portal=portal, mode="search", reason=reason)

    async def _probe_key_property(self, portal: str) -> None:
        """The portal's call-key property was unreadable at start: read it again with
        back-off until it is read; found unique, switch the portal to key mode (between
        its flushes). Ends when the writer stops."""
        client = self.clients[portal]
        wait = KEY_PROBE_FIRST_S
        while not await self._stopped_within(wait):
            probe = asyncio.ensure_future(client.get_call_property(KEY_PROPERTY))
            if not await self._unless_stopped(probe):
                return
            try:
                found = probe.result()
            except HubSpotNotFound:
                found = None
            except HubSpotError as exc:
                wait = min(KEY_PROBE_MAX_S, wait * 2)
                log.warning(
                    "call_key_property_unreadable", portal=portal, error=str(exc), retry_in_s=wait
                )
                continue
            self._unread.discard(portal)
            if found is None or not found.has_unique_value:
                self._reconcile_mode(
                    portal,
                    "search",
                    f"no unique {KEY_PROPERTY} property: run `callbridge hubspot setup`",
                )
                return
            await self._switch_to_key_mode(portal)
            return

    async def _switch_to_key_mode(self, portal: str) -> None:
        """Give the portal's ``Flusher`` the key-mode policy and calls port, when no flush
        of the portal is in flight (nor a revocation's) and none of the creates it sent in
        search mode is of unknown outcome (those are found by search only)."""
        flusher = self.flushers[portal]
        deferred = False
        while True:
            flight = self._flights.get(portal)
            busy = (flight is not None and not flight.done()) or self._revoking > 0
            unknown = set() if busy else self._search_creates_unknown(portal)
            if not busy and not unknown:
                break
            if unknown and not deferred:
                deferred = True
                log.info("reconcile_mode_switch_deferred", portal=portal, unknown=len(unknown))
            if await self._stopped_within(0.05 if busy else 0.5):
                return
        flusher.policy = dataclasses.replace(flusher.policy, key_property=KEY_PROPERTY)
        flusher.calls = HubSpotCalls(self.clients[portal], KEY_PROPERTY)
        self._reconcile_mode(portal, "key")

    def _search_creates_unknown(self, portal: str) -> set[str]:
        """Keys of the creates the portal's search-mode port sent whose outcome is still
        unknown (their records, of partitions this writer owns, hold an intent)."""
        calls = self.flushers[portal].calls
        if not isinstance(calls, _SearchCalls) or self.store is None:
            return set()
        store = self.store
        calls.created = {
            k
            for k in calls.created
            if (r := store.get(portal_key(portal, k))) is not None and r.intent_at is not None
        }
        return calls.created

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait ``seconds`` or until the writer is told to stop; whether it was."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _unless_stopped(self, task: asyncio.Future[Any]) -> bool:
        """Await ``task`` unless the writer is told to stop first (then cancel it): whether
        it finished."""
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return False

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Poll, buffer, flush and commit until ``stop()``; then drain within the deadline."""
        if not self.started:
            await self.start()
        self._tasks = [asyncio.create_task(self._export_lag())]
        for matcher in self.matchers.values():
            self._tasks.append(asyncio.create_task(matcher.run()))
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
        self._reread_shed()
        now = self.clock.monotonic()
        self._apply_backpressure(now)
        wait = self._next_launch(self.clock.wall(), now)
        timeout_ms = 200 if wait is None else int(min(max(wait, 0.005), 0.2) * 1000)
        room = max(1, self.buffer.max_events - self._held()[0])
        asked = min(room, POLL_RECORDS)
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=asked)
        self.last_poll = self.clock.monotonic()
        metrics.LAST_POLL_AGE.set(0)
        for tp, records in batch.items():
            if tp.partition in self._rewinds:  # read again from the committed offset
                continue
            if tp.partition not in self.loaded:  # fetched while its records were loading
                self.consumer.seek(tp, records[0].offset)
                continue
            up_to = self._consumed_up_to(tp.partition)
            for record in records:
                # read again after shedding: only what was shed, or is new, is taken
                if self._shed.reread(tp.partition, record.offset, up_to):
                    self._take(tp.topic, tp.partition, record)
        # Catching up on a backlog: read what is there before spending requests, so the
        # events of a call are merged into one write (bounded by the buffer's size).
        backlog = sum(len(r) for r in batch.values()) >= asked == POLL_RECORDS
        backlog = backlog and not self._full()
        self._reap()
        if backlog:
            return
        if self._undecodable:
            async with self._lock:
                await self._dead_letter_undecodable()
                await self.commit()
        self._launch(self.clock.wall())

    def _next_launch(self, wall: float, now: float) -> float | None:
        """Seconds until a portal's flush may be launched (None: nothing buffered): not
        counting portals with a flush in flight (checked again every 50 ms) and waiting
        out paused ones, so the loop does not spin while they are busy or paused."""
        waits: list[float] = [0.05] if self._flights else []
        for portal, state in self.states.items():
            if portal in self._flights:
                continue
            wait = self.buffer.next_due(wall, portal)
            if wait is not None:
                waits.append(max(wait, state.paused_until - now))
        if self.buffer.portals() - set(self.states):
            waits.append(0.0)
        return min(waits) if waits else None

    def _reap(self) -> None:
        """Forget finished portal flushes; one that raised ends the writer (as before)."""
        for portal, task in list(self._flights.items()):
            if task.done():
                del self._flights[portal]
                self._in_flight.pop(portal, None)
                self._in_flight_bytes.pop(portal, None)
                self._flight_parts.pop(portal, None)
                task.result()

    def _launch(self, wall: float) -> None:
        """Start a flush for each portal with due calls and none in flight, round-robin."""
        if self._revoking:
            return
        now = self.clock.monotonic()
        self._unknown_portals(wall)
        order = rotation([p.id for p in self.portals], self._turn)
        self._turn += 1
        for portal in order:
            if portal in self._flights or self.states[portal].paused(now):
                continue
            if not self.buffer.due(wall, portal):
                continue
            taken = self.buffer.take(wall, portal=portal, most=FAIR_CALLS)
            if taken:
                self._in_flight[portal] = sum(len(p.refs) for p in taken)
                self._in_flight_bytes[portal] = sum(p.size for p in taken)
                self._flight_parts[portal] = {p.partition for p in taken}
                self._flights[portal] = asyncio.create_task(self._flush_portal(portal, taken))

    def _unknown_portals(self, wall: float) -> None:
        """Calls of a portal that is not configured can never be written: dead letters."""
        for portal in self.buffer.portals() - set(self.states):
            for pending in self.buffer.take(float("inf"), portal=portal):
                failure = Failure(
                    "writer",
                    "route",
                    None,
                    "UNKNOWN_PORTAL",
                    f"portal {portal!r} is not in the portals file",
                )
                self._undecodable += [(ref, failure) for ref in pending.refs]

    async def _flush_portal(self, portal: str, pendings: list[Pending]) -> None:
        """One portal's flush (a task of its own), then a commit of what it settled. Once
        the flush is done its calls are no longer in flight (those to retry are back in the
        buffer): they are not counted twice while the task waits to be reaped."""
        try:
            await self._flush(pendings, portal)
        finally:
            self._in_flight.pop(portal, None)
            self._in_flight_bytes.pop(portal, None)
        await self.commit()

    def _apply_backpressure(self, now: float) -> None:
        assert self.consumer is not None
        assignment = self.consumer.assignment()
        held = self.loaded - self._rewinds
        loading = [tp for tp in assignment if tp.partition not in held]
        if loading:
            self.consumer.pause(*loading)
        fetchable = [tp for tp in assignment if tp.partition in held]
        all_paused = all(s.paused(now) for s in self.states.values())
        self._shed_over(now)
        full = self._full()
        paused = all_paused or full
        if paused and fetchable:
            self.consumer.pause(*fetchable)
        elif fetchable:
            self.consumer.resume(*fetchable)
        metrics.WRITER_PAUSED.set(1 if paused else 0)
        for portal, n in self.buffer.by_portal.items():
            if portal in self.states:
                metrics.WRITER_PORTAL_BUFFERED.labels(portal).set(
                    n + self._in_flight.get(portal, 0)
                )
        stalled = full and not self._flights and self.held_by_paused()
        if stalled and not self._held_logged:
            log.warning(
                "buffer_held_by_paused_portals",
                buffered={p: n for p, n in self.buffer.by_portal.items() if n},
                reason="the buffer is full of paused portals' events: reading resumes "
                "when one of them recovers",
            )
        self._held_logged = stalled

    def _held_by(self, portal: str) -> int:
        """A portal's events held: buffered, and in its flush in flight."""
        return self.buffer.by_portal.get(portal, 0) + self._in_flight.get(portal, 0)

    def _consumed_up_to(self, partition: int) -> int:
        offsets = self.offsets.partitions.get(partition)
        return -1 if offsets is None else offsets.consumed_up_to

    def _shed_over(self, now: float) -> None:
        """The buffer is full: a portal holding more than its share sheds its newest
        buffered calls down to it, and buffers none of its records while it sheds."""
        held = {p: self._held_by(p) for p in self.states}
        for portal, excess in self._shed.over(held, self._full()).items():
            pendings = self.buffer.take(float("inf"), portal=portal)
            evicted = to_evict(pendings, excess)
            gone = {id(p) for p in evicted}
            self.buffer.restore([p for p in pendings if id(p) not in gone], not_before=0.0)
            for pending in evicted:
                for ref in pending.refs:
                    self._shed.shed(portal, ref.partition, ref.offset)
            n = sum(len(p.refs) for p in evicted)
            metrics.WRITER_PORTAL_SHED.labels(portal).inc(n)
            if self._shed.start(portal):
                state = self.states[portal]
                log.warning(
                    "portal_shedding",
                    portal=portal,
                    held=held[portal],
                    share=self._shed.share,
                    evicted=n,
                    paused=state.paused(now) or state.blocked,
                    reason="the buffer is full and this portal holds more than its share: "
                    "its records are left unread (uncommitted) until it drains",
                )

    def _reread_shed(self) -> None:
        """Portals that drained stop shedding, and the partitions they shed in are read
        again from their first shed offset (the poll loop only, before it reads, as
        ``_rewind``)."""
        assert self.consumer is not None
        now = self.clock.monotonic()
        stopped: dict[str, set[int]] = {}
        for portal in sorted(self._shed.active):
            state = self.states[portal]
            held = self._held_by(portal)
            if self._shed.should_stop(
                portal, held, paused=state.paused(now), blocked=state.blocked
            ):
                stopped[portal] = self._shed.stop(portal)
        consumed = {p: o.consumed_up_to for p, o in self.offsets.partitions.items()}
        seeks = self._shed.seeks(consumed)
        topic = self.settings.topic_events
        assignment = self.consumer.assignment()
        for p, offset in seeks.items():
            tp = TopicPartition(topic, p)
            if tp in assignment and p in self.loaded and p not in self._rewinds:
                self.consumer.seek(tp, offset)
        for portal, partitions in stopped.items():
            log.info(
                "portal_shed_reread",
                portal=portal,
                from_offsets={p: seeks[p] for p in sorted(partitions) if p in seeks},
                shed=self._shed.counts[portal],
            )

    def _held(self) -> tuple[int, int]:
        """Events and bytes held: buffered, and taken by the flushes in flight (the
        buffer's bound covers both, as when one flush at a time blocked the loop)."""
        events = self.buffer.events + sum(self._in_flight.values())
        return events, self.buffer.bytes + sum(self._in_flight_bytes.values())

    def _full(self) -> bool:
        events, size = self._held()
        return events >= self.buffer.max_events or size >= self.buffer.max_bytes

    def held_by_paused(self) -> bool:
        """The buffer is full, no flush is out to free room, and only paused portals'
        calls are in it."""
        now = self.clock.monotonic()
        portals = self.buffer.portals()
        paused = {p for p, s in self.states.items() if s.paused(now)}
        return self._full() and not self._flights and bool(portals) and portals <= paused

    def _take(self, topic: str, partition: int, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.offset > self._consumed_up_to(partition):  # not a shed record read again
            metrics.WRITER_EVENTS.inc()
        self.offsets.consumed(partition, record.offset)
        ref = Ref(
            topic=topic,
            partition=partition,
            offset=record.offset,
            key=record.key,
            value=record.value or b"",
            headers=tuple(record.headers or ()),
            epoch=self._epochs.get(partition, 0),
        )
        try:
            event = decode_event(record.value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            failure = Failure("decode", "decode", None, "INVALID_EVENT", str(exc))
            self._undecodable.append((ref, failure))
            return
        if not PORTAL_ID.fullmatch(event.portal):  # not what the ingress writes: never route it
            message = f"portal {event.portal[:60]!r} is not a portal id ([a-z0-9-]{{1,40}})"
            self._undecodable.append(
                (ref, Failure("decode", "decode", None, "INVALID_EVENT", message))
            )
            return
        if event.portal in self._shed.active:  # consumed, not settled: read again later
            self._shed.shed(event.portal, partition, record.offset)
            metrics.WRITER_PORTAL_SHED.labels(event.portal).inc()
            return
        if not self.buffer.add(event.portal_key, event, ref, self.clock.wall()):
            metrics.WRITER_DUPLICATES.inc()

    async def _flush(self, pendings: list[Pending], portal: str = DEFAULT_PORTAL) -> None:
        """Write one portal's due calls; settle what is final, put back what must be
        retried (calls of partitions still held), and pause the portal if HubSpot says so."""
        if not pendings:
            return
        report = await self.flushers[portal].flush(pendings)
        self._settle(report.settled)
        self._calls_written(portal, report.settled)
        for pending, at in report.retry:
            # a partition revoked meanwhile is read by its owner; one rewound, again
            if self._current(pending.claim):
                self.buffer.restore([pending], not_before=at)
        dead = {p.key for p, _ in report.dead}
        written = sum(1 for p in report.settled if p.key not in dead)
        metrics.WRITER_PORTAL_CALLS.labels(portal, "written").inc(written)
        metrics.WRITER_PORTAL_CALLS.labels(portal, "dead_lettered").inc(len(dead))
        if report.abandoned:
            metrics.WRITER_FENCED.inc()
            # fenced in the epoch it was taken in: read the partition again (an older
            # epoch was revoked or rewound already: its records are read anew)
            self._quarantine({p.partition for p in report.abandoned if self._current(p.claim)})
        for decision, n in report.counts.items():
            metrics.WRITER_DECISIONS.labels(decision).inc(n)
        metrics.WRITER_COALESCED.inc(sum(max(0, len(p.refs) - 1) for p in report.settled))
        self._paused(portal, report)
        log.info(
            "flush_done",
            portal=portal,
            calls=len(pendings),
            settled=len(report.settled),
            retry=len(report.retry),
            dead=len(report.dead),
            abandoned=len(report.abandoned),
            still_buffered=len(self.buffer),
        )

    def _calls_written(self, portal: str, settled: list[Pending]) -> None:
        """Tell the portal's contact matching which numbers' calls were written (late
        matches)."""
        matcher = self.matchers.get(portal)
        if matcher is None or self.store is None:
            return
        now = self.clock.wall()
        items = []
        for pending in settled:
            record = self.store.get(pending.key)
            if record is not None and record.hubspot_id is not None:
                items += [(n, record.hubspot_id, now) for n in pending.counterparts()]
        if items:
            matcher.calls_written(items)

    def _wrote(self, portal: str) -> None:
        """HubSpot just accepted a write of ``portal``: it is not blocked (any more)."""
        state = self.states[portal]
        if state.blocked:
            state.kind = state.reason = None
            state.failures = 0
            metrics.WRITER_PORTAL_PAUSED.labels(portal).set(0)
            auth = any(s.kind == "auth" for s in self.states.values())
            metrics.WRITER_AUTH_FAILED.set(1 if auth else 0)
            log.info("writer_resumed", portal=portal)

    def _paused(self, portal: str, report: FlushReport) -> None:
        state = self.states[portal]
        backoff = after_flush(
            state,
            report.pause,
            bool(report.settled),
            self.clock.monotonic(),
            daily_retry_s=self.settings.writer_daily_retry_s,
        )
        auth = any(s.kind == "auth" for s in self.states.values())
        metrics.WRITER_AUTH_FAILED.set(1 if auth else 0)
        metrics.WRITER_PORTAL_PAUSED.labels(portal).set(1 if state.kind else 0)
        if backoff is None:
            return
        metrics.WRITER_PORTAL_PAUSES.labels(portal, state.kind or "transient").inc()
        if state.kind == "auth":
            log.error(
                "hubspot_token_refused", portal=portal, reason=state.reason, retry_in_s=backoff
            )
        log.warning(
            "writer_paused",
            portal=portal,
            reason=state.reason,
            kind=state.kind,
            retry_in_s=round(backoff, 2),
        )

    async def _dead_letter_undecodable(self) -> None:
        if not self._undecodable:
            return
        items, self._undecodable = self._undecodable, []
        claims = {(ref.partition, ref.epoch) for ref, _ in items}
        owned = await self.confirm(claims)
        lost = {p for p, e in claims - owned if self._current((p, e))}
        if lost:  # fenced: read them again rather than leave them unsettled
            self._quarantine(lost)
        items = [(ref, f) for ref, f in items if (ref.partition, ref.epoch) in owned]
        assert self.flusher is not None
        by_portal: dict[str, list[tuple[Ref, Failure]]] = {}
        for ref, failure in items:  # the portal its Kafka key names, if any
            key = (ref.key or b"").decode("utf-8", "replace")
            by_portal.setdefault(split_portal_key(key)[0], []).append((ref, failure))
        try:
            for portal, letters in by_portal.items():
                await self.flusher.dead_letters.send(letters, portal=portal)
        except StoreUnavailable as exc:  # Kafka cannot take them now: again next step
            log.warning("dead_letters_unavailable", records=len(items), error=str(exc)[:200])
            self._undecodable = items + self._undecodable
            return
        for ref, _ in items:
            if self._current((ref.partition, ref.epoch)):
                self.offsets.settled(ref.partition, ref.offset)

    def _settle(self, pendings: list[Pending]) -> None:
        for pending in pendings:
            if not self._current(pending.claim):  # its offsets are another epoch's now
                continue
            for ref in pending.refs:
                self.offsets.settled(ref.partition, ref.offset)

    def _current(self, claim: Claim) -> bool:
        """Whether work of ``claim`` is still this writer's to settle or retry: the
        partition is owned in that epoch and is not waiting to be rewound."""
        partition, epoch = claim
        return self._epochs.get(partition) == epoch and partition not in self._rewinds

    async def commit(self) -> bool:
        """Commit the settled positions; a success renews the lease. False: refused (this
        writer is no longer the partitions' owner, or the group is rebalancing). One at a
        time: the portals' flushes commit as they finish."""
        assert self.consumer is not None
        async with self._commit_lock:
            assigned = {tp.partition for tp in self.consumer.assignment()} - self._rewinds
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

    def _quarantine(self, partitions: set[int]) -> None:
        """Calls of these partitions were abandoned (fenced): from now until the poll loop
        has rewound them (``_rewind``, at the top of the next step, before it reads), their
        buffered calls are dropped, no record of theirs is taken, no retry restored and no
        offset committed, by any portal's flush. A flush task never seeks itself: the poll
        loop might read, and another portal's commit might count, records of a partition
        half-way through its rewind."""
        self._rewinds |= partitions
        self.buffer.drop(partitions)

    async def _rewind(self, partitions: set[int]) -> None:
        """Forget what is buffered for these partitions and read them again from the
        committed offsets, unless a rebalance already took them (the poll loop only, see
        ``_quarantine``)."""
        assert self.consumer is not None
        topic = self.settings.topic_events
        self.buffer.drop(partitions)
        self.offsets.forget(partitions)
        self._shed.forget(partitions)
        for p in partitions:
            tp = TopicPartition(topic, p)
            if tp not in self.consumer.assignment():
                self._rewinds.discard(p)  # the new owner reads it from the committed offset
                continue
            try:
                async with asyncio.timeout(5.0):
                    committed = await self.consumer.committed(tp)
            except (KafkaError, IllegalStateError, TimeoutError):
                self._rewinds.add(p)  # paused, and tried again at the next step
                continue
            self.consumer.seek(tp, committed or 0)
            self._epochs[p] = next(self._epoch_seq)  # what a flush still holds is stale
            self._rewinds.discard(p)
        log.warning("partitions_rewound", partitions=sorted(partitions - self._rewinds))

    # -- ownership (fencing) -----------------------------------------------------------

    async def confirm(self, claims: Collection[Claim]) -> set[Claim]:
        """The claims of ``claims`` this writer owns now, in their epoch (the
        ``Ownership`` port): assigned, loaded, not rewound since, and, once the lease is
        older than a third of the session timeout, renewed by a commit the group takes."""
        assert self.consumer is not None
        assigned = {tp.partition for tp in self.consumer.assignment()} & self.loaded
        wanted = {(p, e) for p, e in claims if p in assigned and self._epochs.get(p) == e}
        lease_s = self.settings.writer_session_timeout_ms / 3000
        if wanted and self.clock.monotonic() - self.lease_at > lease_s:
            async with self._commit_lock:  # one commit at a time, as ``commit``
                current = {
                    p: o
                    for p, o in self.offsets.current().items()
                    if p in assigned and p not in self._rewinds
                }
                renewed = bool(current) and await self._commit(current)
            if not renewed:
                log.warning("writer_fenced", partitions=sorted({p for p, _ in wanted}))
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
        for p in partitions:
            self._epochs[p] = next(self._epoch_seq)
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
            except (KafkaError, TimeoutError, OSError, StoreUnavailable) as exc:
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
        self._revoking += 1
        async with self._lock:
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.writer_flush_deadline_s / 2):
                        await self._flush_revoked(partitions)
                await self.commit()
            finally:
                for p in partitions:  # fenced from here on: no flush writes for them
                    self._epochs.pop(p, None)
                cancelled = await self._cancel_flights(partitions)
                self._revoking -= 1
                dropped = self.buffer.drop(partitions)
                self.offsets.forget(partitions)
                self._shed.forget(partitions)
                self.loaded -= partitions
                self._rewinds -= partitions
                if self.store is not None:
                    self.store.forget(partitions)
                for p in partitions:
                    with contextlib.suppress(KeyError):
                        metrics.CONSUMER_LAG.remove(str(p))
        log.info(
            "partitions_revoked",
            partitions=sorted(partitions),
            dropped=len(dropped),
            flushes_cancelled=cancelled,
        )

    async def _cancel_flights(self, partitions: set[int]) -> int:
        """End the portal flushes still out that hold calls of revoked ``partitions``
        (their next HubSpot attempt would be fenced anyway; one sleeping out a 429 must
        not outlive the revocation). Calls they held of partitions still owned are read
        again. How many were cancelled."""
        out = [
            portal
            for portal, parts in self._flight_parts.items()
            if parts & partitions and not self._flights[portal].done()
        ]
        for portal in out:
            self._flights[portal].cancel()
        for portal in out:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flights[portal]
            del self._flights[portal]
            self._in_flight.pop(portal, None)
            self._in_flight_bytes.pop(portal, None)
            self._quarantine(self._flight_parts.pop(portal) - partitions)
        return len(out)

    async def _flush_revoked(self, partitions: set[int]) -> None:
        """Let the flushes in flight finish, then flush the revoked partitions' calls of
        every portal that is not paused (a portal's calls are never in two flushes)."""
        if self._flights:
            await asyncio.wait(list(self._flights.values()))
        now = self.clock.monotonic()
        ready = [p.id for p in self.portals if not self.states[p.id].paused(now)]
        await asyncio.gather(
            *(
                self._flush(self.buffer.take(float("inf"), partitions, portal=portal), portal)
                for portal in ready
            )
        )

    async def _drain(self) -> None:
        """SIGTERM path: flush everything pending within the deadline, commit, leave."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.writer_flush_deadline_s
        try:
            async with asyncio.timeout_at(deadline):
                if self._flights:
                    await asyncio.wait(list(self._flights.values()))
                    self._flights.clear()
                    self._in_flight.clear()
                    self._in_flight_bytes.clear()
                while len(self.buffer) or self._undecodable:
                    now = self.clock.monotonic()
                    self._unknown_portals(float("inf"))
                    ready = [p.id for p in self.portals if not self.states[p.id].paused(now)]
                    taken = {p: self.buffer.take(float("inf"), portal=p) for p in ready}
                    if not any(taken.values()) and not self._undecodable:
                        paused = [s.paused_until - now for s in self.states.values() if s.kind]
                        await asyncio.sleep(min([1.0, *(w for w in paused if w > 0)]))
                        continue
                    async with self._lock:
                        await self._dead_letter_undecodable()
                        await asyncio.gather(*(self._flush(t, p) for p, t in taken.items()))
                        await self.commit()
        except TimeoutError:
            log.warning("writer_drain_deadline", pending_calls=len(self.buffer))
        finally:
            if self.consumer is not None:
                with contextlib.suppress(Exception):
                    await self.commit()
                await self.consumer.stop()
            for matcher in self.matchers.values():
                await matcher.aclose()
            for client in self.clients.values():
                await client.aclose()
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
        """Able to write: started, not stopping, and at least one portal not blocked."""
        can_write = any(s.ready for s in self.states.values())
        return self.started and can_write and not self._stop.is_set()

    def portal_report(self) -> list[dict[str, object]]:
        """Each portal's state, for ``GET /portals`` and ``callbridge portals list``."""
        now = self.clock.monotonic()
        out: list[dict[str, object]] = []
        for portal in self.portals:
            state = self.states[portal.id]
            client = self.clients.get(portal.id)
            session = client.session if client is not None else None
            paused = state.paused(now) or state.blocked
            out.append(
                {
                    "id": portal.id,
                    "api_version": portal.hubspot.api_version,
                    "auth": "oauth" if portal.hubspot.oauth is not None else "token",
                    "ready": state.ready and self.started,
                    "paused": paused,
                    "reason": state.reason if paused or state.kind else None,
                    "pause_kind": state.kind,
                    "retry_in_s": round(max(0.0, state.paused_until - now), 3),
                    "pauses": state.pauses,
                    "budget_used_10s": session.budget.in_window() if session else 0,
                    "budget_10s": session.budget.limit if session else portal.hubspot.rate,
                    "searches": session.search_budget.in_window() if session else 0,
                    "search_rate": (
                        session.search_budget.limit if session else portal.hubspot.search_rate
                    ),
                    "reconcile_mode": state.mode,
                    "buffered": self.buffer.by_portal.get(portal.id, 0),
                    "in_flight": self._in_flight.get(portal.id, 0),
                    "shed": self._shed.counts[portal.id],
                    "shedding": portal.id in self._shed.active,
                    "lag": self._held_by(portal.id) + self._shed.counts[portal.id],
                }
            )
        return out
