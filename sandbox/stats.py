"""What the sandbox has seen: request counts per operation and status, a bounded
timeline of ``[monotonic seconds, operationId, status]``, and batch input sizes."""

from __future__ import annotations

from collections import deque
from typing import Any

TIMELINE_MAX = 20_000
BATCH_SIZES_MAX = 100_000


class Stats:
    """Counters for ``GET /_sandbox/stats``."""

    def __init__(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.timeline: deque[tuple[float, str, int]] = deque(maxlen=TIMELINE_MAX)
        self.batch_inputs: dict[str, deque[int]] = {}
        self.versions: dict[str, dict[str, int]] = {}

    def reset(self) -> None:
        """Forget everything seen."""
        self.requests.clear()
        self.timeline.clear()
        self.batch_inputs.clear()
        self.versions.clear()

    def record(
        self, op: str, status: int, at: float, batch_size: int | None, version: str = "v3"
    ) -> None:
        """Count one answered request (``version``: the API version of its path)."""
        per_version = self.versions.get(version)
        if per_version is None:
            per_version = self.versions[version] = {}
        per_version[op] = per_version.get(op, 0) + 1
        per = self.requests.get(op)
        if per is None:
            per = self.requests[op] = {}
        key = str(status)
        per[key] = per.get(key, 0) + 1
        self.timeline.append((round(at, 6), op, status))
        if batch_size is not None:
            sizes = self.batch_inputs.get(op)
            if sizes is None:
                sizes = self.batch_inputs[op] = deque(maxlen=BATCH_SIZES_MAX)
            sizes.append(batch_size)

    def to_json(self) -> dict[str, Any]:
        """Counters as plain JSON."""
        return {
            "requests": {op: dict(per) for op, per in self.requests.items()},
            "batch_inputs": {op: list(sizes) for op, sizes in self.batch_inputs.items()},
            "timeline": [list(t) for t in self.timeline],
            "versions": {v: dict(ops) for v, ops in self.versions.items()},
        }
