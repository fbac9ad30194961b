"""One flush: a small interpreter running the core's decisions over the ports.

It reads the calls' records, matches their contacts, asks ``core.plan`` what each call
needs, and carries the decisions out in rounds (a lookup may lead to a create, a create
refused as existing to a lookup, a lookup to an update): intents are written durably
before creates are sent; creates, updates and associations go to the port all at once
(it sends HubSpot's batches of 100 concurrently, within the client's pacing); the inputs
of a batch refused as a whole are split until the culprit is alone. Every outcome goes
back through ``core.settle``. At the end the new records are written durably and the dead
letters produced, and only then are the calls reported settled (the shell commits their
offsets).

A ``Flusher`` serves one portal: its ``CallsPort`` and ``ContactsPort`` are that portal's
(its own pacing, reconcile mode and contact index), HubSpot inputs carry the call's key
inside the portal (``Pending.call_key``) while records are kept by the key across portals
(``Pending.key``), and a pause it reports is that portal's alone.

Fencing: before each write (``calls.ids``, the DLQ, and each attempt of a HubSpot
request, through the port's ``fence``) it asks the ``Ownership`` port which of its
calls' claims (partition and epoch) this writer still owns; calls of a lost claim are
*abandoned*: nothing more is written for them and they are neither settled nor retried
here (the partition's new owner, or this writer in the partition's new epoch, reads them
again, and their durable intents tell it what may have landed).

Kafka unavailable (``StoreUnavailable`` from the record store or the DLQ): no create is
sent without its intent, nothing is settled, and the calls are planned again later.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from handlers.event import DEFAULT_PORTAL
from service.clock import Now
from service.deadletter import Failure
from service.writer import core
from service.writer.buffer import Pending
from service.writer.core import (
    Create,
    DeadLetter,
    Decision,
    IndexView,
    Lookup,
    Noop,
    Policy,
    Settled,
    Update,
    Wait,
)
from service.writer.ports import (
    AssociateInput,
    Blocked,
    CallsPort,
    ContactsPort,
    ContactsUnavailable,
    CreateInput,
    DeadLetterSink,
    Fence,
    Found,
    LookupOutcome,
    Ownership,
    RecordStore,
    Refused,
    StoreUnavailable,
    Transient,
    Unknown,
    UpdateInput,
    WriteOutcome,
    Written,
)
from service.writer.records import CallRecord

log = structlog.get_logger()

BATCH = 100
ROUNDS = 4
In = TypeVar("In", CreateInput, UpdateInput, AssociateInput)
T = TypeVar("T")


@dataclass(frozen=True)
class _Associate:
    pending: Pending
    record: CallRecord
    contacts: tuple[str, ...]


@dataclass
class FlushReport:
    """What became of the calls handed to one flush: each is in exactly one list."""

    settled: list[Pending] = field(default_factory=list)
    retry: list[tuple[Pending, float]] = field(default_factory=list)
    abandoned: list[Pending] = field(default_factory=list)
    pause: Transient | Blocked | None = None
    dead: list[tuple[Pending, Failure]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _worse(
    a: Transient | Blocked | None, b: Transient | Blocked | None
) -> Transient | Blocked | None:
    if a is None or (isinstance(b, Blocked) and not isinstance(a, Blocked)):
        return b
    return a


class Flusher:
    def __init__(
        self,
        *,
        calls: CallsPort,
        store: RecordStore,
        dead_letters: DeadLetterSink,
        ownership: Ownership,
        contacts: ContactsPort | None,
        policy: Policy,
        wall: Now,
        portal: str = DEFAULT_PORTAL,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.portal = portal
        #: told as soon as HubSpot accepts a write of this flush (the portal can write)
        self.on_written = on_written
        self.calls = calls
        self.store = store
        self.dead_letters = dead_letters
        self.ownership = ownership
        self.contacts = contacts
        self.policy = policy
        self.wall = wall
        self.index = IndexView()

    async def flush(self, pendings: Sequence[Pending]) -> FlushReport:
        report = FlushReport()
        if not pendings:
            return report
        _Run.check_unique(pendings)
        if any(p.portal != self.portal for p in pendings):
            raise ValueError(f"a flush of portal {self.portal!r} takes only that portal's calls")
        run = _Run(self, report)
        try:
            matched = await self._match(pendings)
        except ContactsUnavailable as exc:
            at = self.wall() + (exc.outcome.retry_after_s or self.policy.retry_s)
            report.retry += [(p, at) for p in pendings]
            report.pause = exc.outcome
            return report
        run.matched = matched
        now = self.wall()
        decisions: list[Decision | _Associate] = [
            core.plan(p, run.record(p), matched, now, self.policy, self.index) for p in pendings
        ]
        for _ in range(ROUNDS):
            if not decisions:
                break
            decisions = await run.round(decisions)
        for d in decisions:  # still unresolved after every round: next flush
            report.retry.append((d.pending, self.wall() + self.policy.retry_s))
        await run.finish()
        return report

    async def _match(self, pendings: Sequence[Pending]) -> Mapping[str, Sequence[str]]:
        numbers = sorted({n for p in pendings for n in p.counterparts()})
        if not numbers or self.contacts is None:
            return {}
        return await self.contacts.match(numbers)


class _Run:
    """The state of one flush: records as they change, and what is left to persist."""

    def __init__(self, flusher: Flusher, report: FlushReport) -> None:
        self.f = flusher
        self.report = report
        self.matched: Mapping[str, Sequence[str]] = {}
        self.records: dict[str, CallRecord | None] = {}
        self.persist: dict[str, tuple[int, CallRecord]] = {}
        self.done: list[Pending] = []

    @staticmethod
    def check_unique(pendings: Sequence[Pending]) -> None:
        keys = [p.key for p in pendings]
        if len(set(keys)) != len(keys):
            raise ValueError("a flush takes each call once")

    def record(self, pending: Pending) -> CallRecord | None:
        if pending.key not in self.records:
            self.records[pending.key] = self.f.store.get(pending.key)
        return self.records[pending.key]

    def keep(self, pending: Pending, record: CallRecord) -> None:
        self.records[pending.key] = record
        self.persist[pending.key] = (pending.partition, record)

    async def owned(self, pendings: Sequence[Pending]) -> set[str]:
        """Keys of ``pendings`` whose claims (partition and epoch) this writer still owns;
        the others are abandoned."""
        if not pendings:
            return set()
        owned = await self.f.ownership.confirm({p.claim for p in pendings})
        lost = [p for p in pendings if p.claim not in owned]
        if lost:
            self.abandon(lost)
        return {p.key for p in pendings if p.claim in owned}

    def fence(self, pendings: Sequence[Pending]) -> Fence:
        """What a write of ``pendings`` asks before each attempt: are their claims all
        still owned? (A request waiting out a 429 or the pacing is not sent otherwise.)"""
        claims = {p.claim for p in pendings}

        async def still_owned() -> bool:
            return claims <= await self.f.ownership.confirm(claims)

        return still_owned

    async def put(self, items: Sequence[tuple[str, int, CallRecord]]) -> bool:
        """Write records durably; False (and the portal told to wait) when Kafka cannot
        take them now."""
        try:
            await self.f.store.put(items)
        except StoreUnavailable as exc:
            self.unavailable(exc)
            return False
        return True

    def unavailable(self, exc: StoreUnavailable) -> None:
        log.warning("calls_ids_unavailable", portal=self.f.portal, error=str(exc)[:200])
        self.report.pause = _worse(self.report.pause, Transient(f"Kafka unavailable: {exc}"))

    def abandon(self, pendings: Sequence[Pending]) -> None:
        gone = {p.key for p in pendings}
        self.report.abandoned += pendings
        for key in gone:
            self.persist.pop(key, None)
        self.done = [p for p in self.done if p.key not in gone]
        self.report.dead = [(p, f) for p, f in self.report.dead if p.key not in gone]
        self.report.retry = [(p, t) for p, t in self.report.retry if p.key not in gone]
        log.warning("partitions_lost_mid_flush", calls=len(gone))

    def apply(
        self, pending: Pending, s: Settled, nxt: list[Decision | _Associate], *, sent: bool
    ) -> None:
        """Carry out a write's outcome. ``sent``: HubSpot answered a request of this flush
        for the call (False: nothing needed sending, e.g. an update of no property)."""
        self.f.index = s.index
        if s.record is not None:
            self.keep(pending, s.record)
        if s.pause is not None:
            self.report.pause = _worse(self.report.pause, s.pause)
        if s.failure is not None:
            self.report.dead.append((pending, s.failure))
        elif sent and (s.settled or s.associate) and self.f.on_written is not None:
            self.f.on_written()  # HubSpot accepted it: the portal can write
        if s.settled:
            self.done.append(pending)
        elif s.retry_at is not None:
            self.report.retry.append((pending, s.retry_at))
        elif s.lookup is not None:
            nxt.append(s.lookup)
        elif s.associate and s.record is not None:
            nxt.append(_Associate(pending, s.record, s.associate))
        elif s.again and s.record is not None:
            nxt.append(self.plan(pending))

    def plan(self, pending: Pending) -> Decision:
        now = self.f.wall()
        return core.plan(
            pending, self.record(pending), self.matched, now, self.f.policy, self.f.index
        )

    async def round(self, decisions: list[Decision | _Associate]) -> list[Decision | _Associate]:
        nxt: list[Decision | _Associate] = []
        creates: list[Create] = []
        updates: list[Update] = []
        lookups: list[Lookup] = []
        links: list[_Associate] = []
        for d in decisions:
            if isinstance(d, Noop | Wait | DeadLetter):
                self.conclude(d)
            elif isinstance(d, Lookup):
                lookups.append(d)
            elif isinstance(d, Create):
                creates.append(d)
            elif isinstance(d, Update):
                updates.append(d)
            else:
                links.append(d)
        self.report.counts.update(
            create=len(creates), update=len(updates), lookup=len(lookups), associate=len(links)
        )
        await self._lookups(lookups, nxt)
        await self._creates(creates, nxt)
        await self._updates(updates, nxt)
        await self._associate(links, nxt)
        return nxt

    def conclude(self, d: Noop | Wait | DeadLetter) -> None:
        """Decisions that need no request."""
        if isinstance(d, Noop):
            self.done.append(d.pending)
        elif isinstance(d, Wait):
            self.report.retry.append((d.pending, d.until))
        else:
            if d.record is not None:
                self.keep(d.pending, d.record)
            self.report.dead.append((d.pending, d.failure))
            self.done.append(d.pending)

    # -- lookups --------------------------------------------------------------------------

    async def _lookups(self, lookups: list[Lookup], nxt: list[Decision | _Associate]) -> None:
        for chunk in _chunks(lookups, BATCH - 1):
            keys = [d.pending.call_key for d in chunk]
            probes = sorted({d.probe.key for d in chunk if d.probe is not None} - set(keys))
            answers = await self._lookup_split(keys + probes)
            now = self.f.wall()
            found = sum(1 for k in keys if isinstance(a := answers.get(k), Found) and a.hubspot_id)
            log.info(
                "creates_reconciled",
                checked=len(keys),
                found=found,
                mode="key" if self.f.calls.key_property else "search",
            )
            for d in chunk:
                seen = None
                if d.probe is not None:
                    probe_answer = answers.get(d.probe.key)
                    seen = isinstance(probe_answer, Found) and probe_answer.hubspot_id is not None
                answer = answers.get(d.pending.call_key, Transient("no answer for this key"))
                result, self.f.index = core.resolve(
                    d, answer, seen, self.matched, now, self.f.policy, self.f.index
                )
                if isinstance(result, CallRecord):  # a miss trusted: create it
                    self.records[d.pending.key] = result
                    nxt.append(self.plan(d.pending))
                elif isinstance(result, Noop | Wait | DeadLetter):
                    if isinstance(answer, Transient | Blocked):
                        self.report.pause = _worse(self.report.pause, answer)
                    self.conclude(result)
                else:
                    nxt.append(result)

    async def _lookup_split(self, keys: list[str]) -> dict[str, LookupOutcome]:
        """Look keys up; a lookup refused as a whole (one key HubSpot cannot take) is split
        until the key is alone, so it alone is dead-lettered."""
        answers = dict(await self.f.calls.lookup(keys))
        if len(keys) > 1 and any(
            isinstance(a, Refused) and a.whole_batch for a in answers.values()
        ):
            mid = len(keys) // 2
            return await self._lookup_split(keys[:mid]) | await self._lookup_split(keys[mid:])
        return answers

    # -- writes ---------------------------------------------------------------------------

    async def _send(
        self,
        send: Callable[[Sequence[In]], Awaitable[Mapping[str, WriteOutcome]]],
        inputs: list[In],
    ) -> dict[str, WriteOutcome]:
        """Send ``inputs`` (the port batches them); inputs of a batch refused as a whole are
        split and sent again until the one at fault is alone (then it alone is refused)."""
        if not inputs:
            return {}
        answers = dict(await send(inputs))
        flagged = [
            i for i in inputs if isinstance(a := answers.get(i.key), Refused) and a.whole_batch
        ]
        if len(flagged) > 1:
            log.info("batch_bisected", size=len(flagged))
            mid = len(flagged) // 2
            answers |= await self._send(send, flagged[:mid])
            answers |= await self._send(send, flagged[mid:])
        elif flagged:
            refused = answers[flagged[0].key]
            assert isinstance(refused, Refused)
            answers[flagged[0].key] = Refused(refused.failure)
        return answers

    async def _creates(self, creates: list[Create], nxt: list[Decision | _Associate]) -> None:
        owned = await self.owned([c.pending for c in creates])
        creates = [c for c in creates if c.pending.key in owned]
        if not creates:
            return
        now = self.f.wall()
        intents = {c.pending.key: core.intent(c, self.record(c.pending), now) for c in creates}
        if not await self.put(
            [(c.pending.key, c.pending.partition, intents[c.pending.key]) for c in creates]
        ):  # no intent, no create: try them again
            self.report.retry += [(c.pending, now + self.f.policy.retry_s) for c in creates]
            return
        for c in creates:
            self.records[c.pending.key] = intents[c.pending.key]
        owned = await self.owned([c.pending for c in creates])  # lost while writing intents?
        creates = [c for c in creates if c.pending.key in owned]
        # An intent tells other writers when the create could still land (intent_at plus
        # the unknown window). Sent much later (this writer stalled), it would land after
        # that: do not send it; the call comes back through a lookup.
        if self.f.wall() - now > self.f.policy.unknown_window_s / 2:
            self.report.retry += [(c.pending, self.f.wall()) for c in creates]
            return
        inputs = [
            CreateInput(c.pending.call_key, dict(c.merged.properties), c.associations)
            for c in creates
        ]
        fence = self.fence([c.pending for c in creates])
        answers = await self._send(functools.partial(self.f.calls.create, fence=fence), inputs)
        now = self.f.wall()
        for c in creates:
            answer = answers.get(c.pending.call_key, Unknown("no answer for this input"))
            s = core.settle(c, answer, intents[c.pending.key], now, self.f.policy, self.f.index)
            self.apply(c.pending, s, nxt, sent=c.pending.call_key in answers)

    async def _updates(self, updates: list[Update], nxt: list[Decision | _Associate]) -> None:
        owned = await self.owned([u.pending for u in updates])
        updates = [u for u in updates if u.pending.key in owned]
        inputs = [
            UpdateInput(u.pending.call_key, u.hubspot_id, dict(u.merged.delta))
            for u in updates
            if u.merged.delta
        ]
        fence = self.fence([u.pending for u in updates])
        answers = await self._send(functools.partial(self.f.calls.update, fence=fence), inputs)
        sent = {i.key for i in inputs}
        now = self.f.wall()
        for u in updates:
            key = u.pending.call_key
            answer: WriteOutcome
            if key in sent:
                answer = answers.get(key, Unknown("no answer for this input"))
            else:  # no property changed: nothing was sent, nothing is to be written
                answer = Written(u.hubspot_id)
            s = core.settle(u, answer, self.record(u.pending), now, self.f.policy, self.f.index)
            self.apply(u.pending, s, nxt, sent=key in answers)

    async def _associate(self, links: list[_Associate], nxt: list[Decision | _Associate]) -> None:
        owned = await self.owned([a.pending for a in links])
        links = [a for a in links if a.pending.key in owned]
        inputs = [
            AssociateInput(a.pending.call_key, a.record.hubspot_id or "", a.contacts) for a in links
        ]
        answers = await self._send(self.f.calls.associate, inputs)
        now = self.f.wall()
        for a in links:
            answer = answers.get(a.pending.call_key, Unknown("no answer for this input"))
            s = core.associated(a.record, a.contacts, answer, now, self.f.policy)
            self.apply(a.pending, s, nxt, sent=a.pending.call_key in answers)

    # -- the end of the flush -------------------------------------------------------------

    async def finish(self) -> None:
        """Records durably written and dead letters produced, fenced; then settled."""
        concerned = {p.key: p for p in self.done}
        concerned |= {p.key: p for p, _ in self.report.retry if p.key in self.persist}
        owned = await self.owned(list(concerned.values()))
        items = [(k, part, rec) for k, (part, rec) in self.persist.items() if k in owned]
        letters = [(ref, f) for p, f in self.report.dead if p.key in owned for ref in p.refs]
        try:
            if items:
                await self.f.store.put(items)
            if letters:
                await self.f.dead_letters.send(letters, portal=self.f.portal)
        except StoreUnavailable as exc:
            # What HubSpot took is not recorded: settle nothing, plan the calls again
            # (from their records as they were: a create's intent leads to a lookup).
            self.unavailable(exc)
            at = self.f.wall() + self.f.policy.retry_s
            retried = {p.key for p, _ in self.report.retry}
            self.report.retry += [(p, at) for p in self.done if p.key not in retried]
            self.report.dead = []
            self.done = []
            return
        self.report.settled += [p for p in self.done if p.key in owned]


def _chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
