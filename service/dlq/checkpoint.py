"""Replay cursors (pure): where a replay stands in the DLQ and which dead letters it covered.

A replay keeps its position in a Kafka consumer group of its own, one commit per DLQ
partition. The commit's metadata (a small JSON document) records the replay's selection
and, for each offset range its runs looked at, the time window they used, so that any tool
can tell whether a dead letter was replayed (or parked): it was if a range holds its
offset and the selection and that range's window match it. While a
record is being moved, the commit stands *on* that record and says where it is going
(``pending``: the target partition and the record's timestamp): a replay that was killed
between the produce and the next commit resumes by looking for the record there instead of
guessing, so it neither skips nor duplicates it.

Groups are named ``<base>`` for an unfiltered replay and ``<base>.<filter identity>`` for a
filtered one, so re-running the same command resumes it and different selections keep
separate positions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from service.deadletter import DeadLetter
from service.dlq.filters import Filters, failed_at

DEFAULT_GROUP: Final = "callbridge-dlq-replay"
#: Kafka's default ``offset.metadata.max.bytes`` is 4096; stay well below it.
MAX_METADATA: Final = 3000
VERSION: Final = 2


def group_for(base: str, filters: Filters) -> str:
    """The consumer group holding the cursor of a replay with this selection."""
    identity = filters.identity()
    return f"{base}.{identity}" if identity else base


def in_family(group: str, base: str) -> bool:
    """Whether ``group`` is a replay cursor of the ``base`` family."""
    return group == base or group.startswith(base + ".")


@dataclass(frozen=True)
class Pending:
    """A record being moved: DLQ ``offset`` → ``topic``/``partition``, sent with timestamp
    ``at_ms`` (so a resuming replay can find where to look for it)."""

    offset: int
    topic: str
    partition: int
    at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "topic": self.topic,
            "partition": self.partition,
            "at_ms": self.at_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pending:
        return cls(
            offset=int(data["offset"]),
            topic=str(data["topic"]),
            partition=int(data["partition"]),
            at_ms=int(data["at_ms"]),
        )


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """Exact microseconds since the epoch (so window edges compare exactly)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _bound(moment: datetime | None) -> int | None:
    return None if moment is None else _micros(moment)


@dataclass(frozen=True)
class Segment:
    """DLQ offsets ``[start, end)`` that one run looked at, with that run's time window
    (microseconds since the epoch; None = unbounded). Every dead letter in the range that
    matched the replay's selection and window was moved."""

    start: int
    end: int
    since_us: int | None
    until_us: int | None

    def holds(self, offset: int, when_us: int) -> bool:
        if not self.start <= offset < self.end:
            return False
        if self.since_us is not None and when_us < self.since_us:
            return False
        return self.until_us is None or when_us < self.until_us

    def same_window(self, other: Segment) -> bool:
        return (self.since_us, self.until_us) == (other.since_us, other.until_us)

    def to_json(self) -> list[int | None]:
        return [self.start, self.end, self.since_us, self.until_us]

    @classmethod
    def from_json(cls, data: list[Any]) -> Segment:
        start, end, since, until = data
        return cls(
            int(start),
            int(end),
            None if since is None else int(since),
            None if until is None else int(until),
        )


