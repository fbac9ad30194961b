"""Which offsets may be committed: only up to the first event not yet settled (pure).

An event is settled when its call's outcome is final: written to HubSpot (and its id
recorded) or dead-lettered. The commit position of a partition is the smallest unsettled
offset, or one past the highest consumed offset when everything is settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PartitionOffsets:
    unsettled: set[int] = field(default_factory=set)
    consumed_up_to: int = -1  # highest offset consumed
    committed: int = -1

    def commit_position(self) -> int | None:
        """The offset to commit (next to read after a restart); None: nothing new."""
        position = min(self.unsettled) if self.unsettled else self.consumed_up_to + 1
        return position if position > self.committed and position > 0 else None


class OffsetTracker:
    def __init__(self) -> None:
        self.partitions: dict[int, PartitionOffsets] = {}

    def consumed(self, partition: int, offset: int) -> None:
        p = self.partitions.setdefault(partition, PartitionOffsets())
        p.unsettled.add(offset)
        p.consumed_up_to = max(p.consumed_up_to, offset)

    def settled(self, partition: int, offset: int) -> None:
        p = self.partitions.get(partition)
        if p is not None:
            p.unsettled.discard(offset)

    def to_commit(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for partition, p in self.partitions.items():
            position = p.commit_position()
            if position is not None:
                out[partition] = position
        return out

    def committed(self, positions: dict[int, int]) -> None:
        """Record a commit's positions; a partition forgotten while the commit was out
        (revoked, or rewound) is left forgotten."""
        for partition, position in positions.items():
            p = self.partitions.get(partition)
            if p is not None:
                p.committed = position

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.partitions.pop(partition, None)

    def current(self) -> dict[int, int]:
        """Every partition's safe position, committed or not (what a fencing commit sends)."""
        out: dict[int, int] = {}
        for partition, p in self.partitions.items():
            position = min(p.unsettled) if p.unsettled else p.consumed_up_to + 1
            out[partition] = max(position, p.committed, 0)
        return out
