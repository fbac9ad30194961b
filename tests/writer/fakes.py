"""In-memory fakes of the writer's ports, for the pure core and the flush interpreter.

Every fake method applies its effect when called, then *yields* once before answering
(``await Step()``), so a test can drive a flush one port call at a time and crash a
writer, rebalance or move the clock between a request and its answer: a crash during
that yield is a request applied but never answered. ``Ownership.confirm`` yields first
and checks after, so a check and the write that follows it are adjacent, as in the shell.
A create or update also yields *before* it is applied (the client's pacing or a 429's
retry wait), then asks its fence, as ``Session`` does before each attempt: a rebalance
may come in between.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Generator, Mapping, Sequence
from dataclasses import dataclass, field

from service.deadletter import Failure
from service.model import TERMINAL_STATUSES
from service.writer.buffer import Ref
from service.writer.ports import (
    AssociateInput,
    Blocked,
    Claim,
    CreateInput,
    Exists,
    Fence,
    Found,
    LookupOutcome,
    Refused,
    Transient,
    Unknown,
    UpdateInput,
    WriteOutcome,
    Written,
)
from service.writer.records import CallRecord


class Step:
    def __await__(self) -> Generator[None, None, None]:
        yield


@dataclass
class Clock:
    t: float = 1_780_000_000.0

    def wall(self) -> float:
        return self.t


@dataclass
class HubRecord:
    id: str
    key: str
    properties: dict[str, str]
    contacts: set[str] = field(default_factory=set)
    statuses: list[str] = field(default_factory=list)
    visible_at: float = 0.0


def _refusal(key: str, op: str, category: str = "VALIDATION_ERROR") -> Failure:
    return Failure("hubspot", op, 400, category, f"{key} refused")


class FakeHubSpot:
    """HubSpot's calls: records, an in-order search index with a lag, and faults."""

    def __init__(self, clock: Clock, key_property: str | None) -> None:
        self.clock = clock
        self.key_property = key_property
        self.records: list[HubRecord] = []
        self._ids = itertools.count(1000)
        self.lag_s = 0.0
        self._last_visible = 0.0
        #: next N create requests are applied but answered Unknown (the answer is lost)
        self.applied_unanswered = 0
        #: next N requests time out before reaching HubSpot (not applied, Unknown/Transient)
        self.lost_requests = 0
        #: next N requests are answered 429
        self.rate_limited = 0
        #: keys HubSpot refuses per input (207 item errors)
        self.refuse: set[str] = set()
        #: keys HubSpot refuses with a 400 of the whole request (searches and writes)
        self.poison: set[str] = set()
        #: the token is revoked: every request is answered 401 (nothing applied)
        self.revoked = False
        self.requests = 0

    def by_key(self, key: str) -> list[HubRecord]:
        return [r for r in self.records if r.key == key]

    def _fault(self, keys: Sequence[str], op: str, create: bool) -> WriteOutcome | None:
        self.requests += 1
        if self.revoked:
            return Blocked("401 INVALID_AUTHENTICATION", "auth")
        if self.rate_limited:
            self.rate_limited -= 1
            return Transient("429", 1.0)
        if self.lost_requests:
            self.lost_requests -= 1
            return Unknown("timeout") if create else Transient("timeout")
        bad = [k for k in keys if k in self.poison]
        if bad:
            return Refused(_refusal(bad[0], op), whole_batch=len(keys) > 1)
        return None

    async def _fenced(self, fence: Fence | None) -> bool:
        """A request waits (the pacing, a 429's retry) before it is sent, and then asks
        its fence, as ``Session`` does: a rebalance may come in between."""
        await Step()
        return fence is not None and not await fence()

    async def create(
        self, inputs: Sequence[CreateInput], *, fence: Fence | None = None
    ) -> Mapping[str, WriteOutcome]:
        keys = [i.key for i in inputs]
        if await self._fenced(fence):
            return dict.fromkeys(keys, Transient("fenced: not sent"))
        fault = self._fault(keys, "batchCreateCalls", True)
        out: dict[str, WriteOutcome] = {}
        if fault is not None:
            out = dict.fromkeys(keys, fault)
        else:
            for i in inputs:
                existing = self.by_key(i.key)
                if self.key_property is not None and existing:
                    out[i.key] = Exists(existing[0].id)
                elif i.key in self.refuse:
                    out[i.key] = Refused(_refusal(i.key, "batchCreateCalls"))
                else:
                    visible = max(self.clock.t + self.lag_s, self._last_visible)
                    self._last_visible = visible
                    rec = HubRecord(
                        str(next(self._ids)),
                        i.key,
                        dict(i.properties),
                        set(i.associations.get("contacts", ())),
                        visible_at=visible,
                    )
                    rec.statuses.append(rec.properties.get("hs_call_status", ""))
                    self.records.append(rec)
                    out[i.key] = Written(rec.id)
            if self.applied_unanswered:
                self.applied_unanswered -= 1
                out = dict.fromkeys(keys, Unknown("answer lost"))
        await Step()
        return out

    async def update(
        self, inputs: Sequence[UpdateInput], *, fence: Fence | None = None
    ) -> Mapping[str, WriteOutcome]:
        keys = [i.key for i in inputs]
        if await self._fenced(fence):
            return dict.fromkeys(keys, Transient("fenced: not sent"))
        fault = self._fault(keys, "batchUpdateCalls", False)
        out: dict[str, WriteOutcome] = {}
        if fault is not None:
            out = dict.fromkeys(keys, fault)
        else:
            for i in inputs:
                rec = next((r for r in self.records if r.id == i.hubspot_id), None)
                if rec is None or i.key in self.refuse:
                    out[i.key] = Refused(_refusal(i.key, "batchUpdateCalls"))
                    continue
                rec.properties.update(i.properties)
                if "hs_call_status" in i.properties:
                    rec.statuses.append(i.properties["hs_call_status"])
                out[i.key] = Written(rec.id)
        await Step()
        return out

    async def associate(self, inputs: Sequence[AssociateInput]) -> Mapping[str, WriteOutcome]:
        keys = [i.key for i in inputs]
        fault = self._fault(keys, "associate", False)
        out: dict[str, WriteOutcome] = {}
        for i in inputs:
            if fault is not None:
                out[i.key] = fault
                continue
            rec = next(r for r in self.records if r.id == i.hubspot_id)
            rec.contacts.update(i.contacts)
            out[i.key] = Written(rec.id)
        await Step()
        return out

    async def lookup(self, keys: Sequence[str]) -> Mapping[str, LookupOutcome]:
        fault = self._fault(keys, "lookup", False)
        out: dict[str, LookupOutcome]
        if isinstance(fault, Transient | Refused | Blocked):
            out = dict.fromkeys(keys, fault)
        else:
            out = {}
            for k in keys:
                found = [
                    r
                    for r in self.by_key(k)
                    if self.key_property is not None or r.visible_at <= self.clock.t
                ]
                out[k] = Found(found[0].id if found else None)
        await Step()
        return out

    def regressed(self) -> list[str]:
        """Records whose status went from terminal back to non-terminal."""
        bad = []
        for r in self.records:
            seen_terminal = False
            for s in r.statuses:
                if s in TERMINAL_STATUSES:
                    seen_terminal = True
                elif s and seen_terminal:
                    bad.append(r.key)
        return bad


