"""Time comes in through a ``Clock`` so that logic never reads the system clock itself."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time (for record timestamps) and monotonic time (for rate windows)."""

    def wall_ms(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=4096)
def iso_ms(epoch_ms: int) -> str:
    """Format epoch milliseconds the way HubSpot does: ``2024-01-15T10:30:00.000Z``."""
    dt = _EPOCH + timedelta(milliseconds=epoch_ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{epoch_ms % 1000:03d}Z"
    )
