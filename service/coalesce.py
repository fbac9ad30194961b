"""The pure batching core: call events in, HubSpot batch plans out.

No Kafka, no HTTP, no clock it does not receive. The Kafka shell (``service.writer``)
feeds records in with their offsets; this module merges the events of each call, decides
create vs update against the durable per-call record (``CallRecord``), and cuts the work
into HubSpot batches of at most 100 inputs, flushed when a batch is full or when the
oldest waiting event has lingered long enough.

Merge rules (the same whatever order events arrive in):
- duplicates (same ``event_id``) are dropped, in the buffer and against the durable record;
- ``hs_call_status``: a terminal status is never replaced by a non-terminal one; otherwise
  the value of the latest event (by ``sequence``) wins;
- ``hs_timestamp``: the earliest known start wins;
- every other property: the latest non-empty value by event order; values are never
  cleared, so durations and recording URLs are kept once known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import msgspec

from service.model import ASSOCIATION_TYPE_IDS, TERMINAL_STATUSES, CallEvent

MAX_BATCH: Final = 100
MAX_REMEMBERED_EVENTS: Final = 64


@dataclass(frozen=True)
class Ref:
    """Where an event came from: enough to commit its offset or dead-letter the original."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class CallRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The durable state of one call (a ``calls.ids`` record): its HubSpot id once known,
    what was last written, and which events were applied."""

    hubspot_id: str | None = None
    properties: dict[str, str] = msgspec.field(default_factory=dict)
    seq: dict[str, int] = msgspec.field(default_factory=dict)
    events: list[str] = msgspec.field(default_factory=list)
    contacts: list[str] = msgspec.field(default_factory=list)
    #: when a create was sent whose outcome is not yet known (clock seconds), else None
    intent_at: float | None = None
    #: when this record was last written (wall seconds): old records are not kept in memory
    touched_at: float | None = None


_record_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(CallRecord)


def encode_record(record: CallRecord) -> bytes:
    return _record_encoder.encode(record)


def decode_record(raw: bytes) -> CallRecord:
    return _record_decoder.decode(raw)


def merge_property(
    props: dict[str, str], seq: dict[str, int], name: str, value: str, sequence: int
) -> None:
    """Apply one property value of an event with ``sequence`` onto ``props`` in place."""
    if value == "":
        return
    current = props.get(name)
    if current is None:
        props[name] = value
        seq[name] = sequence
        return
    if name == "hs_timestamp":
        if value < current:  # ISO-8601 UTC strings of one format order lexically
            props[name] = value
        return
    if name == "hs_call_status":
        if current in TERMINAL_STATUSES and value not in TERMINAL_STATUSES:
            return
        if value in TERMINAL_STATUSES and current not in TERMINAL_STATUSES:
            props[name] = value
            seq[name] = sequence
            return
    if sequence >= seq.get(name, -1):
        props[name] = value
        seq[name] = sequence


def merge_event(props: dict[str, str], seq: dict[str, int], event: CallEvent) -> None:
    for name, value in event.properties.items():
        merge_property(props, seq, name, value, event.sequence)


@dataclass
class Pending:
    """One call's unsettled work: the events buffered for it and where they came from."""

    key: str
    first_seen: float
    events: list[CallEvent] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    not_before: float = 0.0  # retry/reconcile back-off: not flushed before this time

    @property
    def partition(self) -> int:
        return self.refs[0].partition

    def counterparts(self) -> list[str]:
        return sorted({e.counterpart for e in self.events if e.counterpart})


def explicit_ids(events: Iterable[CallEvent]) -> dict[str, list[str]]:
    """Explicit association targets carried by the events, by object type."""
    out: dict[str, set[str]] = {k: set() for k in ASSOCIATION_TYPE_IDS}
    for e in events:
        out["contacts"].update(e.contact_ids)
        out["companies"].update(e.company_ids)
        out["deals"].update(e.deal_ids)
        out["tickets"].update(e.ticket_ids)
    return {k: sorted(v) for k, v in out.items() if v}