class FakeStore:
    """``calls.ids``: durable (survives a writer's crash), served for owned partitions."""

    def __init__(self, durable: dict[str, tuple[int, CallRecord]]) -> None:
        self.durable = durable
        self.owned: set[int] = set()

    def get(self, key: str) -> CallRecord | None:
        got = self.durable.get(key)
        return got[1] if got is not None and got[0] in self.owned else None

    async def put(self, items: Sequence[tuple[str, int, CallRecord]]) -> None:
        for key, part, record in items:
            self.durable[key] = (part, record)
        await Step()


class FakeDeadLetters:
    """The DLQ: every letter, and (``portals``) the ``dlq.portal`` each was sent with."""

    def __init__(self, sink: list[tuple[Ref, Failure]], portals: list[str] | None = None) -> None:
        self.sink = sink
        self.portals = portals if portals is not None else []

    async def send(self, items: Sequence[tuple[Ref, Failure]], *, portal: str = "default") -> None:
        self.sink.extend(items)
        self.portals.extend(portal for _ in items)
        await Step()


@dataclass
class Group:
    """The consumer group: who owns which partition, in which generation."""

    generation: int = 0
    owner: dict[int, int] = field(default_factory=dict)


class FakeOwnership:
    """Fencing as the shell does it: a writer whose generation is not the group's owns
    nothing (its commit would be refused); else it owns the claims of partitions the group
    gives it, in the epoch it has them now (``epochs``; None: any epoch)."""

    def __init__(
        self, group: Group, member: int, generation: int, epochs: dict[int, int] | None = None
    ) -> None:
        self.group = group
        self.member = member
        self.generation = generation
        self.epochs = epochs

    async def confirm(self, claims: Collection[Claim]) -> set[Claim]:
        await Step()
        if self.generation != self.group.generation:
            return set()
        return {
            (p, e)
            for p, e in claims
            if self.group.owner.get(p) == self.member
            and (self.epochs is None or self.epochs.get(p) == e)
        }


class NoContacts:
    async def match(self, numbers: Collection[str]) -> Mapping[str, Sequence[str]]:
        return {}
