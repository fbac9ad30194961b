"""Counterpart phone number → HubSpot contacts, cached (positive TTL, shorter negative TTL).

Lookups are batched: the lookup function gets up to ``chunk`` numbers at a time and
answers what it found per number; the resolver caches each number's answer. Generic in
what it caches: contact ids (the legacy writer path) or ``(id, modified)`` candidates
(the matcher's cold path, which applies its policy afterwards).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", str, tuple[str, int])


@dataclass
class _Entry(Generic[T]):
    ids: list[T]
    expires: float


class NumberCache(Generic[T]):
    """Per-number answers of a batched lookup, with positive and negative TTLs, bounded."""

    def __init__(
        self,
        lookup: Callable[[list[str]], Awaitable[dict[str, list[T]]]],
        ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
        chunk: int = 40,
    ) -> None:
        self._lookup: Callable[[list[str]], Awaitable[dict[str, list[T]]]] = lookup
        self._ttl = ttl_s
        self._neg_ttl = negative_ttl_s
        self._clock = clock
        self._max = max_entries
        self._chunk = chunk
        self._cache: dict[str, _Entry[T]] = {}
        self.lookups = 0

    def cached(self, number: str) -> list[T] | None:
        """The unexpired cached answer for ``number``, or None when there is none."""
        entry = self._cache.get(number)
        return entry.ids if entry is not None and entry.expires > self._clock() else None

    async def resolve(self, numbers: Iterable[str]) -> dict[str, list[T]]:
        """What the lookup found per number (an empty list when no contact has it)."""
        now = self._clock()
        wanted = sorted(set(numbers))
        out: dict[str, list[T]] = {}
        missing: list[str] = []
        for n in wanted:
            entry = self._cache.get(n)
            if entry is not None and entry.expires > now:
                out[n] = entry.ids
            else:
                missing.append(n)
        for start in range(0, len(missing), self._chunk):
            chunk = missing[start : start + self._chunk]
            found = await self._lookup(chunk)
            self.lookups += 1
            if len(self._cache) + len(chunk) > self._max:
                self._cache = {k: e for k, e in self._cache.items() if e.expires > now}
                if len(self._cache) + len(chunk) > self._max:
                    self._cache.clear()  # bounded, whatever the expiries
            for n in chunk:
                ids = sorted(set(found.get(n, [])))
                self._cache[n] = _Entry(ids, now + (self._ttl if ids else self._neg_ttl))
                out[n] = ids
        return out


class ContactResolver(NumberCache[str]):
    """Number → contact ids (the legacy writer's resolver)."""