class Coalescer:
    """The buffer: calls pending a HubSpot write, merged as events arrive.

    ``add`` takes a record, ``due`` says when a flush should happen (a full batch of calls,
    or the oldest pending event has lingered ``linger_s``), ``take`` hands out the calls
    ready to be written; ``restore`` puts back those that must be retried later.
    """

    def __init__(self, linger_s: float, max_batch: int = MAX_BATCH) -> None:
        self.linger_s = linger_s
        self.max_batch = max_batch
        self._pending: dict[str, Pending] = {}
        self.events = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, event: CallEvent, ref: Ref, now: float) -> bool:
        """Buffer an event; False when it duplicates one already buffered (ref kept so its
        offset still settles with the call)."""
        pending = self._pending.get(event.key)
        if pending is None:
            pending = self._pending[event.key] = Pending(key=event.key, first_seen=now)
        pending.refs.append(ref)
        self.events += 1
        if event.event_id in pending.event_ids:
            return False
        pending.event_ids.add(event.event_id)
        pending.events.append(event)
        return True

    def add_unparsed(self, key: str, ref: Ref, now: float) -> None:
        """Track a record that carries no event (kept only for its offset)."""
        pending = self._pending.setdefault(key, Pending(key=key, first_seen=now))
        pending.refs.append(ref)
        self.events += 1

    def _ready(self, now: float) -> list[Pending]:
        return [p for p in self._pending.values() if p.not_before <= now]

    def due(self, now: float) -> bool:
        ready = self._ready(now)
        if len(ready) >= self.max_batch:
            return True
        return any(now - p.first_seen >= self.linger_s for p in ready)

    def next_due(self, now: float) -> float | None:
        """Seconds until ``due`` may become true without new events (None: nothing pending)."""
        if not self._pending:
            return None
        return max(
            0.0,
            min(max(p.first_seen + self.linger_s, p.not_before) for p in self._pending.values())
            - now,
        )

    def take(self, now: float, partitions: set[int] | None = None) -> list[Pending]:
        """Remove and return the calls to write now (optionally only of some partitions).

        Once any ready call has lingered, every ready call goes; before that only whole
        batches of ``max_batch`` (oldest first), so requests are spent on full batches.
        """
        taken = [p for p in self._ready(now) if partitions is None or p.partition in partitions]
        if not any(now - p.first_seen >= self.linger_s for p in taken):
            taken.sort(key=lambda p: p.first_seen)
            taken = taken[: len(taken) // self.max_batch * self.max_batch]
        for p in taken:
            del self._pending[p.key]
            self.events -= len(p.refs)
        return taken

    def drop(self, partitions: set[int]) -> list[Pending]:
        """Forget the calls of revoked partitions (their offsets are not committed)."""
        dropped = [p for p in self._pending.values() if p.partition in partitions]
        for p in dropped:
            del self._pending[p.key]
            self.events -= len(p.refs)
        return dropped

    def restore(self, pendings: Iterable[Pending], not_before: float) -> None:
        """Put calls back to be retried no earlier than ``not_before``."""
        for p in pendings:
            p.not_before = not_before
            existing = self._pending.get(p.key)
            if existing is not None:  # new events arrived meanwhile: merge both
                for e, in_existing in ((e, e.event_id in existing.event_ids) for e in p.events):
                    if not in_existing:
                        existing.events.append(e)
                        existing.event_ids.add(e.event_id)
                existing.refs.extend(p.refs)
                existing.first_seen = min(existing.first_seen, p.first_seen)
                existing.not_before = max(existing.not_before, not_before)
            else:
                self._pending[p.key] = p
            self.events += len(p.refs)

    def pending_offsets(self) -> Iterator[tuple[str, int, int]]:
        for p in self._pending.values():
            for r in p.refs:
                yield r.topic, r.partition, r.offset


@dataclass
class CallWrite:
    """What one call needs from HubSpot after merging: a create or an update (or nothing)."""

    pending: Pending
    record: CallRecord  # the durable record after this write succeeds
    properties: dict[str, str]  # the properties to send (all on create, the delta on update)
    new_events: list[str]

    @property
    def key(self) -> str:
        return self.pending.key


def prepare(pending: Pending, record: CallRecord | None) -> CallWrite:
    """Merge a pending call's events onto its durable record (pure).

    Events the record already applied are skipped. For a call with a HubSpot id the
    properties are the delta against what was last written (empty: nothing to send).
    """
    base = record or CallRecord()
    seen = set(base.events)
    fresh = sorted((e for e in pending.events if e.event_id not in seen), key=lambda e: e.sequence)
    props = dict(base.properties)
    seq = dict(base.seq)
    for event in fresh:
        merge_event(props, seq, event)
    events = (base.events + [e.event_id for e in fresh])[-MAX_REMEMBERED_EVENTS:]
    new = CallRecord(
        hubspot_id=base.hubspot_id,
        properties=props,
        seq=seq,
        events=events,
        contacts=list(base.contacts),
        intent_at=base.intent_at,
        touched_at=base.touched_at,
    )
    if base.hubspot_id is not None:
        delta = {k: v for k, v in props.items() if base.properties.get(k) != v}
    else:
        delta = props
    return CallWrite(pending, new, delta, [e.event_id for e in fresh])
