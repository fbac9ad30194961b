"""Shedding: one portal's backlog never keeps the others' calls unread (pure).

The buffer bound is global and the portals' events share the partitions, so a portal
that cannot write (paused: 429, daily limit, refused token) or writes slowly (a low
``rate``) would fill the buffer with its calls and stop reading for everyone. Each portal
has a fair share of the buffer (``fair_share``: the bound's events divided by the number
of configured portals; with one portal, the whole bound, and shedding is off). When the
buffer is full and a portal holds (buffered + in flight) more than its share, that portal
*sheds*: the writer evicts its newest buffered calls down to the share and, while it
sheds, buffers none of its newly read records either. A shed record is not settled: its
offset stays unsettled in the ``OffsetTracker``, so no commit passes it (a restart reads
it again), and it is remembered here (``offsets``: partition -> offset -> portal).

The portal stops shedding when it is not paused and holds at most half its share (the
low-water mark: room for one more round of its calls before it sheds again), or holds
nothing at all (a blocked portal needs calls to find out whether it can write again).
Then each partition it shed in is read again from its ``target``: the smallest shed
offset of a portal that no longer sheds. Re-read records are filtered (``reread``): one
already consumed before is taken only if it was shed (the others are buffered, in
flight or settled, and must not be taken twice); records past what was consumed are new.
A re-read shed record of a portal still shedding is shed again. When a portal starts
shedding while a partition is being re-read, the rest of that re-read is records this
filter would skip or shed again, up to the next shed offset of a portal that no longer
sheds: the partition is moved on to there (``target``) instead of re-reading them.

Cost: remembering a shed offset costs about as much as the ``OffsetTracker`` keeping it
unsettled (an int in a set, here in a dict and a heap); each stop re-reads the partitions
from the first shed offset that is no longer shed, so a backlog far larger than the share
is re-read in rounds of about the share.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from service.writer.buffer import Pending


def fair_share(max_events: int, portals: int) -> int:
    """Each configured portal's share of the buffer's events (the whole bound for one)."""
    return max_events if portals <= 1 else max(1, max_events // portals)


def to_evict(pendings: Iterable[Pending], excess: int) -> list[Pending]:
    """The newest calls (last seen first) whose events make up at least ``excess``: the
    oldest calls have waited longest, and keeping them keeps the re-read short."""
    out: list[Pending] = []
    events = 0
    for pending in sorted(pendings, key=lambda p: p.first_seen, reverse=True):
        if events >= excess:
            break
        out.append(pending)
        events += len(pending.refs)
    return out


@dataclass
class Shedding:
    """Which portals shed, and the offsets they shed, per partition."""

    portals: int
    max_events: int
    #: portals shedding now
    active: set[str] = field(default_factory=set)
    #: partition -> shed offset -> its portal (unsettled, not buffered: to read again)
    offsets: dict[int, dict[int, str]] = field(default_factory=dict)
    #: shed offsets per portal now
    counts: Counter[str] = field(default_factory=Counter)
    #: partitions sought back whose re-read has not reached what was consumed before
    rereading: set[int] = field(default_factory=set)
    #: partitions to seek to their ``target`` at the next poll
    _moved: set[int] = field(default_factory=set)
    #: shed offsets per (partition, portal) now, and a heap of them (entries no longer
    #: shed by that portal are dropped when they reach the top): ``target`` and ``stop``
    #: cost the number of partitions and portals, not of offsets shed
    _per: Counter[tuple[int, str]] = field(default_factory=Counter)
    _heaps: dict[tuple[int, str], list[int]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.portals > 1

    @property
    def share(self) -> int:
        return fair_share(self.max_events, self.portals)

    @property
    def low(self) -> int:
        """The low-water mark: a portal holding this many or fewer stops shedding."""
        return self.share // 2

    def over(self, held: Mapping[str, int], full: bool) -> dict[str, int]:
        """The portals to shed from (the buffer is full) and by how many events each is
        over its share."""
        if not (self.enabled and full):
            return {}
        return {p: n - self.share for p, n in held.items() if n > self.share}

    def start(self, portal: str) -> bool:
        """``portal`` sheds (True: it just started). The partitions being re-read move on
        past what is now shed again."""
        if portal in self.active:
            return False
        self.active.add(portal)
        self._moved |= self.rereading
        return True

    def shed(self, portal: str, partition: int, offset: int) -> None:
        """A consumed record of ``portal`` is not buffered: remember it to read it again."""
        shed = self.offsets.setdefault(partition, {})
        if offset not in shed:
            shed[offset] = portal
            self.counts[portal] += 1
            self._per[partition, portal] += 1
            heapq.heappush(self._heaps.setdefault((partition, portal), []), offset)

    def should_stop(self, portal: str, held: int, *, paused: bool, blocked: bool) -> bool:
        """Not paused, and holding at most the low-water mark (a blocked portal: nothing)."""
        if portal not in self.active or paused:
            return False
        return held == 0 or (not blocked and held <= self.low)

    def partitions_of(self, portal: str) -> set[int]:
        """The partitions holding offsets ``portal`` shed (however long ago)."""
        return {p for p, q in self._per if q == portal}

    def stop(self, portal: str) -> set[int]:
        """``portal`` no longer sheds: the partitions it shed in (to read again)."""
        self.active.discard(portal)
        partitions = self.partitions_of(portal)
        self._moved |= partitions
        return partitions

    def seeks(self, consumed_up_to: Mapping[int, int]) -> dict[int, int]:
        """Where to seek the partitions whose reading must move (``stop``, ``start``):
        their ``target``. Taken once: the poll loop seeks them before it reads."""
        moved, self._moved = self._moved, set()
        out: dict[int, int] = {}
        for p in moved:
            target = self.target(p, consumed_up_to.get(p, -1))
            out[p] = target
            if target <= consumed_up_to.get(p, -1):
                self.rereading.add(p)
            else:
                self.rereading.discard(p)
        return out

    def target(self, partition: int, consumed_up_to: int) -> int:
        """Where to read ``partition`` from: its smallest shed offset of a portal that no
        longer sheds, else one past what was consumed (everything before it is buffered,
        in flight, settled, or shed by a portal still shedding)."""
        waiting = [
            self._first(partition, q)
            for p, q in self._per
            if p == partition and q not in self.active
        ]
        return min(waiting) if waiting else consumed_up_to + 1

    def _first(self, partition: int, portal: str) -> int:
        heap = self._heaps[partition, portal]
        shed = self.offsets[partition]
        while shed.get(heap[0]) != portal:  # read again since (and maybe shed by another)
            heapq.heappop(heap)
        return heap[0]

    def reread(self, partition: int, offset: int, consumed_up_to: int) -> bool:
        """Whether to take a record read: new (past ``consumed_up_to``), or shed before
        (it is no longer remembered as shed: its portal buffers it or sheds it again)."""
        if offset > consumed_up_to:
            self.rereading.discard(partition)
            return True
        shed = self.offsets.get(partition)
        if shed is None or offset not in shed:
            return False
        portal = shed.pop(offset)
        self.counts[portal] -= 1
        self._per[partition, portal] -= 1
        if not self._per[partition, portal]:
            del self._per[partition, portal], self._heaps[partition, portal]
        if not shed:
            del self.offsets[partition]
        return True

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked or rewound: read again from the committed offset, which is
        at or before their first unsettled (so first shed) offset."""
        for p in set(partitions):
            for portal in self.offsets.pop(p, {}).values():
                self.counts[portal] -= 1
            for key in [k for k in self._per if k[0] == p]:
                del self._per[key], self._heaps[key]
            self.rereading.discard(p)
            self._moved.discard(p)
