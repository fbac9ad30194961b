"""The durable per-call record and the merge rules (pure).

A ``CallRecord`` is what the writer knows HubSpot holds for one call: its id once known,
a create sent whose outcome is not yet known (``intent_at``), and just enough of what was
written to merge later events correctly and send only what changed. It never holds
property *values* beyond the status and the start time (the two the merge rules compare):
other properties are remembered by the sequence and a short digest of the value last
written, and applied events by a digest of their id. So a record stays small (well
under a kilobyte) whatever the events carry, and ``calls.ids`` never meets the broker's
message size limit.

Records are immutable: every decision builds a new one.

Merge rules (the same whatever order events arrive in):
- duplicates (same ``event_id``) are dropped, in the buffer and against the record;
- ``hs_call_status``: a terminal status is never replaced by a non-terminal one; otherwise
  the value of the latest event (by ``sequence``) wins;
- ``hs_timestamp``: the earliest known start wins;
- every other property: the latest non-empty value by event order; values are never
  cleared, so durations and recording URLs are kept once known;
- ``hs_call_duration``, when no event states one, is derived from the time the call was
  answered (first ``IN_PROGRESS``) to the time it ended (first terminal status).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import msgspec

from service.model import TERMINAL_STATUSES, CallEvent

STATUS: Final = "hs_call_status"
TIMESTAMP: Final = "hs_timestamp"
DURATION: Final = "hs_call_duration"
ANSWERED: Final = "IN_PROGRESS"
#: applied event ids remembered per call (digests); older duplicates are caught by offsets
MAX_REMEMBERED_EVENTS: Final = 64
#: contact ids remembered as associated; beyond that an association may be re-sent (a no-op)
MAX_REMEMBERED_CONTACTS: Final = 200


def digest(text: str) -> str:
    """A short, stable fingerprint of an event id or a property value."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class CallRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The durable state of one call (the value of its ``calls.ids`` record)."""

    hubspot_id: str | None = None
    #: ``hs_call_status`` and ``hs_timestamp`` as last written
    status: str | None = None
    started: str | None = None
    #: per property: the sequence of the event whose value was last written, and its digest
    seq: dict[str, int] = msgspec.field(default_factory=dict)
    values: dict[str, str] = msgspec.field(default_factory=dict)
    events: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    #: ISO times the call was answered and ended (for a derived duration)
    answered_at: str | None = None
    ended_at: str | None = None
    #: wall time a create was sent whose outcome is not known yet (None: none outstanding)
    intent_at: float | None = None
    #: wall time this record was last written: past the retention window it is compacted
    touched_at: float | None = None

    def compacted(self) -> CallRecord:
        """What is kept past the retention window: the id and the two merge-rule values,
        so a late event of an old call still updates its one record correctly."""
        return CallRecord(
            hubspot_id=self.hubspot_id,
            status=self.status,
            started=self.started,
            touched_at=self.touched_at,
        )


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CallRecord)


def encode_record(record: CallRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(raw: bytes) -> CallRecord:
    """Raises ``msgspec.DecodeError``/``ValidationError`` for a value that is not a record."""
    return _decoder.decode(raw)


@dataclass(frozen=True)
class Merged:
    """A pending call's events merged onto its record: what to send, and the record after."""

    #: every winning property (what a create sends)
    properties: Mapping[str, str]
    #: the winners whose value differs from what was last written (what an update sends)
    delta: Mapping[str, str]
    #: the record once these properties are written (``hubspot_id``/``intent_at`` unchanged)
    after: CallRecord
    fresh: tuple[str, ...]


def _wins(name: str, value: str, sequence: int, record: CallRecord) -> bool:
    if name == TIMESTAMP:
        return record.started is None or value < record.started
    if name == STATUS and record.status is not None:
        current_terminal = record.status in TERMINAL_STATUSES
        if current_terminal and value not in TERMINAL_STATUSES:
            return False
        if value in TERMINAL_STATUSES and not current_terminal:
            return True
    return sequence >= record.seq.get(name, -1)


def _merge_events(events: Sequence[CallEvent]) -> tuple[dict[str, str], dict[str, int]]:
    """The events' own merge, ignoring any record (events in sequence order)."""
    props: dict[str, str] = {}
    seq: dict[str, int] = {}
    for event in events:
        for name, value in event.properties.items():
            if value == "":
                continue
            known = CallRecord(status=props.get(STATUS), started=props.get(TIMESTAMP), seq=seq)
            if name not in props or _wins(name, value, event.sequence, known):
                props[name] = value
                seq[name] = event.sequence
    return props, seq


def _first_time(events: Iterable[CallEvent], statuses: frozenset[str]) -> str | None:
    times = [e.occurred_at for e in events if e.properties.get(STATUS) in statuses]
    return min(times, key=_epoch) if times else None


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return float("inf")


def merge(events: Sequence[CallEvent], record: CallRecord | None) -> Merged:
    """Merge a pending call's events onto its record (pure). Events the record already
    applied are skipped; for a known call only the changed properties are in ``delta``."""
    base = record or CallRecord()
    seen = set(base.events)
    fresh = sorted(
        (e for e in _unique(events) if digest(e.event_id) not in seen), key=lambda e: e.sequence
    )
    props, seq = _merge_events(fresh)
    winners = {n: v for n, v in props.items() if _wins(n, v, seq[n], base)}
    answered = _earliest(base.answered_at, _first_time(fresh, frozenset({ANSWERED})))
    ended = _earliest(base.ended_at, _first_time(fresh, TERMINAL_STATUSES))
    if DURATION not in winners and DURATION not in base.seq and answered and ended:
        derived = max(0, round((_epoch(ended) - _epoch(answered)) * 1000))
        if derived < 10**10:
            winners[DURATION] = str(derived)
            seq[DURATION] = -1  # derived: any stated duration wins over it
    delta = {n: v for n, v in winners.items() if base.values.get(n) != digest(v)}
    new_seq = dict(base.seq) | {n: seq[n] for n in winners}
    new_values = dict(base.values) | {n: digest(v) for n, v in winners.items()}
    after = msgspec.structs.replace(
        base,
        status=winners.get(STATUS, base.status),
        started=winners.get(TIMESTAMP, base.started),
        seq=new_seq,
        values=new_values,
        events=(base.events + tuple(digest(e.event_id) for e in fresh))[-MAX_REMEMBERED_EVENTS:],
        answered_at=answered,
        ended_at=ended,
    )
    return Merged(winners, delta, after, tuple(e.event_id for e in fresh))


def _earliest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if _epoch(a) <= _epoch(b) else b


def _unique(events: Iterable[CallEvent]) -> list[CallEvent]:
    out: dict[str, CallEvent] = {}
    for e in events:
        out.setdefault(e.event_id, e)
    return list(out.values())


def with_contacts(record: CallRecord, contacts: Iterable[str]) -> CallRecord:
    merged = tuple(dict.fromkeys((*record.contacts, *contacts)))[-MAX_REMEMBERED_CONTACTS:]
    return msgspec.structs.replace(record, contacts=merged)