@dataclass(frozen=True)
class Checkpoint:
    """One replay group's commit on one DLQ partition.

    Coverage is exact whatever the time filters: each run adds the offset range it looked
    at with its own resolved window (a relative ``--since 2h`` resolves differently per run).
    Ranges of runs with the same window merge; if the history outgrows Kafka's metadata
    limit the oldest ranges are forgotten, which can only make moved dead letters look
    pending again, never the reverse.
    """

    position: int  # the next DLQ offset this replay will consider
    selection: Filters | None  # its categories and keys; None = unknown, covers nothing
    segments: tuple[Segment, ...] = ()
    pending: Pending | None = None

    def encode(self) -> str:
        doc: dict[str, Any] = {"v": VERSION}
        if self.pending is not None:
            doc["pending"] = self.pending.to_json()
        if self.selection is not None:
            doc["categories"] = sorted(self.selection.categories)
            doc["keys"] = sorted(self.selection.keys)
            if self.selection.portals:
                doc["portals"] = sorted(self.selection.portals)
        segments = list(self.segments)
        while True:
            doc["segments"] = [seg.to_json() for seg in segments]
            text = orjson.dumps(doc).decode()
            if len(text) <= MAX_METADATA:
                return text
            if segments:
                segments.pop(0)  # forget the oldest range
                continue
            doc.pop("categories", None)  # a very long --key list: keep only the cursor
            doc.pop("keys", None)
            doc.pop("portals", None)

    @classmethod
    def decode(cls, position: int, metadata: str) -> Checkpoint:
        """A commit read back; metadata that is not ours means an unknown selection."""
        try:
            doc = orjson.loads(metadata) if metadata else {}
        except orjson.JSONDecodeError:
            doc = {}
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            return cls(position=position, selection=None)
        raw_pending = doc.get("pending")
        try:
            pending = Pending.from_json(raw_pending) if isinstance(raw_pending, dict) else None
            segments = tuple(Segment.from_json(x) for x in doc.get("segments") or ())
        except (KeyError, TypeError, ValueError):
            return cls(position=position, selection=None)
        selection = None
        if isinstance(doc.get("categories"), list) and isinstance(doc.get("keys"), list):
            portals = doc.get("portals")
            selection = Filters(
                categories=frozenset(str(c) for c in doc["categories"]),
                keys=frozenset(str(k) for k in doc["keys"]),
                portals=frozenset(str(p) for p in portals or ())
                if isinstance(portals, list)
                else frozenset(),
            )
        return cls(position=position, selection=selection, segments=segments, pending=pending)

    def covers(self, offset: int, dead: DeadLetter, key: str | None, timestamp_ms: int) -> bool:
        """Whether this replay already moved the dead letter at ``offset``."""
        if self.selection is None or not self.selection.selects(dead, key):
            return False
        when = _micros(failed_at(dead, timestamp_ms))
        return any(seg.holds(offset, when) for seg in self.segments)

    def with_moved(self, offset: int) -> Checkpoint:
        """This checkpoint, knowing that the record at ``offset`` was moved (found after an
        interrupted run) and with the cursor past it."""
        extra = Segment(offset, offset + 1, None, None)
        return replace(
            self,
            position=max(self.position, offset + 1),
            segments=_merged([*self.segments, extra]),
            pending=None,
        )


def advance(
    base: Checkpoint | None,
    *,
    start: int,
    position: int,
    filters: Filters,
    pending: Pending | None = None,
) -> Checkpoint:
    """The commit of a run of ``filters`` that began at ``start`` and has looked at every
    record before ``position`` (``base``: the group's commit when the run began)."""
    old: tuple[Segment, ...] = ()
    if (
        base is not None
        and base.selection is not None
        and _selection(base.selection) == _selection(filters)
    ):
        old = base.segments
    kept: list[Segment] = []
    for seg in old:  # what this run re-covers (only with from_start) is replaced
        if seg.start < start:
            kept.append(replace(seg, end=min(seg.end, start)))
        if seg.end > position:
            kept.append(replace(seg, start=max(seg.start, position)))
    if position > start:
        kept.append(Segment(start, position, _bound(filters.since), _bound(filters.until)))
    return Checkpoint(
        position=position,
        selection=Filters(
            categories=filters.categories, keys=filters.keys, portals=filters.portals
        ),
        segments=_merged(kept),
        pending=pending,
    )


def _selection(f: Filters) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    return (f.categories, f.keys, f.portals)


def _merged(segments: list[Segment]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for seg in sorted((s for s in segments if s.start < s.end), key=lambda s: s.start):
        if out and out[-1].end == seg.start and out[-1].same_window(seg):
            out[-1] = replace(out[-1], end=seg.end)
        else:
            out.append(seg)
    return tuple(out)


@dataclass(frozen=True)
class Coverage:
    """Every replay cursor of a family on the DLQ's partitions: what has been handled."""

    checkpoints: dict[int, list[Checkpoint]]

    def covers(
        self, partition: int, offset: int, dead: DeadLetter, key: str | None, timestamp_ms: int
    ) -> bool:
        return any(
            cp.covers(offset, dead, key, timestamp_ms) for cp in self.checkpoints.get(partition, [])
        )
