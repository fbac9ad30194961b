"""One clock for the whole service, and its fake.

Logic never reads time itself: it receives a ``Clock`` (or one of its bound methods) and
asks it. ``monotonic()`` measures durations (pacing, linger, leases); ``wall()`` is Unix
seconds for what is stored or compared across processes (``calls.ids`` records, DLQ
timestamps); ``now()`` the same as an aware UTC datetime. ``FakeClock`` moves only when a
test says so, and its ``sleep`` advances it instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

#: a bare time source, e.g. ``clock.monotonic`` (what the pacing arithmetic takes)
Now = Callable[[], float]


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> float: ...
    def now(self) -> datetime: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        import asyncio  # here, so pure modules can take a ``Now`` without importing asyncio

        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only by ``advance`` (or ``sleep``, which advances it)."""

    def __init__(self, wall: float = 1_780_000_000.0, monotonic: float = 1_000.0) -> None:
        self._wall = wall
        self._mono = monotonic

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall, UTC)

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        import asyncio

        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


SYSTEM = SystemClock()
