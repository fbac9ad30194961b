"""Replay cursors (pure): where a replay stands in the DLQ and which dead letters it covered.

A replay keeps its position in a Kafka consumer group of its own, one commit per DLQ
partition. The commit's metadata (a small JSON document) records the selection the replay
used, so that any tool can tell whether a dead letter before that position was replayed
(or parked): it was if the position is past it and the selection matches it. While a
record is being moved, the commit stands *on* that record and says where it is going
(``pending``: the target partition and the record's timestamp): a replay that was killed
between the produce and the next commit resumes by looking for the record there instead of
guessing, so it neither skips nor duplicates it.

Groups are named ``<base>`` for an unfiltered replay and ``<base>.<filter identity>`` for a
filtered one, so re-running the same command resumes it and different selections keep
separate positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from service.dlq.filters import Filters
from service.dlq.format import DeadLetter

DEFAULT_GROUP: Final = "callbridge-dlq-replay"
#: Kafka's default ``offset.metadata.max.bytes`` is 4096; stay well below it.
MAX_METADATA: Final = 3000
VERSION: Final = 1


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


@dataclass(frozen=True)
class Checkpoint:
    """One replay group's commit on one DLQ partition."""

    position: int  # the next DLQ offset this replay will consider
    filters: Filters | None  # the selection it used; None = unknown, covers nothing
    pending: Pending | None = None

    def encode(self) -> str:
        doc: dict[str, Any] = {
            "v": VERSION,
            "filters": self.filters.to_json() if self.filters is not None else None,
        }
        if self.pending is not None:
            doc["pending"] = self.pending.to_json()
        text = orjson.dumps(doc).decode()
        if len(text) > MAX_METADATA:  # a very long --key list: keep the cursor, drop the selection
            doc["filters"] = None
            text = orjson.dumps(doc).decode()
        return text

    @classmethod
    def decode(cls, position: int, metadata: str) -> Checkpoint:
        """A commit read back; metadata that is not ours means an unknown selection."""
        try:
            doc = orjson.loads(metadata) if metadata else {}
        except orjson.JSONDecodeError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        raw_filters = doc.get("filters")
        raw_pending = doc.get("pending")
        try:
            pending = Pending.from_json(raw_pending) if isinstance(raw_pending, dict) else None
        except (KeyError, TypeError, ValueError):
            pending = None
        return cls(
            position=position,
            filters=Filters.from_json(raw_filters) if isinstance(raw_filters, dict) else None,
            pending=pending,
        )

    def covers(self, offset: int, dead: DeadLetter, key: str | None, timestamp_ms: int) -> bool:
        """Whether this replay already moved the dead letter at ``offset``."""
        if offset >= self.position or self.filters is None:
            return False
        return self.filters.matches(dead, key, timestamp_ms)


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
