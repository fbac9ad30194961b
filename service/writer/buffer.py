"""The buffer: calls pending a HubSpot write, merged as records arrive (pure).

arroyo's buffer protocol: ``add`` takes a record, ``due`` says when a flush should happen
(a full batch of calls, or the oldest pending event has lingered ``linger_s``), ``take``
hands out the calls to write now, ``restore`` puts back those to retry later. It is
bounded by events *and* bytes (``full``): the shell stops fetching while it is full. It
receives its time as an argument and knows nothing of Kafka or HubSpot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from handlers.event import split_portal_key
from service.model import CallEvent

MAX_BATCH: Final = 100


@dataclass(frozen=True)
class Ref:
    """Where a record came from: enough to commit its offset or dead-letter the original."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    #: the partition's ownership epoch when this record was read (``ports.Claim``)
    epoch: int = 0

    @property
    def size(self) -> int:
        return len(self.value) + len(self.key or b"") + 64


@dataclass
class Pending:
    """One call's unsettled work: its events (deduplicated) and every record they came in."""

    key: str
    partition: int
    first_seen: float
    events: list[CallEvent] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    not_before: float = 0.0  # retry / reconcile back-off
    #: the partition's ownership epoch its records were read in (``ports.Claim``)
    epoch: int = 0
    #: the portal the call belongs to, and its key there (``provider:call_id``)
    portal: str = field(init=False)
    call_key: str = field(init=False)

    def __post_init__(self) -> None:
        self.portal, self.call_key = split_portal_key(self.key)

    @property
    def size(self) -> int:
        return sum(r.size for r in self.refs)

    @property
    def claim(self) -> tuple[int, int]:
        """(partition, epoch): what this writer must still own to write or settle it."""
        return (self.partition, self.epoch)

    def counterparts(self) -> list[str]:
        return sorted({e.counterpart for e in self.events if e.counterpart})

    def absorb(self, other: Pending) -> None:
        """Take ``other``'s events and refs (new events arrived while it was out)."""
        ids = {e.event_id for e in self.events}
        self.events += [e for e in other.events if e.event_id not in ids]
        self.refs += other.refs
        self.first_seen = min(self.first_seen, other.first_seen)
        self.not_before = max(self.not_before, other.not_before)


class Buffer:
    def __init__(
        self,
        linger_s: float,
        *,
        max_events: int = 5000,
        max_bytes: int = 64 * 1024 * 1024,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.linger_s = linger_s
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_batch = max_batch
        self._pending: dict[str, Pending] = {}
        self.events = 0
        self.bytes = 0
        #: buffered records per portal (what ``/portals`` reports as ``buffered``)
        self.by_portal: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._pending)

    def full(self) -> bool:
        return self.events >= self.max_events or self.bytes >= self.max_bytes

    def add(self, key: str, event: CallEvent | None, ref: Ref, now: float) -> bool:
        """Buffer a record of call ``key`` (``event`` None: a record kept only for its
        offset). False when the event duplicates one already buffered."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = Pending(key, ref.partition, now, epoch=ref.epoch)
        pending.refs.append(ref)
        self.events += 1
        self.bytes += ref.size
        self.by_portal[pending.portal] += 1
        if event is None or any(e.event_id == event.event_id for e in pending.events):
            return False
        pending.events.append(event)
        return True

    def _ready(self, now: float, portal: str | None = None) -> list[Pending]:
        return [
            p
            for p in self._pending.values()
            if p.not_before <= now and (portal is None or p.portal == portal)
        ]

    def portals(self) -> set[str]:
        """The portals with buffered calls."""
        return {p for p, n in self.by_portal.items() if n > 0}

    def due(self, now: float, portal: str | None = None) -> bool:
        """A flush should happen now (of ``portal``'s calls only, if given)."""
        ready = self._ready(now, portal)
        return len(ready) >= self.max_batch or any(
            now - p.first_seen >= self.linger_s for p in ready
        )

    def next_due(self, now: float, portal: str | None = None) -> float | None:
        """Seconds until ``due`` may become true without new records (None: empty), for
        ``portal``'s calls only if given."""
        times = [
            max(p.first_seen + self.linger_s, p.not_before)
            for p in self._pending.values()
            if portal is None or p.portal == portal
        ]
        if not times:
            return None
        return max(0.0, min(times) - now)

    def take(
        self,
        now: float,
        partitions: set[int] | None = None,
        *,
        portal: str | None = None,
        most: int | None = None,
    ) -> list[Pending]:
        """Remove and return the calls to write now (optionally only of some partitions,
        of one portal, and at most ``most`` of them, oldest first).

        Once any ready call has lingered, every ready call goes; before that only whole
        batches (oldest first), so requests are spent on full batches.
        """
        taken = [
            p for p in self._ready(now, portal) if partitions is None or p.partition in partitions
        ]
        if not any(now - p.first_seen >= self.linger_s for p in taken):
            taken.sort(key=lambda p: p.first_seen)
            taken = taken[: len(taken) // self.max_batch * self.max_batch]
        if most is not None and len(taken) > most:
            taken.sort(key=lambda p: p.first_seen)
            taken = taken[:most]
        self._remove(taken)
        return taken

    def drop(self, partitions: set[int]) -> list[Pending]:
        """Forget the calls of lost partitions (their offsets are not committed)."""
        dropped = [p for p in self._pending.values() if p.partition in partitions]
        self._remove(dropped)
        return dropped

    def _remove(self, pendings: Iterable[Pending]) -> None:
        for p in pendings:
            del self._pending[p.key]
            self.events -= len(p.refs)
            self.bytes -= p.size
            self.by_portal[p.portal] -= len(p.refs)

    def restore(self, pendings: Iterable[Pending], not_before: float) -> None:
        """Put calls back to be retried no earlier than ``not_before``."""
        for p in pendings:
            p.not_before = max(p.not_before, not_before)
            existing = self._pending.get(p.key)
            if existing is not None:
                existing.absorb(p)
            else:
                self._pending[p.key] = p
            self.events += len(p.refs)
            self.bytes += p.size
            self.by_portal[p.portal] += len(p.refs)
